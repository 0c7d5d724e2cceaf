/// Reads a pcap or pcapng capture through libpcap, one record at a time, and presents each
/// record as the bytes an Ethernet-based program (XDP, TC) would see.
///
/// ```swift
/// let reader = try CaptureReader(path: "trace.pcap")
/// if let note = reader.synthesisNote { print(note) }
/// while let record = try reader.next() { ... }
/// ```
///
/// **Streaming.** Nothing is buffered beyond the current record: libpcap reads the file
/// through stdio, and the reader copies each record into one array it reuses. A record
/// handed out shares that array's storage; when the caller has let go of it by the next
/// call (as a `while let` loop does), the storage is reused without allocating, and when the
/// caller keeps it, the next record gets fresh storage (copy on write), so a kept record
/// never changes. Memory therefore stays flat however large the file is.
///
/// **Errors.** Opening fails with a `CaptureError` for a missing or empty file, a file that
/// is no capture, a header libpcap refuses, and a link type bpfsim cannot present (naming
/// it by name and number). While reading, libpcap's errors (a file cut in the middle of a
/// record, a pcapng block it refuses) come after every good record before them, naming the
/// record number, and end the stream: later calls return nil. A record libpcap delivered
/// but whose link header cannot become Ethernet (an NFLOG record without payload, a cooked
/// record of a CAN socket) throws an error with `isRecoverable` set; calling `next()` again
/// goes on with the following record.
///
/// See docs/captures.md for the link types, the synthesized header and timestamps.
public final class CaptureReader {
    /// The path, as given.
    public let path: String
    /// pcap (microseconds), pcap-ns or pcapng, from the magic number.
    public let format: CaptureFormat
    /// The byte order the file was written in.
    public let byteOrder: CaptureByteOrder
    /// The link-layer header type of every record (libpcap reads only captures with one).
    public let linkType: LinkType
    /// The snapshot length, as libpcap adjusted it.
    public let snapshotLength: Int
    /// Whether records get a synthesized Ethernet header (every link type but EN10MB).
    public var synthesizesHeaders: Bool { presentation != .ethernet }
    /// One sentence saying that and how headers are synthesized, for the caller to print
    /// once per capture; nil for Ethernet captures.
    public var synthesisNote: String? { presentation.synthesisNote(linkType) }
    /// How many records libpcap has delivered so far (including refused ones).
    public private(set) var recordsRead = 0
    /// How many of them had a timestamp adjusted (`CaptureRecord.timestampAdjustment`).
    public private(set) var adjustedTimestamps = 0

    private var handle: PCAPReadHandle?
    private let presentation: LinkPresentation
    /// The one buffer records are built in (see "Streaming" above).
    private var buffer: [UInt8] = []

    /// Opens a capture. Throws `CaptureError` when the file cannot be read as a capture of a
    /// link type bpfsim presents.
    public init(path: String) throws(CaptureError) {
        self.path = path
        let magic: [UInt8]
        switch PCAPReadHandle.leadingBytes(path: path, count: 4) {
        case .success(let bytes): magic = bytes
        case .failure(let failure): throw .cannotOpen(path, detail: failure.message)
        }
        if magic.isEmpty { throw .emptyFile(path) }
        let format = Self.format(magic: magic)
        let handle: PCAPReadHandle
        switch PCAPReadHandle.open(path: path) {
        case .success(let opened): handle = opened
        case .failure(let failure):
            guard format != nil else { throw .notACapture(path, magic: magic, detail: failure.message) }
            throw .badHeader(path, detail: failure.message)
        }
        // libpcap opened it, so the magic was one it knows; a pcap variant not named in
        // `format(magic:)` still reads as pcap.
        self.format = format ?? .pcap
        self.byteOrder = handle.isSwapped ? CaptureByteOrder.host.swapped : .host
        self.linkType = PCAPReadHandle.linkType(dlt: handle.dlt)
        self.snapshotLength = handle.snapshotLength
        guard let presentation = LinkPresentation(dlt: handle.dlt) else {
            throw .unsupportedLinkType(path, linkType: linkType)
        }
        self.presentation = presentation
        self.handle = handle
        buffer.reserveCapacity(min(snapshotLength, 65_536) + SynthesizedEthernet.headerLength)
    }

    /// The next record, or nil at the end of the capture (and after a libpcap error).
    public func next() throws(CaptureError) -> CaptureRecord? {
        guard let handle else { return nil }
        switch handle.next() {
        case .end:
            self.handle = nil
            return nil
        case .failure(let message):
            self.handle = nil
            throw .readFailed(path, record: recordsRead + 1, detail: message)
        case .packet(let data, let recordOriginal, let seconds, let subsecond):
            let index = recordsRead
            recordsRead += 1
            let (fileSeconds, fileSubsecond) = Self.unsignedFields(
                seconds: seconds, subsecond: subsecond, format: format)
            let (timestamp, adjustment) = Self.timestamp(seconds: fileSeconds, subsecond: fileSubsecond)
            if adjustment != nil { adjustedTimestamps += 1 }
            buffer.removeAll(keepingCapacity: true)
            let presentedOriginal: Int
            switch presentation.present(data, originalLength: recordOriginal) {
            case .asCaptured:
                buffer.append(contentsOf: data)
                presentedOriginal = max(recordOriginal, data.count)
            case .synthesize(let etherType, let offset, let count, let originalLength):
                buffer.append(contentsOf: SynthesizedEthernet.destination)
                buffer.append(contentsOf: SynthesizedEthernet.source)
                buffer.append(UInt8(truncatingIfNeeded: etherType >> 8))
                buffer.append(UInt8(truncatingIfNeeded: etherType))
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[offset..<offset + count]))
                presentedOriginal = originalLength
            case .refuse(let reason):
                throw .unpresentableRecord(path, record: index + 1, linkType: linkType, reason: reason)
            }
            return CaptureRecord(
                index: index, timestamp: timestamp, timestampAdjustment: adjustment, bytes: buffer,
                originalLength: presentedOriginal, recordCapturedLength: data.count,
                recordOriginalLength: recordOriginal)
        }
    }

    /// Calls `body` with each record in turn. Rethrows the first error, from the reader or
    /// from `body`, after the records before it.
    public func forEach(_ body: (CaptureRecord) throws -> Void) throws {
        while let record = try next() { try body(record) }
    }

    // MARK: - Pure parts

    /// The format a magic number names, nil for none (libpcap's own test decides what it reads).
    static func format(magic: [UInt8]) -> CaptureFormat? {
        guard magic.count == 4 else { return nil }
        let bigEndian = UInt32(magic[0]) << 24 | UInt32(magic[1]) << 16 | UInt32(magic[2]) << 8 | UInt32(magic[3])
        switch bigEndian {
        case 0xA1B2_C3D4, 0xD4C3_B2A1, 0xA1B2_CD34, 0x34CD_B2A1: return .pcap
        case 0xA1B2_3C4D, 0x4D3C_B2A1: return .pcapNanosecond
        case 0x0A0D_0D0A: return .pcapng
        default: return nil
        }
    }

    /// A classic pcap record's seconds and sub-second fields are 32-bit unsigned numbers
    /// (pcap-savefile(5)), but libpcap 1.10 reads them into signed 32-bit integers when the
    /// file is in this host's byte order (and unsigned when it swaps them), so a time from
    /// 2038-01-19 on, or a sub-second field of 2^31 or more, arrives negative. This undoes
    /// that; a microsecond field arrives already multiplied by 1,000. pcapng times are
    /// 64-bit and pass unchanged.
    static func unsignedFields(seconds: Int64, subsecond: Int64, format: CaptureFormat) -> (Int64, Int64) {
        guard format != .pcapng else { return (seconds, subsecond) }
        let unsignedSeconds = Int64(UInt32(truncatingIfNeeded: seconds))
        guard subsecond < 0 else { return (unsignedSeconds, subsecond) }
        let perUnit: Int64 = format == .pcap ? 1_000 : 1
        return (unsignedSeconds, Int64(UInt32(truncatingIfNeeded: subsecond / perUnit)) * perUnit)
    }

    /// One 64-bit nanosecond count from libpcap's `ts.tv_sec` and `ts.tv_usec` (nanoseconds
    /// at nanosecond precision). See `TimestampAdjustment` for the cases that are not exact.
    static func timestamp(seconds: Int64, subsecond: Int64) -> (UInt64, TimestampAdjustment?) {
        let perSecond: UInt64 = 1_000_000_000
        // libpcap's pcapng reader stores the scaled fraction through an `int`; a negative
        // value there is a 32-bit fraction that wrapped, so it is read back as unsigned.
        let raw = subsecond < 0 ? UInt64(UInt32(truncatingIfNeeded: subsecond)) : UInt64(subsecond)
        var seconds = seconds
        var fraction = raw
        var adjustment: TimestampAdjustment?
        if raw >= perSecond {
            let (carried, overflow) = seconds.addingReportingOverflow(Int64(raw / perSecond))
            if overflow { return (UInt64.max, .pastRange(seconds: seconds)) }
            seconds = carried
            fraction = raw % perSecond
            adjustment = .subsecondCarried(subsecond: raw)
        }
        if seconds < 0 { return (0, .beforeEpoch(seconds: seconds)) }
        let (whole, overflowMultiplying) = UInt64(seconds).multipliedReportingOverflow(by: perSecond)
        let (total, overflowAdding) = whole.addingReportingOverflow(fraction)
        if overflowMultiplying || overflowAdding { return (UInt64.max, .pastRange(seconds: seconds)) }
        return (total, adjustment)
    }
}
