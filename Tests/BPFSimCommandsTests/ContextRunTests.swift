import BPFTestSupport
import Foundation
import Testing

/// `bpfsim run` on every program type corpus/contexts has: packets for tc, socket filter
/// and cgroup_skb programs (expected values from corpus/contexts/expected.json, the
/// kernel's), contexts for tracing programs.
struct ContextRunTests {
    static let packet =
        "0200000000010200000000020800450000280001000040065c6c0a0000010a000002303900500000000100000000500220005b7a0000"

    static func json(_ arguments: [String]) throws -> [String: Any] {
        let result = bpfsim(arguments + ["--json"])
        return try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
    }

    @Test func runsSocketFilterOnAPacket() throws {
        let path = try BPFCorpus.contextObject("skb_fields.c", defines: ["SOCKET"])
        let report = try Self.json(["run", path, "--data-hex", Self.packet])
        #expect(report["retval"] as? Int == 40)
        #expect(report["verdict"] as? String == "keep 40 bytes")
        // What BPF_PROG_TEST_RUN returns: 14 zero bytes, then the packet from the IP header.
        #expect((report["data_out"] as? String)?.hasPrefix(String(repeating: "00", count: 14) + "4500") == true)
    }

    @Test func runsTCWithAContext() throws {
        let path = try BPFCorpus.contextObject("skb_fields.c", defines: ["TC"])
        var ctx = [UInt8](repeating: 0, count: 192)
        ctx[8] = 0x2a  // mark
        let hex = ctx.map { String(format: "%02x", $0) }.joined()
        let report = try Self.json(["run", path, "--data-hex", Self.packet, "--ctx-hex", hex])
        #expect(report["verdict"] as? String == "TC_ACT_OK")
        #expect((report["ctx_out"] as? String)?.count == 384)
        let text = bpfsim(["run", path, "--data-hex", Self.packet])
        #expect(text.status == 0)
        #expect(text.out.contains("verdict: TC_ACT_OK"))
    }

    @Test func refusesWhatTheKernelRefuses() throws {
        let path = try BPFCorpus.contextObject("skb_fields.c", defines: ["CGROUP"])
        let result = bpfsim(["run", path, "--data-hex", "00112233"])
        #expect(result.status == 1)
        #expect(result.err.contains("the kernel would refuse this input"))
        #expect(result.err.contains("EINVAL"))
    }

    @Test func runsTracingProgramsOnDefaultAndGivenContexts() throws {
        let path = try BPFCorpus.contextObject("tracing.c")
        let exit = try Self.json(["run", path, "--program", "openat_exit"])
        #expect(exit["retval"] as? Int == 0)
        #expect(exit["verdict"] as? String == "drop event")
        let regs = (0..<21).map { index in index == 14 ? "0700000000000000" : "0000000000000000" }.joined()
        let kprobe = try Self.json(["run", path, "--program", "kprobe_args", "--ctx-hex", regs])
        let maps = try #require(kprobe["maps"] as? [String: [[String: Any]]])
        #expect(maps["out"]?.first?["value"] as? String == "0700000000000000")
        let refused = bpfsim(["run", path, "--program", "kprobe_args", "--data-hex", Self.packet])
        #expect(refused.status == 1)
        #expect(refused.err.contains("runs on a context"))
    }

    @Test func assemblyRunsAsTheTypeGiven() throws {
        let source = try temporaryFile("len.s", "ldxw %r0, [%r1+0]\nexit\n")
        let report = try Self.json(["run", source, "--data-hex", Self.packet, "--type", "socket_filter"])
        #expect(report["retval"] as? Int == 40)
        let tc = try Self.json(["run", source, "--data-hex", Self.packet, "--type", "sched_cls"])
        #expect(tc["retval"] as? Int == 54)
    }
}
