/// Why a capture could not be read or written, and where.
///
/// The capture layer's one error type. Every message is built by one of the static
/// factories in this file, so the wording lives here only; `code` is a stable identifier
/// for `--json` and tests. The location is the file (the path as the caller gave it) and,
/// when the problem belongs to one record, that record's number counted from 1, as
/// tcpdump, Wireshark and capinfos count.
public struct CaptureError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The capture's path, as given to the reader or writer.
    public let file: String
    /// The record the problem is in, counted from 1; nil for the file as a whole.
    public let record: Int?
    /// A short stable identifier, such as `unsupported_link_type`.
    public let code: String
    /// The sentence for people, without the location.
    public let message: String

    private init(_ file: String, _ record: Int?, _ code: String, _ message: String) {
        self.file = file
        self.record = record
        self.code = code
        self.message = message
    }

    /// `file: record 3: message`, leaving out the record when there is none.
    public var description: String {
        var text = file
        if let record { text += ": record \(record)" }
        return text + ": " + message
    }

    /// Whether the reader can go on after this error: true only for a record that could not
    /// be presented as Ethernet (`unpresentable_record`); libpcap's own errors end the stream.
    public var isRecoverable: Bool { code == "unpresentable_record" }
}

// MARK: - Reading

extension CaptureError {
    /// The file could not be opened at all (missing, unreadable).
    public static func cannotOpen(_ file: String, detail: String) -> CaptureError {
        .init(file, nil, "cannot_open", "cannot open the capture: \(detail)")
    }

    public static func emptyFile(_ file: String) -> CaptureError {
        .init(file, nil, "empty_file", "the file is empty (0 bytes): not a pcap or pcapng capture")
    }

    /// The first four bytes are no pcap or pcapng magic number.
    public static func notACapture(_ file: String, magic: [UInt8], detail: String) -> CaptureError {
        let bytes = magic.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined(separator: " ")
        return .init(
            file, nil, "not_a_capture",
            "not a pcap or pcapng capture: it starts with \(bytes) (libpcap: \(detail))")
    }

    /// libpcap refused the file header (a pcap or pcapng magic number, but a header it cannot use).
    public static func badHeader(_ file: String, detail: String) -> CaptureError {
        .init(file, nil, "bad_header", "libpcap cannot read the capture's header: \(detail)")
    }

    public static func unsupportedLinkType(_ file: String, linkType: LinkType) -> CaptureError {
        let supported = LinkType.presentable.map(\.description).joined(separator: ", ")
        return .init(
            file, nil, "unsupported_link_type",
            "link type \(linkType.name) (\(linkType.value), \(linkType.summary)) cannot be presented to an Ethernet-based program; "
                + "bpfsim reads \(supported)")
    }

    /// libpcap stopped in the middle of the file; the records before `record` were read.
    public static func readFailed(_ file: String, record: Int, detail: String) -> CaptureError {
        .init(
            file, record, "read_failed",
            "libpcap stopped reading after \(record - 1) good record\(record == 2 ? "" : "s"): \(detail)")
    }

    /// libpcap delivered the record, but its link-layer header cannot become Ethernet.
    public static func unpresentableRecord(_ file: String, record: Int, linkType: LinkType, reason: String)
        -> CaptureError
    {
        .init(
            file, record, "unpresentable_record",
            "this \(linkType) record cannot be presented as Ethernet: \(reason)")
    }
}

// MARK: - Writing

extension CaptureError {
    public static func cannotCreate(_ file: String, detail: String) -> CaptureError {
        .init(file, nil, "cannot_create", "cannot create the capture: \(detail)")
    }

    public static func writeFailed(_ file: String, record: Int?, detail: String) -> CaptureError {
        .init(file, record, "write_failed", "writing the capture failed: \(detail)")
    }

    public static func writerClosed(_ file: String, record: Int) -> CaptureError {
        .init(file, record, "writer_closed", "the writer is already closed")
    }

    /// A classic pcap record holds its seconds in 32 unsigned bits.
    public static func timestampOutOfRange(_ file: String, record: Int, timestamp: UInt64) -> CaptureError {
        .init(
            file, record, "timestamp_out_of_range",
            "timestamp \(timestamp) ns is after 2106-02-07 06:28:15 UTC, the last second a pcap record can hold")
    }

    public static func badLength(_ file: String, record: Int, captured: Int, original: Int) -> CaptureError {
        .init(
            file, record, "bad_length",
            "the original length \(original) is smaller than the \(captured) bytes given")
    }

    public static func badSnapshotLength(_ file: String, snapshotLength: Int) -> CaptureError {
        .init(
            file, nil, "bad_snapshot_length",
            "snapshot length \(snapshotLength) is outside 1...\(CaptureWriter.maximumSnapshotLength)")
    }
}
