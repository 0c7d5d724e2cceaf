import BPFKernel
import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// The kernel's known differences (docs/kernel.md), each pinned where it shows.
struct KnownDifferenceTests {
    /// XDP return values are 32 bits in a test run: a 64-bit r0 agrees on its low half.
    @Test(KernelTests.available) func retvalIsComparedOnItsLow32Bits() throws {
        let object = try KernelTests.ownObject()
        let outcome = try RunComparison.run(
            object: object, program: "wide_return", inputs: [.packet(KernelTests.packets[0])],
            backends: [.interpreter, .kernel], configuration: KernelTests.configuration)
        #expect(outcome.divergence == nil)
        #expect(outcome.results[0][0].run?.execution.returnValue == 0x1_0000_0002)
        #expect(outcome.results[0][1].run?.execution.returnValue == 0x2)
    }

    /// A real difference is reported with the input, the field and both values.
    @Test(KernelTests.available) func randomnessDiverges() throws {
        let object = try KernelTests.ownObject()
        let outcome = try RunComparison.run(
            object: object, program: "random_verdict", inputs: [.packet(KernelTests.packets[0])],
            backends: [.interpreter, .kernel], configuration: KernelTests.configuration)
        let divergence = try #require(outcome.divergence)
        #expect(divergence.input == 0)
        #expect(divergence.field == "retval")
        #expect(divergence.first == .interpreter && divergence.second == .kernel)
        #expect(divergence.note == "low 32 bits: the kernel's test-run retval is 32 bits")
        #expect(divergence.firstValue != divergence.secondValue)
    }

    /// Per-CPU maps, hashes and queues after several packets; the 4000-byte packet is
    /// seen with 3520 linear bytes on both sides.
    @Test(KernelTests.available, arguments: ["packet_length", "count_lengths", "rewrite"])
    func ownProgramsAgree(_ program: String) throws {
        let object = try KernelTests.ownObject()
        let packets = KernelTests.packets + [Array(repeating: 0x5a, count: 9000)]
        let divergence = try KernelTests.divergence(object, program: program, packets: packets)
        #expect(divergence == nil, "\(divergence ?? "")")
    }

    /// The kernel refuses a packet shorter than an Ethernet header; bpfsim runs it.
    @Test(KernelTests.available) func shortPacketsAreRefusedByTheKernel() throws {
        let object = try KernelTests.ownObject()
        let session = try KernelSession(
            object: object, program: "packet_length", configuration: KernelTests.configuration)
        do {
            _ = try session.run(try session.programIndex(named: "packet_length"), input: .packet([1, 2, 3]))
            Issue.record("the kernel ran a 3-byte packet")
        } catch {
            #expect(error.code == "kernel_run")
            #expect(error.message.contains("EINVAL"))
        }
    }

    /// A packet needing more than 17 fragments (past 3520 + 17 pages) fails with -ENOMEM.
    @Test(KernelTests.available) func oversizedPacketsAreRefusedByTheKernel() throws {
        let object = try KernelTests.ownObject()
        let session = try KernelSession(
            object: object, program: "packet_length", configuration: KernelTests.configuration)
        do {
            _ = try session.run(0, input: .packet([UInt8](repeating: 0, count: 3520 + 17 * 4096 + 1)))
            Issue.record("the kernel ran an 18-fragment packet")
        } catch {
            #expect(error.message.contains("ENOMEM"))
        }
        let fits = try session.run(0, input: .packet([UInt8](repeating: 0, count: 3520 + 17 * 4096)))
        #expect(fits.execution.returnValue == 3520)
    }
}

/// The captures of ../shared/pcaps through the XDP programs of the corpus and the packet
/// benchmarks, packet by packet and map by map, maps carried over within a capture.
struct PcapReplayTests {
    /// (object, program) pairs: the corpus's XDP programs, and the benchmarks that parse packets.
    static let programs: [String] = KernelTests.corpusXDPPrograms + ["bench:pkt_parse", "bench:map_lookup"]

    @Test(
        KernelTests.available, .enabled(if: !PcapFile.files.isEmpty, "../shared/pcaps is absent"),
        arguments: programs)
    func capturesAgreeWithTheKernel(_ entry: String) throws {
        let object: BPFObject
        let program: String
        if entry.hasPrefix("bench:") {
            program = String(entry.dropFirst(6))
            object = try BPFObject(path: try BPFCorpus.benchObject(program, variant: "XDP"))
        } else {
            let parts = entry.split(separator: "/").map(String.init)
            object = try BPFObject(path: try BPFCorpus.object(parts[0]))
            program = parts[1]
        }
        var compared = 0
        for file in PcapFile.files {
            guard let packets = PcapFile.packets(file) else { continue }
            // What the kernel refuses to test-run (docs/kernel.md) is pinned elsewhere.
            let runnable = packets.filter { $0.count >= 14 && $0.count <= 3520 + 17 * 4096 }
            guard !runnable.isEmpty else { continue }
            let divergence = try KernelTests.divergence(
                object, program: program, packets: runnable, label: file.lastPathComponent + ": ")
            #expect(divergence == nil, "\(divergence ?? "")")
            compared += runnable.count
        }
        #expect(compared > 1000)
    }
}

/// The kernel verifier's verdicts through `KernelVerifier`.
struct VerifierTests {
    @Test(KernelTests.available) func acceptedProgramsReportProcessedInstructions() throws {
        let object = try BPFObject(path: try BPFCorpus.object("multi_prog"))
        let verdict = try KernelVerifier.verify(object, program: "xdp_drop_short")
        #expect(verdict.accepted)
        #expect(verdict.processedInstructions ?? 0 > 0)
        #expect(verdict.log.contains("processed "))
        #expect(verdict.firstError == nil)
    }

    @Test(KernelTests.available) func refusedProgramsSayWhy() throws {
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("bpfsim-refused-\(getpid()).c")
        try """
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        SEC("xdp")
        int unchecked(struct xdp_md *ctx)
        {
            unsigned char *data = (void *)(long)ctx->data;
            return data[20];
        }
        char LICENSE[] SEC("license") = "GPL";
        """.write(to: source, atomically: true, encoding: .utf8)
        let object = try BPFObject(path: try BPFCorpus.object(source: source))
        let verdict = try KernelVerifier.verify(object, program: "unchecked")
        #expect(!verdict.accepted)
        #expect(verdict.errno == EACCES)
        #expect(verdict.firstError?.hasPrefix("invalid access to packet, off=20 size=1") == true, "\(verdict.log)")
        // Running it on the kernel fails at load, with the same reason.
        do {
            _ = try KernelSession(object: object, program: "unchecked")
            Issue.record("the kernel loaded a program its verifier refuses")
        } catch {
            #expect(error.code == "kernel_load")
            #expect(error.message.contains("invalid access to packet"))
            #expect(error.kernelLog?.contains("processed ") == true)
        }
    }

    /// A log larger than its buffer: the kernel fails such a load with ENOSPC whatever
    /// the verdict, so the verdict comes from a second, statistics-only load.
    @Test(KernelTests.available, .enabled(if: BPFCorpus.benchDirectory != nil, "../shared/bench is absent"))
    func aTruncatedLogStillGivesTheVerdict() throws {
        let object = try BPFObject(path: try BPFCorpus.benchObject("csum", variant: "XDP"))
        let verdict = try KernelVerifier.verify(object, program: "csum", logSize: 4096)
        #expect(verdict.accepted)
        #expect(verdict.logTruncated)
        #expect(verdict.processedInstructions == 7518)
    }

    @Test(KernelTests.available) func objectsLibbpfRefusesSayWhy() throws {
        let object = try BPFObject(path: try BPFCorpus.object("legacy_maps"))
        do {
            _ = try KernelVerifier.verify(object, program: "count_packets")
            Issue.record("libbpf 1.x opened a legacy maps section")
        } catch {
            #expect(error.code == "open")
            #expect(error.message.contains("legacy map definitions in 'maps' section are not supported"))
        }
    }
}
