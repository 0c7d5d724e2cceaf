import BPFHarness
import BPFSession
import BPFTestSupport
import Foundation
import Testing

/// The shared captures replayed on the interpreter, the JIT and the running kernel
/// (BPF_PROG_TEST_RUN), compared packet by packet and map by map, maps carried over
/// within each capture and packets on their RSS CPU. Skipped, with the kernel's one
/// sentence, where bpf() is refused.
@Suite struct ReplayKernelTests {
    static var kernel: ConditionTrait {
        .enabled(
            if: KernelSession.unavailability == nil,
            Comment(rawValue: KernelSession.unavailability ?? "the kernel is available"))
    }

    static func compareEveryCapture(_ object: BPFObject, program: String) throws {
        var compared = 0
        for entry in ReplayTests.readableCaptures {
            let replay = try PacketReplay(
                object: object, program: program, backends: Backend.allEngines + [.kernel],
                configuration: RunConfiguration(world: World(cpuCount: KernelSession.possibleCPUs)),
                options: .init(cpus: KernelSession.possibleCPUs))
            let summary = replay.replay(try CaptureReader(path: SharedCaptures.path(entry.file)))
            #expect(summary.divergence == nil, "\(entry.file): \(summary.divergence.map { "\($0)" } ?? "")")
            #expect(summary.errors == 0, "\(entry.file): \(summary.errorSamples)")
            compared += summary.packets
        }
        #expect(compared > 1_000)
    }

    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip), kernel)
    func xdpCapturesAgreeWithTheKernel() throws {
        try Self.compareEveryCapture(try ReplayTests.flowTable(), program: "track_flows")
    }

    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip), kernel)
    func tcCapturesAgreeWithTheKernel() throws {
        try Self.compareEveryCapture(try ReplayTests.skbFields(), program: "skb_fields")
    }

    /// Programs of corpus/programs whose answers depend on how bpfsim sets itself up beside
    /// the kernel, replayed as `bpfsim replay --engine all` does by default (one RSS CPU):
    /// per-CPU values read on the kernel's other possible CPU (percpu_stats), LRU free lists
    /// per possible CPU (lru_flows), perf event outputs with no reader in a test run
    /// (perf_events), an XSKMAP the kernel cannot list back (redirect), and bpf_jiffies64
    /// at a capture's time 0 (clock_random_cpu; its other facts are relations that hold on
    /// any clock). Each once differed from the kernel until bpfsim matched its machine.
    @Test(
        .enabled(if: SharedCaptures.available, SharedCaptures.skip), kernel,
        arguments: ["percpu_stats", "lru_flows", "perf_events", "redirect", "clock_random_cpu"])
    func corpusProgramsAgreeWithTheKernelOnOneCPU(_ name: String) throws {
        let object = try BPFObject(path: try ProgramCorpus.object(name))
        let program = try #require(object.programs.first { $0.type == .xdp }).name
        for file in ["02-sunrise-sunset-esp.pcap", "dhcp_flood.pcap", "wikipedia.pcap", "dns_tcp.pcap"] {
            let replay = try PacketReplay(
                object: object, program: program, backends: Backend.allEngines + [.kernel], options: .init(cpus: 1))
            let summary = replay.replay(try CaptureReader(path: SharedCaptures.path(file)))
            #expect(summary.divergence == nil, "\(name), \(file): \(summary.divergence.map { "\($0)" } ?? "")")
            #expect(summary.packets > 0)
        }
    }

    /// Without root the replay cannot start, and says why in the kernel's one sentence.
    @Test(.enabled(if: KernelSession.unavailability != nil, "bpf() works here: the refusal cannot be shown"))
    func anUnavailableKernelIsOneSentence() throws {
        let reason = try #require(KernelSession.unavailability)
        let object = try ReplayTests.flowTable()
        do throws(ReplayError) {
            _ = try PacketReplay(object: object, program: "track_flows", backends: [.kernel])
            Issue.record("the replay started without the kernel")
        } catch {
            #expect(error.code == "kernel_unavailable")
            #expect(error.message == reason)
        }
    }
}
