import BPFKernel
import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// Every corpus program the kernel can test-run, on bpfsim and on the kernel: return
/// value, packet and every map after each of a few packets (maps carried over).
struct CorpusComparisonTests {
    @Test(KernelTests.available, arguments: KernelTests.corpusXDPPrograms)
    func xdpProgramAgreesWithTheKernel(_ entry: String) throws {
        let parts = entry.split(separator: "/").map(String.init)
        let object = try BPFObject(path: try BPFCorpus.object(parts[0]))
        let divergence = try KernelTests.divergence(object, program: parts[1], packets: KernelTests.packets)
        #expect(divergence == nil, "\(divergence ?? "")")
    }

    /// Extra initial entries (as `--state` or a test gives them) reach both sides: a
    /// per-CPU value on each CPU and a hash element the program then finds.
    @Test(KernelTests.available) func initialStateIsTheSameOnBothSides() throws {
        let object = try BPFObject(path: try BPFCorpus.object("btf_maps"))
        let cpus = Kernel.possibleCPUs
        let state: (Machine) throws -> Void = { machine in
            let scratch = try #require(machine.map(named: "scratch"))
            let value = (0..<cpus).flatMap { cpu in [UInt8](repeating: UInt8(cpu + 1), count: 24) }
            try scratch.update(key: [1, 0, 0, 0], value: value)
            let flows = try #require(machine.map(named: "flows"))
            try flows.update(key: [UInt8](repeating: 0, count: 16), value: [UInt8](repeating: 0, count: 16))
        }
        let outcome = try RunComparison.run(
            object: object, program: "count_flows", inputs: KernelTests.packets.map(ProgramInput.packet),
            backends: [.interpreter, .kernel], configuration: KernelTests.configuration, state: state)
        #expect(outcome.divergence == nil, "\(outcome.divergence?.description ?? "")")
        // The program counted into the flow the state created, on both sides.
        for result in outcome.results.last! {
            let flows = try #require(result.maps["flows"])
            #expect(flows.entries.first?.value == .single("04000000000000000000000000000000"), "\(result.backend)")
            let scratch = try #require(result.maps["scratch"])
            #expect(scratch.entries.count == 4)
        }
    }

    /// Maps of maps and prog arrays hold kernel objects; they are compared as bpfsim's
    /// indices, and a tail call goes where the prog array says on both sides.
    @Test(KernelTests.available) func fdArraysCompareAsIndices() throws {
        let object = try BPFObject(path: try BPFCorpus.object("map_in_map"))
        let outcome = try RunComparison.run(
            object: object, program: "dispatch", inputs: [.packet(KernelTests.packets[0])],
            backends: [.interpreter, .kernel], configuration: KernelTests.configuration)
        #expect(outcome.divergence == nil, "\(outcome.divergence?.description ?? "")")
        let kernel = try #require(outcome.results[0].last)
        #expect(kernel.run?.execution.returnValue == UInt64(XDPAction.pass.rawValue))
        #expect(kernel.maps["jumps"]?.entries.map(\.value) == [.single("00000000"), .single("01000000")])
        #expect(kernel.maps["outer"]?.entries.map(\.key) == ["00000000", "03000000"])
    }

    /// A .text function has no program type: the kernel cannot run it, and says so.
    @Test(KernelTests.available) func plainFunctionsAreUnsupportedInTheKernel() throws {
        let object = try BPFObject(path: try BPFCorpus.object("subprograms"))
        #expect(object.programs.contains { $0.name == "global_helper" && $0.type == .unspec })
        do {
            _ = try KernelSession(object: object, program: "global_helper")
            Issue.record("the kernel took a plain function")
        } catch {
            #expect(error.code == "kernel_unsupported")
            #expect(error.message.contains("'global_helper' is a plain function"))
        }
    }

    /// Tracepoints, kprobes and the like have no BPF_PROG_TEST_RUN: unsupported, said so.
    @Test(KernelTests.available, arguments: ["trace_openat", "probe_unlinkat", "on_sample", "sock_ops", "skb_verdict"])
    func programTypesWithoutTestRunAreUnsupported(_ program: String) throws {
        let object = try BPFObject(path: try BPFCorpus.object("sections"))
        do {
            _ = try KernelSession(object: object, program: program)
            Issue.record("the kernel claimed to run \(program)")
        } catch {
            #expect(error.code == "kernel_unsupported")
            #expect(error.message.contains("which the kernel cannot run on an input"), "\(error.message)")
        }
    }
}

/// The benchmarks of ../shared/bench, XDP builds, on their own inputs: the return values
/// its README gives, on both sides, and map_lookup's map after an insert and a hit.
struct BenchComparisonTests {
    static let expected: [String: (input: String, retval: UInt64)] = [
        "empty": ("buf1500.bin", 0x0), "csum": ("buf1500.bin", 0xa242), "alu_mix": ("buf1500.bin", 0xd6a1_244e),
        "alu_nodiv": ("buf1500.bin", 0x35cf_9e60), "collatz": ("buf1500.bin", 0x2da4_3e0a),
        "pkt_parse": ("pkt_vlan_v4_tcp.bin", 0x3cea_9e7a), "map_lookup": ("pkt_v4_tcp.bin", 0x102),
    ]

    @Test(
        KernelTests.available, .enabled(if: BPFCorpus.benchDirectory != nil, "../shared/bench is absent"),
        arguments: BPFCorpus.benchNames)
    func benchmarkAgreesWithTheKernel(_ name: String) throws {
        let object = try BPFObject(path: try BPFCorpus.benchObject(name, variant: "XDP"))
        let (inputName, retval) = try #require(Self.expected[name], "no expected value for \(name)")
        let input = try BPFCorpus.benchInput(inputName)
        let runs = name == "map_lookup" ? 2 : 1
        let outcome = try RunComparison.run(
            object: object, program: name, inputs: Array(repeating: ProgramInput.packet(input), count: runs),
            backends: [.interpreter, .kernel], configuration: KernelTests.configuration)
        #expect(outcome.divergence == nil, "\(outcome.divergence?.description ?? "")")
        for result in outcome.results[0] { #expect(result.run?.execution.returnValue == retval, "\(result.backend)") }
        if name == "map_lookup" {
            for result in outcome.results[1] {
                #expect(result.run?.execution.returnValue == 0x2, "\(result.backend)")
                #expect(result.maps["flows"]?.entries.count == 1)
            }
        }
    }
}
