import BPFKernel
import BPFTestSupport
import Foundation
import Testing

/// `bpfsim bench` end to end with tiny samples: every program of ../shared/bench appears,
/// every peer returns native's value, and those values are the ones
/// ../shared/bench/README.md gives ("Expected return values", identical on all four peers,
/// the kernel's included). Timings are only checked to be there, never compared.
@Suite(.enabled(if: BPFCorpus.benchDirectory != nil, "../shared/bench is absent"))
struct BenchCommandTests {
    /// From ../shared/bench/README.md; map_lookup's first run inserts its flow (0x102).
    static let expected: [String: UInt32] = [
        "empty": 0x0, "csum": 0xa242, "alu_mix": 0xd6a1_244e, "alu_nodiv": 0x35cf_9e60, "collatz": 0x2da4_3e0a,
        "pkt_parse": 0x3cea_9e7a, "map_lookup": 0x102,
    ]

    var benchDirectory: String { BPFCorpus.benchDirectory!.path }

    /// A JSON object of numbers.
    static func numbers(_ value: Any?) -> [String: Double] {
        ((value as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    @Test func jsonReportCoversEveryProgramAndEveryPeerAgrees() throws {
        let result = bpfsim(["bench", "--json", "--iterations", "2", "--samples", "1", "--bench-dir", benchDirectory])
        #expect(result.status == 0, "\(result.err)")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any], "\(result.out)")
        #expect(report["version"] as? Int == 1)
        let method = try #require(report["method"] as? [String: Any])
        #expect(method["iterations"] as? Int == 2)
        #expect(method["samples"] as? Int == 1)
        #expect(method["statistic"] as? String == "median")
        let machine = try #require(report["machine"] as? [String: Any])
        #expect((machine["cpus"] as? Int ?? 0) >= 1)
        let unavailable = try #require(report["unavailable"] as? [String: String])
        let kernelRuns = unavailable["kernel"] == nil
        #expect(kernelRuns == (Kernel.unavailability() == nil))

        let programs = try #require(report["programs"] as? [[String: Any]])
        #expect(programs.compactMap { $0["name"] as? String } == BPFCorpus.benchNames)
        for program in programs {
            let name = try #require(program["name"] as? String)
            let results = Self.numbers(program["results"]).mapValues { UInt32(exactly: $0) }
            let peers = ["native", "interpreter", "jit"] + (kernelRuns ? ["kernel"] : [])
            #expect(Set(results.keys) == Set(peers), "\(name): \(String(describing: program["notes"]))")
            if let expected = Self.expected[name] {
                for peer in peers { #expect(results[peer] == expected, "\(name) on \(peer)") }
            }
            #expect(program["agree"] as? Bool == true, "\(name)")
            let times = Self.numbers(program["nsPerRun"])
            for peer in peers { #expect((times[peer] ?? 0) > 0, "\(name): no time for \(peer)") }
            let ratios = Self.numbers(program["ratioToNative"])
            #expect(ratios["native"] == 1)
            #expect(ratios["jit"] != nil && ratios["interpreter"] != nil)
            #expect((program["executedInstructions"] as? Int ?? 0) >= 2, "\(name)")
            #expect((program["interpreterNsPerInstruction"] as? Double ?? 0) > 0, "\(name)")
            #expect((program["compileNsPerInstruction"] as? Double ?? 0) > 0, "\(name)")
            #expect((program["compileInstructionsPerSecond"] as? Double ?? 0) > 0, "\(name)")
        }
    }

    @Test func tableHasAnAlignedRowPerProgram() throws {
        let result = bpfsim([
            "bench", "--filter", "csum", "--iterations", "2", "--samples", "1", "--bench-dir", benchDirectory,
        ])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("program") }, "\(result.out)")
        let row = try #require(lines.first { $0.hasPrefix("csum ") }, "\(result.out)")
        for column in ["insns", "executed", "native", "jit", "jit/nat", "interp", "ns/insn", "kernel", "compile"] {
            #expect(header.contains(column), "no \(column) column")
        }
        // Numbers are right-aligned under their heading; the result is left-aligned under its own.
        let result0 = try #require(header.range(of: "result"))
        #expect(row.distance(from: row.startIndex, to: try #require(row.range(of: "0xa242")).lowerBound)
            == header.distance(from: header.startIndex, to: result0.lowerBound))
        let jitEnd = header.distance(from: header.startIndex, to: try #require(header.range(of: " jit ")).upperBound) - 1
        #expect(row.count > jitEnd && row[row.index(row.startIndex, offsetBy: jitEnd - 1)] != " ")
        #expect(result.out.contains("JIT compile:"))
        #expect(!lines.contains { $0.hasPrefix("alu_mix") })
    }

    /// Where bpf() is refused the kernel column is empty and the reason is said once.
    @Test func aRefusedKernelIsSaidOnce() throws {
        let result = Kernel.$environmentOverride.withValue([Kernel.disableVariable: "1"]) {
            bpfsim(["bench", "--filter", "empty", "--iterations", "2", "--samples", "1", "--bench-dir", benchDirectory])
        }
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n").map(String.init)
        let reasons = lines.filter { $0.hasPrefix("kernel: not measured: ") }
        #expect(reasons.count == 1 && reasons[0].contains("BPFSIM_NO_KERNEL is set"), "\(result.out)")
        let header = try #require(lines.first { $0.hasPrefix("program") })
        let row = try #require(lines.first { $0.hasPrefix("empty ") })
        // The kernel and kernel/native cells are dashes, right-aligned under their headings.
        let kernelEnd = header.distance(from: header.startIndex, to: try #require(header.range(of: "kernel")).upperBound)
        #expect(row[row.index(row.startIndex, offsetBy: kernelEnd - 1)] == "-", "\(result.out)")
    }

    @Test func aMissingDirectoryIsNamed() {
        let result = bpfsim(["bench", "--bench-dir", "/nonexistent/bench", "--iterations", "1"])
        #expect(result.status == 1)
        #expect(result.err.contains("/nonexistent/bench"), "\(result.err)")
    }

    @Test func aFilterMatchingNothingSaysSo() {
        let result = bpfsim(["bench", "--filter", "no_such_program", "--bench-dir", benchDirectory])
        #expect(result.status == 1)
        #expect(result.err.contains("no benchmark program matches 'no_such_program'"), "\(result.err)")
    }
}
