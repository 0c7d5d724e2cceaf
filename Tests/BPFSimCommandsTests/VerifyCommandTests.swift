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
}
