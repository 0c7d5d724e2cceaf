import BPFHarness
import Foundation
import Testing

/// The synthesizer's traffic, and the reader's flat memory on a large synthesized file.
struct CaptureSynthesizerTests {
    /// The Internet checksum of `bytes` (RFC 1071), written here independently of the
    /// synthesizer's: 0 when a header or segment with its checksum field checks out.
    static func internetChecksum(_ bytes: ArraySlice<UInt8>, pseudoHeader: [UInt8] = []) -> UInt16 {
        var sum: UInt64 = 0
        let all = pseudoHeader + Array(bytes)
        for index in stride(from: 0, to: all.count, by: 2) {
            let high = UInt64(all[index]) << 8
            sum += index + 1 < all.count ? high | UInt64(all[index + 1]) : high
        }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    @Test func sameSeedSamePackets() {
        var a = CaptureSynthesizer(.init(seed: 7, flowCount: 64))
        var b = CaptureSynthesizer(.init(seed: 7, flowCount: 64))
        var c = CaptureSynthesizer(.init(seed: 8, flowCount: 64))
        var differs = false
        for _ in 0..<2_000 {
            let (x, y, z) = (a.next(), b.next(), c.next())
            #expect(x.bytes == y.bytes && x.timestamp == y.timestamp)
            if x.bytes != z.bytes { differs = true }
        }
        #expect(differs)
        #expect(a.packetsMade == 2_000)
    }

    /// Lengths and checksums check out; traffic is mixed (IPv4 and IPv6, TCP and UDP, SYN
    /// and FIN); timestamps rise.
    @Test func packetsAreWellFormed() {
        var synthesizer = CaptureSynthesizer(.init(seed: 3, flowCount: 200))
        var kinds: Set<String> = []
        var flagsSeen: UInt8 = 0
        var previous: UInt64 = 0
        for _ in 0..<5_000 {
            let (frame, timestamp) = synthesizer.next()
            #expect(timestamp >= previous)
            previous = timestamp
            #expect(frame.count >= 54 && frame.count <= 1_514)
            let etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
            let l4: Int
            let proto: UInt8
            let pseudo: [UInt8]
            if etherType == 0x0800 {
                #expect(Self.internetChecksum(frame[14..<34]) == 0)
                #expect(Int(frame[16]) << 8 | Int(frame[17]) == frame.count - 14)
                (l4, proto) = (34, frame[23])
                let length = frame.count - 34
                pseudo = Array(frame[26..<34]) + [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)]
            } else {
                #expect(etherType == 0x86DD)
                #expect(Int(frame[18]) << 8 | Int(frame[19]) == frame.count - 54)
                (l4, proto) = (54, frame[20])
                let length = frame.count - 54
                pseudo = Array(frame[22..<54]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, proto]
            }
            #expect(Self.internetChecksum(frame[l4...], pseudoHeader: pseudo) == 0)
            if proto == 6 { flagsSeen |= frame[l4 + 13] } else { #expect(proto == 17) }
            kinds.insert("\(etherType == 0x0800 ? 4 : 6)/\(proto)")
        }
        #expect(kinds == ["4/6", "4/17", "6/6", "6/17"])
        #expect(flagsSeen & 0x1B == 0x1B)  // FIN, SYN, PSH, ACK
    }

    /// Written through the writer; tshark, when installed, finds no bad checksum and nothing malformed.
    @Test func writesACaptureOthersRead() throws {
        let path = try temporaryDirectory().appendingPathComponent("synthesized.pcap").path
        let summary = try CaptureSynthesizer.write(
            to: path, packets: 3_000, configuration: .init(seed: 11, flowCount: 100))
        #expect(summary.packets == 3_000)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(size == summary.fileBytes)
        var again = CaptureSynthesizer(.init(seed: 11, flowCount: 100))
        let records = try readAll(path: path).records
        #expect(records.count == 3_000)
        for record in records.prefix(500) {
            let (bytes, timestamp) = again.next()
            #expect(record.bytes == bytes && record.timestamp == timestamp)
        }
        let bySize = try CaptureSynthesizer.write(to: path, bytes: 100_000)
        #expect(bySize.fileBytes >= 100_000 && bySize.fileBytes < 100_000 + 16 + 1_514)

        let filter =
            "ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || _ws.malformed"
        if let tshark = try runTool(
            "tshark",
            [
                "-n", "-r", path, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                "-o", "udp.check_checksum:TRUE", "-Y", filter,
            ])
        {
            #expect(tshark.status == 0, "\(tshark.errors)")
            #expect(tshark.output.isEmpty, "tshark found bad packets:\n\(tshark.output.prefix(2_000))")
        }
    }

    /// The reader's memory stays flat: a large synthesized capture is read in a separate
    /// process (`CaptureMemoryProbe`), whose resident set may not grow by more than 4 MiB
    /// past what it had after the first 1,000 records. The file is 64 MiB by default (about
    /// 6 s in a debug build on 2 cores); `BPFSIM_CAPTURE_MEMORY_MB=200` makes it 200 MiB
    /// (about 16 s). Measured growth: 2.3 MiB at 48 MiB and at 200 MiB alike.
    @Test func readingLargeCaptureKeepsMemoryFlat() throws {
        let megabytes = Int(ProcessInfo.processInfo.environment["BPFSIM_CAPTURE_MEMORY_MB"] ?? "") ?? 64
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("large.pcap").path
        let summary = try CaptureSynthesizer.write(to: path, bytes: megabytes << 20)
        let probe = try #require(Self.probePath, "CaptureMemoryProbe was not built beside the test binary")
        let (status, output, errors) = try runProcess(probe, [path])
        #expect(status == 0, "\(output)\(errors)")
        let fields = Dictionary(
            uniqueKeysWithValues: output.split(whereSeparator: \.isWhitespace).compactMap { field -> (String, Int)? in
                let parts = field.split(separator: "=")
                guard parts.count == 2, let value = Int(parts[1]) else { return nil }
                return (String(parts[0]), value)
            })
        #expect(fields["records"] == summary.packets)
        let baseline = try #require(fields["baseline_kb"])
        let peak = try #require(fields["peak_kb"])
        #expect(baseline > 0 && peak > 0)
        #expect(
            peak - baseline <= 4_096,
            "resident set grew from \(baseline) KiB to \(peak) KiB reading \(summary.fileBytes) bytes")
    }

    /// The probe is built into the same directory as the test binary.
    static var probePath: String? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for directory in candidates {
            let path = directory.appendingPathComponent("CaptureMemoryProbe").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
