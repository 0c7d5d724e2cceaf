import BPFHarness
import Foundation
import Testing

/// The writer: round trips through the reader, files that tcpdump and capinfos accept,
/// and its refusals.
struct CaptureWriterTests {
    /// Writes `records` to a new file and reads them back.
    static func roundTrip(
        _ records: [CaptureRecord], precision: CaptureWriter.Precision = .nanosecond, snapshotLength: Int = 262_144
    ) throws -> (path: String, reader: CaptureReader, records: [CaptureRecord]) {
        let path = try temporaryDirectory().appendingPathComponent("written.pcap").path
        let writer = try CaptureWriter(path: path, snapshotLength: snapshotLength, precision: precision)
        for record in records { try writer.write(record) }
        #expect(writer.recordsWritten == records.count)
        try writer.close()
        let reader = try CaptureReader(path: path)
        let outcome = readAll(reader)
        #expect(outcome.error == nil)
        return (path, reader, outcome.records)
    }

    /// The same bytes, lengths and timestamps come back; the written file is nanosecond
    /// pcap, Ethernet, in this host's byte order.
    @Test(
        .enabled(if: SharedCaptures.available, SharedCaptures.skip),
        arguments: [
            "wikipedia.pcap", "quic_handshake_truncated.pcap", "bigtcp-ipv4.pcap", "tcp-handshake-nano.pcap",
            "nflog-http.pcap",
        ])
    func roundTrip(_ file: String) throws {
        let original = try readAll(path: SharedCaptures.path(file)).records
        let (path, reader, back) = try Self.roundTrip(original)
        #expect(reader.format == .pcapNanosecond && reader.linkType.name == "EN10MB" && !reader.synthesizesHeaders)
        #expect(back.count == original.count)
        for (a, b) in zip(original, back) {
            #expect(a.bytes == b.bytes && a.originalLength == b.originalLength && a.timestamp == b.timestamp)
            #expect(a.isTruncated == b.isTruncated)
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(4))
        #expect(bytes == [0x4D, 0x3C, 0xB2, 0xA1])  // 0xa1b23c4d, little-endian

        // tcpdump reads every record back; capinfos counts them.
        if let tcpdump = try runTool("tcpdump", ["-nn", "-r", path]) {
            #expect(tcpdump.status == 0, "\(tcpdump.errors)")
            #expect(tcpdump.output.split(separator: "\n").count == original.count)
            #expect(tcpdump.errors.contains("link-type EN10MB (Ethernet)"))
        }
        if let capinfos = try runTool("capinfos", ["-c", "-M", path]) {
            #expect(capinfos.status == 0, "\(capinfos.errors)")
            #expect(capinfos.output.contains("Number of packets:   \(original.count)"), "\(capinfos.output)")
        }
    }

    /// Written with microseconds and the original's snapshot length, an Ethernet pcap comes
    /// out byte for byte the same as the original (whose header has zero thiszone/sigfigs).
    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
    func identicalToOriginal() throws {
        let source = SharedCaptures.path("wikipedia.pcap")
        let reader = try CaptureReader(path: source)
        let records = readAll(reader).records
        let (path, _, _) = try Self.roundTrip(records, precision: .microsecond, snapshotLength: reader.snapshotLength)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: source)))
    }

    /// Microsecond files cut the nanoseconds; the snapshot length cuts long frames and keeps
    /// their original length; timestamps up to 2106-02-07 06:28:15 fit.
    @Test func precisionAndSnapshotLength() throws {
        let frame = [UInt8](repeating: 0xAB, count: 100)
        let last = UInt64(UInt32.max) * 1_000_000_000 + 999_999_999
        let records = [
            CaptureRecord(index: 0, timestamp: 1_500_000_000_123_456_789, bytes: frame, originalLength: 100),
            CaptureRecord(index: 1, timestamp: last, bytes: Array(frame.prefix(40)), originalLength: 1_000),
        ]
        let (_, micro, back) = try Self.roundTrip(records, precision: .microsecond, snapshotLength: 64)
        #expect(micro.format == .pcap && micro.snapshotLength == 64)
        #expect(back.map(\.timestamp) == [1_500_000_000_123_456_000, UInt64(UInt32.max) * 1_000_000_000 + 999_999_000])
        #expect(back.map(\.bytes) == [Array(frame.prefix(64)), Array(frame.prefix(40))])
        #expect(back.map(\.originalLength) == [100, 1_000])
        #expect(back.allSatisfy { $0.isTruncated })
        let (_, _, nano) = try Self.roundTrip(records)
        #expect(nano.map(\.timestamp) == records.map(\.timestamp))
    }

    @Test func refusals() throws {
        let directory = try temporaryDirectory()
        let path = directory.appendingPathComponent("refusals.pcap").path
        let writer = try CaptureWriter(path: path)
        try writer.write([1, 2, 3], timestamp: 0)
        let late = #expect(throws: CaptureError.self) {
            try writer.write([1], timestamp: (UInt64(UInt32.max) + 1) * 1_000_000_000)
        }
        #expect(
            late?.description
                == path
                + ": record 2: timestamp 4294967296000000000 ns is after 2106-02-07 06:28:15 UTC, the last second a pcap record can hold"
        )
        let short = #expect(throws: CaptureError.self) { try writer.write([1, 2, 3], timestamp: 0, originalLength: 2) }
        #expect(short?.description == path + ": record 2: the original length 2 is smaller than the 3 bytes given")
        try writer.write([4, 5], timestamp: 1)  // the writer goes on after a refused record
        try writer.close()
        try writer.close()
        let closed = #expect(throws: CaptureError.self) { try writer.write([1], timestamp: 0) }
        #expect(closed?.code == "writer_closed")
        #expect(try readAll(path: path).records.map(\.bytes) == [[1, 2, 3], [4, 5]])

        let missing = #expect(throws: CaptureError.self) { try CaptureWriter(path: "/nonexistent/out.pcap") }
        #expect(missing?.code == "cannot_create")
        #expect(missing?.message.contains("No such file or directory") == true)
        let snap = #expect(throws: CaptureError.self) { try CaptureWriter(path: path, snapshotLength: 0) }
        #expect(snap?.message == "snapshot length 0 is outside 1...262144")
    }

    /// A full disk: /dev/full accepts the open and fails every write.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
    func writeErrorsAreReported() throws {
        let writer = try CaptureWriter(path: "/dev/full")
        var failure: CaptureError?
        do {
            // stdio buffers a few KiB; enough records overflow the buffer and reach the device.
            for _ in 0..<100 { try writer.write([UInt8](repeating: 0, count: 1_500), timestamp: 0) }
            try writer.close()
        } catch {
            failure = error
        }
        #expect(failure?.code == "write_failed")
        #expect(failure?.message.contains("No space left on device") == true)
    }
}
