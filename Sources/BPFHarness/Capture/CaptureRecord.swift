/// One packet record of a capture, as an Ethernet-based program sees it.
///
/// For an Ethernet capture `bytes` are the frame as captured. For the other link types the
/// reader presents, the link-layer header (cooked, loopback, NFLOG) is replaced by a
/// synthesized 14-byte Ethernet header (`SynthesizedEthernet`), and `originalLength` is
/// adjusted by the same difference, so `bytes.count < originalLength` exactly when the
/// record was cut by the capture's snapshot length.
public struct CaptureRecord: Hashable, Sendable {
    /// The record's position, counted from 0.
    public let index: Int
    /// Nanoseconds since 1970-01-01 00:00:00 UTC, in 64 bits (up to the year 2554).
    public let timestamp: UInt64
    /// Set when `timestamp` is not what the record's fields say literally; see `TimestampAdjustment`.
    public let timestampAdjustment: TimestampAdjustment?
    /// The bytes presented to the program: the captured frame, or a synthesized Ethernet
    /// header and the captured payload.
    public let bytes: [UInt8]
    /// The presented packet's length on the wire, at least `bytes.count`: what the kernel
    /// would see as the packet's length (`len`, `wire_len`) when the capture cut it.
    public let originalLength: Int
    /// The record's captured length in the file, after libpcap (`caplen`).
    public let recordCapturedLength: Int
    /// The record's original length in the file (`len`).
    public let recordOriginalLength: Int

    public init(
        index: Int, timestamp: UInt64, timestampAdjustment: TimestampAdjustment? = nil, bytes: [UInt8],
        originalLength: Int, recordCapturedLength: Int? = nil, recordOriginalLength: Int? = nil
    ) {
        self.index = index
        self.timestamp = timestamp
        self.timestampAdjustment = timestampAdjustment
        self.bytes = bytes
        self.originalLength = originalLength
        self.recordCapturedLength = recordCapturedLength ?? bytes.count
        self.recordOriginalLength = recordOriginalLength ?? originalLength
    }

    /// The record's number, counted from 1 as tcpdump, Wireshark (`frame.number`) and capinfos count.
    public var number: Int { index + 1 }
    /// The presented length, `bytes.count`.
    public var capturedLength: Int { bytes.count }
    /// Whether the capture's snapshot length cut the record (`caplen < len` in the file).
    public var isTruncated: Bool { recordCapturedLength < recordOriginalLength }
    /// Whole seconds since the epoch.
    public var seconds: UInt64 { timestamp / 1_000_000_000 }
    /// Nanoseconds within the second, always below 10^9.
    public var nanoseconds: UInt64 { timestamp % 1_000_000_000 }
}

/// Why a record's `timestamp` differs from what its fields say literally.
///
/// libpcap hands over seconds and a sub-second part already scaled to nanoseconds (pcap
/// microseconds times 1,000; pcapng units of the interface's `if_tsresol`, plus its
/// `if_tsoffset`). The reader then makes one 64-bit count of nanoseconds:
public enum TimestampAdjustment: Hashable, Sendable {
    /// The sub-second part was 10^9 ns or more (a corrupt field: a nanosecond pcap's field is
    /// a 32-bit number a writer may fill with anything). The whole seconds in it were carried
    /// into the seconds, so the timestamp is `seconds × 10^9 + subsecond`, exactly what the
    /// two fields add up to. `subsecond` is the value libpcap gave, in nanoseconds.
    case subsecondCarried(subsecond: UInt64)
    /// The time is before 1970 (a negative pcapng `if_tsoffset`); the timestamp is 0.
    case beforeEpoch(seconds: Int64)
    /// The time does not fit in 64 bits of nanoseconds (after 2554-07-21 UTC); the
    /// timestamp is `UInt64.max`.
    case pastRange(seconds: Int64)
}

/// The container a capture is stored in, from its magic number.
public enum CaptureFormat: String, Hashable, Sendable, CustomStringConvertible {
    /// pcap with microsecond timestamps (magic 0xa1b2c3d4, or Kuznetsov's 0xa1b2cd34).
    case pcap
    /// pcap with nanosecond timestamps (magic 0xa1b23c4d).
    case pcapNanosecond = "pcap-ns"
    /// pcapng (a Section Header Block first); resolution per interface.
    case pcapng

    public var description: String { rawValue }
}

/// The byte order a capture was written in.
public enum CaptureByteOrder: String, Hashable, Sendable, CustomStringConvertible {
    case littleEndian = "little-endian"
    case bigEndian = "big-endian"

    public var description: String { rawValue }

    static var host: CaptureByteOrder {
        #if _endian(little)
            .littleEndian
        #else
            .bigEndian
        #endif
    }

    var swapped: CaptureByteOrder { self == .littleEndian ? .bigEndian : .littleEndian }
}
