import BPFSim
import Foundation
import Testing

// The examples of docs/library.md, verbatim but for the paths. Expected verdicts and
// counts come from the kernel: `kernel_oracle.py elf-run --obj counter.o --prog
// count_protocols --data-hex PACKET --json` gives retval 1 (XDP_DROP) for the UDP packet
// to port 9 and 2 (XDP_PASS) for the TCP one, and `protocols` then holds 1 at key 17 and
// key 6.

/// This file's folder: the program and the spec live beside it.
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

@Test func simulationRunsAPacket() throws {
    let sim = try Simulation(object: here.appendingPathComponent("counter.bpf.c").path, program: "count_protocols")
    let discard = Packet.build {
        Ethernet(source: "02:00:00:00:00:01", destination: "02:00:00:00:00:02")
        IPv4(source: "10.0.0.7", destination: "10.0.0.1")
        UDP(sourcePort: 40000, destinationPort: 9)
        "hello"
    }
    let result = sim.run(discard)
    #expect(result.xdpAction == .drop)
    #expect(result.verdictName == "XDP_DROP")

    let web = Packet.build {
        Ethernet()
        IPv4(source: "10.0.0.7", destination: "10.0.0.1")
        TCP(sourcePort: 40000, destinationPort: 80, flags: TCP.flags("S")!)
    }
    #expect(sim.run(web).xdpAction == .pass)

    let protocols = try sim.map("protocols")
    #expect(protocols.value(forKey: UInt32(17), as: UInt64.self) == 1)
    #expect(protocols.value(forKey: UInt32(6), as: UInt64.self) == 1)
}

@Test func specRunnerFromSwift() {
    let runner = SpecRunner(backends: [.engine(.interpreter), .engine(.jit)])
    let report = runner.run(path: here.appendingPathComponent("counter.spec.yaml").path)
    #expect(report.error == nil)
    #expect(report.failed == 0)
    #expect(report.passed == 5)  // verify, then two cases on two engines
}
