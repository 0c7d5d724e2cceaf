import BPFSession
import Foundation
import Testing

@testable import BPFHarness

/// `Simulation` beyond what docs/library.md shows: verification, engines, map access.
/// Expected verdicts and map contents are the kernel's (see specs/filter.spec.yaml and
/// specs/reject.spec.yaml for the kernel_oracle.py runs).
struct SpecSimulationTests {
    @Test func verifierRefusalThrows() throws {
        let path = SpecFolders.path("reject.bpf.c")
        let error = #expect(throws: SimulationError.self) { try Simulation(object: path) }
        #expect(
            error?.description.contains("would be refused by the kernel's verifier: invalid access to packet") == true)
        // verify: false runs it anyway, as bpfsim run --no-verify does.
        let sim = try Simulation(object: path, verify: false)
        #expect(sim.run(bytes: Array(repeating: 0, count: 64)).xdpAction == .pass)
    }

    @Test(arguments: Engine.allCases)
    func mapsAndResults(_ engine: Engine) throws {
        let sim = try Simulation(object: SpecFolders.path("filter.bpf.c"), engine: engine, cpus: 2)
        let blocklist = try sim.map("blocklist")
        try blocklist.update(key: [10, 9, 9, 9], value: [1])
        let blocked = sim.run(
            Packet.build {
                Ethernet()
                IPv4(source: "10.9.9.9")
                UDP(sourcePort: 1, destinationPort: 53)
            })
        #expect(blocked.verdictName == "XDP_DROP")
        #expect(blocked.ringBufferRecords.isEmpty)
        let query = sim.run(
            Packet.build {
                Ethernet()
                IPv4(source: "10.0.0.7")
                UDP(sourcePort: 40000, destinationPort: 53)
                "hello"
            })
        #expect(query.xdpAction == .pass)
        #expect(query.ringBufferRecords == [[10, 0, 0, 7, 0x40, 0x9c, 13, 0]])
        let verdicts = try sim.map("verdicts")
        #expect(verdicts.value(forKey: UInt32(1), as: UInt64.self) == 1)
        #expect(verdicts.value(forKey: UInt32(2), as: UInt64.self) == 1)
        #expect(try sim.map("packets").perCPUValues(forKey: UInt32(0), as: UInt64.self) == [2, 0])
        #expect(throws: SimulationError.self) { try sim.map("no_such_map") }
    }
}
