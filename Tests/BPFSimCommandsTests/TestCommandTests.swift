import BPFKernel
import BPFTestSupport
import Foundation
import Testing

/// `bpfsim test`, in process. The specs are BPFHarnessTests' (their expectations come
/// from the kernel; see the comments in each spec).
struct TestCommandTests {
    static let specs = TestInputs.repository.appendingPathComponent("Tests/BPFHarnessTests/specs")
    static func spec(_ name: String) -> String { specs.appendingPathComponent(name).path }

    @Test func passingSpecsExitZero() {
        let result = bpfsim(["test", Self.spec("reject.spec.yaml"), Self.spec("opens.spec.yaml")])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "reject (\(Self.spec("reject.spec.yaml")))")
        #expect(lines.contains { $0.hasPrefix("  PASS  verify [verifier]") })
        #expect(
            lines.contains {
                $0.hasPrefix("  SKIP  never runs [interp]")
                    && $0.hasSuffix("(the spec expects the verifier to reject the program)")
            })
        #expect(lines.contains { $0.hasPrefix("  PASS  three openat calls in a trace [interp]") })
        #expect(lines.last == "3 passed, 0 failed, 1 skipped")
    }

    @Test func failuresExitOneAndWriteJUnit() throws {
        let junit = FileManager.default.temporaryDirectory.appendingPathComponent(
            "bpfsim-junit-\(UUID().uuidString).xml")
        defer { try? FileManager.default.removeItem(at: junit) }
        let result = bpfsim(["test", Self.spec("failing"), "--junit", junit.path, "--filter", "verdict"])
        #expect(result.status == 1)
        #expect(result.out.contains("  FAIL  wrong verdict [interp]"))
        #expect(result.out.contains("        line 9: verdict: expected XDP_PASS, got XDP_DROP\n"))
        #expect(result.out.hasSuffix("0 passed, 1 failed, 0 skipped\n"))
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("<testcase classname=\"wrong\" name=\"wrong verdict [interp]\""))
        #expect(xml.contains("<failure message=\"line 9: verdict: expected XDP_PASS, got XDP_DROP\">"))
    }

    @Test func jsonReport() throws {
        let result = bpfsim(["test", Self.spec("errors/typo-expect.spec.yaml"), "--json"])
        #expect(result.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any]
        #expect(object?["version"] as? Int == 1)
        #expect(object?["failed"] as? Int == 1)
        let specs = object?["specs"] as? [[String: Any]]
        #expect(
            specs?.first?["error"] as? String
                == "\(Self.spec("errors/typo-expect.spec.yaml")):7: unknown key 'verdic' in expect (did you mean 'verdict'?)"
        )
    }

    @Test func unknownEngineIsRefused() {
        let result = bpfsim(["test", Self.spec("reject.spec.yaml"), "--engine", "qemu"])
        #expect(result.status != 0)
        #expect(result.err.contains("unknown engine 'qemu'"))
    }
}

/// `--no-verify` runs the cases of a spec whose program the verifier refuses, as
/// `bpfsim run --no-verify` runs such a program: reject.bpf.c reads the packet unchecked
/// and, on the spec's TCP packet, byte 20 is 0 (IPv4 flags and fragment offset), so XDP_PASS, not
/// the XDP_DROP the spec (which never expects to run) says.
@Test func noVerifyRunsRefusedPrograms() {
    let result = bpfsim(["test", TestCommandTests.spec("reject.spec.yaml"), "--no-verify"])
    #expect(result.status == 1)
    #expect(!result.out.contains("verify [verifier]"))
    #expect(result.out.contains("verdict: expected XDP_DROP, got XDP_PASS"))
}

/// Where bpf() is refused (here forced with BPFSIM_NO_KERNEL), kernel cases are skipped
/// with the kernel's one sentence, captures included; the verifier still runs.
@Test func kernelCasesSkipWhereBPFIsRefused() {
    Kernel.$environmentOverride.withValue([Kernel.disableVariable: "1"]) {
        let sentence = Kernel.unavailability()?.message ?? "?"
        let result = bpfsim(["test", TestCommandTests.spec("filter.spec.yaml"), "--engine", "kernel"])
        #expect(result.status == 0, "\(result.out)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("  PASS  verify [verifier]") })
        let skipped = lines.filter { $0.hasPrefix("  SKIP  ") }
        #expect(skipped.count == 12)
        // All of them for that reason, but the capture case when the shared captures are absent.
        #expect(skipped.filter { $0.hasSuffix("(\(sentence))") }.count >= 11)
        #expect(lines.last == "1 passed, 0 failed, 12 skipped")
    }
}
