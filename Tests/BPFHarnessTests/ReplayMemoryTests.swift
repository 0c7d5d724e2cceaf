import BPFHarness
import BPFTestSupport
import Foundation
import Testing

/// A replay's memory stays flat however large the capture: a large synthesized capture
/// and a small one are replayed in separate processes (`ReplayMemoryProbe`, through
/// corpus/programs/flow_table.bpf.c on the interpreter, 2 CPUs), and the large one's
/// peak resident set past its first 1,000 packets may not grow more than 4 MiB beyond
/// the small one's. The large capture is 192 MiB by default; `BPFSIM_REPLAY_MEMORY_MB`
/// changes it (docs/replay.md has a 1 GiB measurement).
@Suite struct ReplayMemoryTests {
    @Test func replayingALargeCaptureKeepsMemoryFlat() throws {
        let megabytes = Int(ProcessInfo.processInfo.environment["BPFSIM_REPLAY_MEMORY_MB"] ?? "") ?? 192
        let object = try ProgramCorpus.object("flow_table")
        let probe = try #require(Self.probePath, "ReplayMemoryProbe was not built beside the test binary")
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }

        func measure(_ bytes: Int) throws -> (packets: Int, growth: Int, peak: Int) {
            let path = directory.appendingPathComponent("replay-\(bytes).pcap").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let summary = try CaptureSynthesizer.write(to: path, bytes: bytes)
            let (status, output, errors) = try runProcess(probe, [object, "track_flows", path])
            #expect(status == 0, "\(output)\(errors)")
            let fields = Dictionary(
                uniqueKeysWithValues: output.split(whereSeparator: \.isWhitespace).compactMap {
                    field -> (String, Int)? in
                    let parts = field.split(separator: "=")
                    guard parts.count == 2, let value = Int(parts[1]) else { return nil }
                    return (String(parts[0]), value)
                })
            #expect(fields["packets"] == summary.packets)
            let baseline = try #require(fields["baseline_kb"])
            let peak = try #require(fields["peak_kb"])
            return (summary.packets, peak - baseline, peak)
        }

        let small = try measure(8 << 20)
        let large = try measure(megabytes << 20)
        // For docs/replay.md's measurements.
        print(
            "replay memory: \(small.packets) packets: peak \(small.peak) KiB, +\(small.growth) KiB; "
                + "\(large.packets) packets (\(megabytes) MiB): peak \(large.peak) KiB, +\(large.growth) KiB")
        #expect(large.packets > 10 * small.packets)
        #expect(
            large.growth <= small.growth + 4_096,
            "replaying \(large.packets) packets grew the resident set by \(large.growth) KiB, \(small.packets) packets by \(small.growth) KiB"
        )
        #expect(large.peak <= small.peak + 4_096, "peaks: \(large.peak) KiB against \(small.peak) KiB")
    }

    static var probePath: String? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for directory in candidates {
            let path = directory.appendingPathComponent("ReplayMemoryProbe").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
