import BPFKernel
import BPFTestSupport
import Foundation
import Testing

/// `--engine`, `--compare` and `verify`, where bpf() is allowed and where it is refused.
struct KernelCommandTests {
    static let forced = ["BPFSIM_NO_KERNEL": "1"]
    static let sentence = "the kernel's bpf() is not available here: BPFSIM_NO_KERNEL is set"
    static var available: ConditionTrait {
        .enabled(if: Kernel.isAvailable, Comment(rawValue: Kernel.unavailability()?.message ?? ""))
    }
    static let packet = "02000000000102000000000208004500003200000000401100000a010203c0a80709"

    @Test func refusedKernelIsOneSentenceAndStatusOne() throws {
        let object = try BPFCorpus.object("multi_prog")
        Kernel.$environmentOverride.withValue(Self.forced) {
            let verify = bpfsim(["verify", object, "--engine", "kernel"])
            #expect(verify.status == 1)
            #expect(verify.err == "error: \(Self.sentence) (unset it to compare with the kernel)\n")
            let run = bpfsim([
                "run", object, "--program", "xdp_drop_short", "--data-hex", Self.packet, "--engine", "kernel",
            ])
            #expect(run.status == 1)
            #expect(run.err.contains(Self.sentence))
            let json = bpfsim([
                "run", object, "--program", "xdp_drop_short", "--data-hex", Self.packet, "--compare", "interp,kernel",
                "--json",
            ])
            #expect(json.status == 1)
            #expect(json.out.contains("\"code\":\"kernel_unavailable\""))
            // The interpreter alone needs nothing of the kernel.
            let interp = bpfsim(["run", object, "--program", "xdp_drop_short", "--data-hex", Self.packet])
            #expect(interp.status == 0)
        }
    }

    @Test func engineNamesAreChecked() throws {
        let object = try BPFCorpus.object("multi_prog")
        let unknown = bpfsim(["run", object, "--program", "xdp_pass_all", "--data-hex", Self.packet, "--engine", "vm"])
        #expect(unknown.status != 0)
        #expect(unknown.err.contains("unknown engine 'vm' (engines: interp, jit, kernel, both or all)"))
        let single = bpfsim([
            "run", object, "--program", "xdp_pass_all", "--data-hex", Self.packet, "--compare", "interp",
        ])
        #expect(single.err.contains("--compare needs at least two engines"))
        let both = bpfsim(["run", object, "--engine", "kernel", "--compare", "interp,kernel"])
        #expect(both.err.contains("give --engine or --compare, not both"))
        let assembly = try temporaryFile("p.s", "mov %r0, 2\nexit\n")
        let kernelAsm = bpfsim(["run", assembly, "--data-hex", Self.packet, "--engine", "kernel"])
        #expect(kernelAsm.status == 1)
        #expect(kernelAsm.err.contains("the kernel engine runs BPF object files"))
    }

    @Test(available) func runOnTheKernel() throws {
        let object = try BPFCorpus.object("multi_prog")
        let result = bpfsim([
            "run", object, "--program", "xdp_drop_short", "--data-hex", Self.packet, "--engine", "kernel", "--json",
        ])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("\"engine\":\"kernel\""))
        #expect(result.out.contains("\"retval\":1"))
        #expect(!result.out.contains("\"insns\""))  // the kernel does not count them
    }

    @Test(available) func compareAgreesAndDiverges() throws {
        let object = try BPFCorpus.object("multi_prog")
        let agree = bpfsim(["run", object, "--program", "xdp_drop_short", "--data-hex", Self.packet, "--engine", "all"])
        #expect(agree.status == 0, "\(agree.err)")
        #expect(
            agree.out.hasPrefix("interp, jit, kernel: no difference\nresults of interp:\nr0 = 0x0000000000000001 (1)\n")
        )
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("bpfsim-random-\(getpid()).c")
        try """
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        SEC("xdp")
        int random_verdict(struct xdp_md *ctx) { return bpf_get_prandom_u32() | 0x100; }
        char LICENSE[] SEC("license") = "GPL";
        """.write(to: source, atomically: true, encoding: .utf8)
        let random = try BPFCorpus.object(source: source)
        let differ = bpfsim(["run", random, "--data-hex", Self.packet, "--compare", "interp,kernel", "--json"])
        #expect(differ.status == 1)
        #expect(differ.out.contains("\"compared\":[\"interp\",\"kernel\"]"))
        #expect(
            differ.out.contains("\"divergence\":{\"engines\":[\"interp\",\"kernel\"],\"field\":\"retval\",\"input\":0"))
        let text = bpfsim(["run", random, "--data-hex", Self.packet, "--compare", "interp,kernel"])
        #expect(text.err.hasPrefix("engines differ: retval: interp 0x"))
        #expect(text.err.contains("(low 32 bits: the kernel's test-run retval is 32 bits)"))
    }

    @Test(available) func verifyAnObject() throws {
        let object = try BPFCorpus.object("multi_prog")
        let result = bpfsim(["verify", object, "--engine", "kernel"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("xdp_drop_short (xdp, section xdp): accepted, 8 instructions processed\n"))
        let one = bpfsim(["verify", object, "--engine", "kernel", "--program", "tc_second", "--json", "--verbose"])
        #expect(one.status == 0)
        #expect(one.out.contains("\"verdict\":\"accept\""))
        #expect(one.out.contains("\"name\":\"tc_second\""))
        #expect(!one.out.contains("xdp_pass_all"))
        let missing = bpfsim(["verify", object, "--engine", "kernel", "--program", "nope"])
        #expect(missing.status == 1)
        #expect(missing.err.contains("no program named 'nope'"))
        let legacy = bpfsim(["verify", try BPFCorpus.object("legacy_maps"), "--engine", "kernel"])
        #expect(legacy.status == 1)
        #expect(legacy.out.contains("count_packets (socket_filter, section socket): not verified"))
    }
}
