/// Writes Ethernet packets to a classic pcap file through libpcap (`pcap_dump`), one record
/// at a time, so tcpdump, Wireshark and this package's `CaptureReader` open it.
///
/// The file is in this host's byte order, link type EN10MB (1), with nanosecond timestamps
/// (magic 0xa1b23c4d) unless microseconds are asked for (0xa1b2c3d4, for tools older than
/// libpcap 1.5). Each record keeps its original length, so cut packets stay cut. Records go
/// through stdio's buffer straight to the file: memory stays flat.
///
/// A classic pcap record holds its seconds in 32 unsigned bits, so timestamps from
/// 2106-02-07 06:28:16 UTC on cannot be written (the pcapng format could; libpcap 1.10 does
/// not write it). `close()` flushes and reports a late write error; a writer that is never
/// closed is closed when released, silently.
public final class CaptureWriter {
    /// Timestamp precision of the file.
    public enum Precision: Sendable {
        case microsecond, nanosecond
    }

    /// libpcap's largest snapshot length (MAXIMUM_SNAPLEN), which it reads back for Ethernet.
    public static let maximumSnapshotLength = 262_144

    /// The path, as given.
    public let path: String
    /// The file header's snapshot length; longer packets are cut to it, keeping their original length.
    public let snapshotLength: Int
    public let precision: Precision
    /// How many records have been written.
    public private(set) var recordsWritten = 0

    private let handle: PCAPDumpHandle
    private var closed = false

    /// Creates (or truncates) the file and writes the pcap file header.
    public init(path: String, snapshotLength: Int = maximumSnapshotLength, precision: Precision = .nanosecond)
        throws(CaptureError)
    {
        guard (1...Self.maximumSnapshotLength).contains(snapshotLength) else {
            throw .badSnapshotLength(path, snapshotLength: snapshotLength)
        }
        self.path = path
        self.snapshotLength = snapshotLength
        self.precision = precision
        do {
            handle = try PCAPDumpHandle(
                path: path, snapshotLength: snapshotLength, nanosecond: precision == .nanosecond)
        } catch {
            throw .cannotCreate(path, detail: error.message)
        }
    }

    /// Writes one Ethernet frame. `timestamp` is in nanoseconds since the epoch (cut to
    /// microseconds in a microsecond file); `originalLength` defaults to the frame's length
    /// and must not be smaller.
    public func write(_ bytes: [UInt8], timestamp: UInt64, originalLength: Int? = nil) throws(CaptureError) {
        // withUnsafeBytes rethrows untyped errors; a Result keeps the type.
        let outcome: Result<Void, CaptureError> = bytes.withUnsafeBytes { raw in
            do throws(CaptureError) {
                try write(raw, timestamp: timestamp, originalLength: originalLength)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try outcome.get()
    }

    /// Writes a record as read: its presented bytes, timestamp and original length.
    public func write(_ record: CaptureRecord) throws(CaptureError) {
        try write(record.bytes, timestamp: record.timestamp, originalLength: record.originalLength)
    }

    /// Writes one Ethernet frame from raw bytes (for callers that reuse a buffer).
    public func write(_ bytes: UnsafeRawBufferPointer, timestamp: UInt64, originalLength: Int? = nil)
        throws(CaptureError)
    {
        let number = recordsWritten + 1
        guard !closed else { throw .writerClosed(path, record: number) }
        let original = originalLength ?? bytes.count
        guard original >= bytes.count else {
            throw .badLength(path, record: number, captured: bytes.count, original: original)
        }
        let seconds = timestamp / 1_000_000_000
        guard seconds <= UInt64(UInt32.max) else {
            throw .timestampOutOfRange(path, record: number, timestamp: timestamp)
        }
        let nanoseconds = timestamp % 1_000_000_000
        let subsecond = precision == .nanosecond ? nanoseconds : nanoseconds / 1_000
        let captured = UnsafeRawBufferPointer(rebasing: bytes.prefix(snapshotLength))
        guard
            handle.dump(
                captured, originalLength: min(original, Int(UInt32.max)),
                seconds: UInt32(truncatingIfNeeded: seconds), subsecond: UInt32(truncatingIfNeeded: subsecond))
        else {
            throw .writeFailed(path, record: number, detail: errnoText())
        }
        recordsWritten = number
    }

    /// Flushes what stdio still holds to the file (`pcap_dump_flush`).
    public func flush() throws(CaptureError) {
        guard !closed else { return }
        guard handle.flush() else { throw .writeFailed(path, record: nil, detail: errnoText()) }
    }

    /// Flushes and closes the file. Closing twice does nothing.
    public func close() throws(CaptureError) {
        guard !closed else { return }
        closed = true
        let flushed = handle.flush()
        let detail = flushed ? "" : errnoText()
        handle.close()
        if !flushed { throw .writeFailed(path, record: nil, detail: detail) }
    }
}
