import BPFSimCommands
import BPFTestSupport
import Foundation
import Testing

/// `bpfsim verify`, in-process.
struct VerifyCommandTests {
    func run(_ arguments: [String]) -> CLIResult { bpfsim(arguments) }

    static let programs = TestInputs.repository.appendingPathComponent("Tests/verifier/programs")

    @Test func refusalPrintsTheKernelLineTheExplanationAndThePath() {
        let result = run(["verify", Self.programs.appendingPathComponent("pkt-short-bounds-check.s").path])
        #expect(result.status == 1)
        let lines = result.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "pkt-short-bounds-check.s: refused")
        #expect(lines[1] == "invalid access to packet, off=12 size=2, R2(id=0,off=12,r=12)")
        #expect(lines[2] == "R2 offset is outside of the packet")
        #expect(result.out.contains("at instruction 6: "))
        #expect(result.out.contains("path:"))
    }

    @Test func acceptedProgramExitsZero() {
        let result = run(["verify", Self.programs.appendingPathComponent("pkt-bounds-check-ok.s").path])
        #expect(result.status == 0)
        #expect(result.out.hasPrefix("pkt-bounds-check-ok.s: accepted (processed "))
    }

    @Test func mapsAndProgramTypeForAssembly() {
        let path = Self.programs.appendingPathComponent("ctx-tc-write-ok.s").path
        #expect(run(["verify", path, "--type", "sched_cls"]).status == 0)
        #expect(run(["verify", path, "--type", "xdp"]).status == 1)
        let map = Self.programs.appendingPathComponent("map-null-checked.s").path
        #expect(run(["verify", map, "--map", "m:hash:4:8:16"]).status == 0)
    }

    @Test func jsonReport() throws {
        let result = run(["verify", Self.programs.appendingPathComponent("map-null-deref.s").path, "--map", "m:hash:4:8:16", "--json"])
        #expect(result.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(object["version"] as? Int == 1)
        let program = try #require((object["programs"] as? [[String: Any]])?.first)
        #expect(program["verdict"] as? String == "reject")
        #expect(program["message"] as? String == "R0 invalid mem access 'map_value_or_null'")
        #expect(program["insn"] as? Int == 6)
        #expect((program["stats"] as? [String: Any])?["processedInstructions"] as? Int == 6)
    }

    @Test func objectWithSourceLines() throws {
        let path = try BPFCorpus.verifierObject("xdp_map_no_null")
        let result = run(["verify", path, "--json"])
        #expect(result.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        let program = try #require((object["programs"] as? [[String: Any]])?.first)
        #expect((program["line"] as? String)?.hasPrefix("xdp_map_no_null.c:") == true)
        #expect((program["source"] as? String)?.contains("*value += 1") == true)
    }

    @Test func kernelEngineNeedsAnObject() {
        let result = run(["verify", Self.programs.appendingPathComponent("pkt-bounds-check-ok.s").path, "--engine", "kernel"])
        #expect(result.status == 1)
        #expect(!result.err.isEmpty)
    }

    /// `run` verifies first, as the kernel would at load, and refuses what the verifier refuses;
    /// `--no-verify` runs it anyway. xdp_no_bounds is refused by Linux 6.18 with
    /// "invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)" (Tests/verifier/kernel-verdicts.json).
    @Test func runRefusesWhatTheVerifierRefuses() throws {
        let path = try BPFCorpus.verifierObject("xdp_no_bounds")
        let packet = "000000000000000000000000" + "0800" + String(repeating: "00", count: 20)
        let refused = run(["run", path, "--data-hex", packet])
        #expect(refused.status == 1)
        #expect(refused.err.contains("program 'no_bounds' would be refused by the kernel's verifier: invalid access to packet"))
        #expect(refused.err.contains("xdp_no_bounds.c:"))
        let json = run(["run", path, "--data-hex", packet, "--json"])
        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let error = try #require(object["error"] as? [String: Any])
        #expect(error["kind"] as? String == "verify")
        #expect(error["code"] as? String == "verifier")
        #expect(error["verifier"] as? String == "packet_bounds")
        #expect(error["pc"] is Int)
        let anyway = run(["run", path, "--data-hex", packet, "--no-verify"])
        #expect(anyway.status == 0, "\(anyway.err)")
        #expect(anyway.out.hasPrefix("r0 = 0x0000000000000002 (2)"))
        // A program the verifier accepts runs as before.
        let accepted = run(["run", try BPFCorpus.verifierObject("xdp_bounds"), "--data-hex", packet])
        #expect(accepted.status == 0, "\(accepted.err)")
    }
}
