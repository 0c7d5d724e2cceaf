import BPFHarness
import BPFSession
import BPFTestSupport
import Foundation
import Testing

/// Receive-side scaling, faults that do not stop a replay, captures that end badly, and
/// the frames a program sends on.
@Suite struct ReplayBehaviourTests {
    // MARK: - RSS

    /// Microsoft's verification data for the Toeplitz hash with its default key
    /// ("Verifying the RSS Hash Calculation", Windows driver documentation): destination
    /// and source of each row, the IPv4-only hash and the IPv4-with-TCP hash. The input is
    /// source address, destination address, source port, destination port.
    static let ipv4Vectors: [(destination: [UInt8], destinationPort: UInt16, source: [UInt8], sourcePort: UInt16,
        addresses: UInt32, withPorts: UInt32)] = [
        ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e_8fc2, 0x51cc_c178),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718_262a, 0xc626_b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0_a5de, 0x5c2b_394a),
        ([209, 142, 163, 6], 2217, [38, 27, 205, 30], 48228, 0x8298_9176, 0xafc7_327f),
        ([202, 188, 127, 2], 1303, [153, 39, 163, 191], 44251, 0x5d18_09c5, 0x10e8_28a2),
    ]

    static func port(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    @Test func toeplitzMatchesTheSpecificationsVectors() {
        for row in Self.ipv4Vectors {
            let addresses = row.source + row.destination
            #expect(ReceiveSideScaling.toeplitz(key: ReceiveSideScaling.defaultKey, input: addresses) == row.addresses)
            let tuple = addresses + Self.port(row.sourcePort) + Self.port(row.destinationPort)
            #expect(ReceiveSideScaling.toeplitz(key: ReceiveSideScaling.defaultKey, input: tuple) == row.withPorts)
        }
    }

    /// The same document's IPv6 row: destination 3ffe:2501:200:3::1 port 1766, source
    /// 3ffe:2501:200:1fff::7 port 2794: IPv6 only 0x2cc18cd5, with TCP 0x40207d3d.
    @Test func toeplitzMatchesTheIPv6Vector() {
        let destination: [UInt8] = [0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03] + Array(repeating: 0, count: 7) + [1]
        let source: [UInt8] = [0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff] + Array(repeating: 0, count: 7) + [7]
        let key = ReceiveSideScaling.defaultKey
        #expect(ReceiveSideScaling.toeplitz(key: key, input: source + destination) == 0x2cc1_8cd5)
        #expect(
            ReceiveSideScaling.toeplitz(key: key, input: source + destination + Self.port(2794) + Self.port(1766))
                == 0x4020_7d3d)
    }

    /// An Ethernet/IPv4/TCP frame from `source` to `destination`.
    static func tcpFrame(source: [UInt8], sourcePort: UInt16, destination: [UInt8], destinationPort: UInt16,
        vlan: Bool = false) -> [UInt8]
    {
        var frame: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]
        if vlan { frame += [0x81, 0x00, 0x00, 0x05] }
        frame += [0x08, 0x00]
        frame += [0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0] + source + destination
        frame += Self.port(sourcePort) + Self.port(destinationPort) + Array(repeating: 0, count: 16)
        return frame
    }

    /// A frame's hash input is the 4-tuple the specification hashes, also behind a VLAN
    /// tag; a fragment hashes its addresses only; ARP hashes nothing (queue 0).
    @Test func framesHashTheirFlow() {
        let row = Self.ipv4Vectors[0]
        let frame = Self.tcpFrame(
            source: row.source, sourcePort: row.sourcePort, destination: row.destination,
            destinationPort: row.destinationPort)
        let key = ReceiveSideScaling.defaultKey
        #expect(ReceiveSideScaling.hashInput(frame: frame).map { ReceiveSideScaling.toeplitz(key: key, input: $0) }
            == row.withPorts)
        let tagged = Self.tcpFrame(
            source: row.source, sourcePort: row.sourcePort, destination: row.destination,
            destinationPort: row.destinationPort, vlan: true)
        #expect(ReceiveSideScaling.hashInput(frame: tagged) == ReceiveSideScaling.hashInput(frame: frame))
        var fragment = frame
        fragment[14 + 6] = 0x20  // more fragments
        #expect(ReceiveSideScaling.hashInput(frame: fragment).map { ReceiveSideScaling.toeplitz(key: key, input: $0) }
            == row.addresses)
        var arp = frame
        arp[12] = 0x08
        arp[13] = 0x06
        #expect(ReceiveSideScaling.hashInput(frame: arp) == nil)
        #expect(ReceiveSideScaling(queues: 4).queue(for: arp) == 0)
        // The indirection table: 128 entries, entry i serving queue i % n.
        #expect(ReceiveSideScaling(queues: 3).queue(forHash: row.withPorts) == (row.withPorts & 127) % 3)
    }

    /// A replay puts every packet of a flow on one CPU, where the program reads it with
    /// bpf_get_smp_processor_id and the XDP rx_queue_index; flows spread over the CPUs.
    @Test(arguments: Engine.allCases)
    func packetsSpreadOverCPUsByFlow(engine: Engine) throws {
        // Returns rx_queue_index (xdp_md offset 16) << 8 | bpf_get_smp_processor_id() (8).
        let program = try Assembler.assemble(
            """
            mov %r6, %r1
            call 8
            ldxw %r1, [%r6+16]
            lsh %r1, 8
            or %r0, %r1
            exit
            """)
        let definition = ProgramDefinition(name: "where", type: .xdp, instructions: program)
        let replay = try PacketReplay(
            programs: [definition], index: 0, backends: [.engine(engine)], options: .init(cpus: 4))
        var cpuOfFlow: [UInt16: UInt32] = [:]
        for flow in 0..<64 {
            for _ in 0..<3 {
                let frame = Self.tcpFrame(
                    source: [10, 0, 0, 1], sourcePort: UInt16(10_000 + flow), destination: [10, 0, 0, 2],
                    destinationPort: 80)
                let result = replay.replay(ReplayPacket(frame))
                let seen = try #require(result.returnValue)
                #expect(seen == UInt64(result.cpu) << 8 | UInt64(result.cpu), "the program saw its CPU and queue")
                if let cpu = cpuOfFlow[UInt16(flow)] { #expect(cpu == result.cpu) }
                cpuOfFlow[UInt16(flow)] = result.cpu
            }
        }
        #expect(replay.summary.packets == 192)
        #expect(replay.summary.packetsPerCPU.count == 4)
        #expect(replay.summary.packetsPerCPU.allSatisfy { $0 > 0 }, "\(replay.summary.packetsPerCPU)")
    }

    // MARK: - Faults

    /// An XDP program that reads 5000 bytes past the packet when it is longer than 100
    /// bytes: those packets fault, the others pass, and the replay goes on.
    static let faultsOnLongPackets = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        sub %r3, %r2
        mov %r0, 2
        jgt %r3, 100, long
        exit
        long:
        ldxb %r0, [%r2+5000]
        exit
        """

    @Test(arguments: Engine.allCases)
    func faultsAreCountedAndTheReplayGoesOn(engine: Engine) throws {
        let definition = ProgramDefinition(
            name: "faulty", type: .xdp, instructions: try Assembler.assemble(Self.faultsOnLongPackets))
        let replay = try PacketReplay(
            programs: [definition], index: 0, backends: [.engine(engine)], options: .init(verify: false))
        let lengths = [60, 200, 64, 1500, 90]
        var faulted: [Int] = []
        let summary = replay.replay(
            packets: lengths.map { ReplayPacket(Array(repeating: 0xab, count: $0)) }
        ) { result in
            if result.fault != nil { faulted.append(result.number) }
        }
        #expect(faulted == [2, 4])
        #expect(summary.packets == 5)
        #expect(summary.faults == 2)
        #expect(summary.verdicts == ["XDP_PASS": 3])
        #expect(summary.faultSamples.map(\.packet) == [2, 4])
        #expect(summary.faultSamples[0].message.hasPrefix("instruction 6 (ldxb"), "\(summary.faultSamples[0].message)")
    }

    /// The interpreter and the JIT fault on the same packets, at the same instruction.
    @Test func faultsAgreeOnBothEngines() throws {
        let definition = ProgramDefinition(
            name: "faulty", type: .xdp, instructions: try Assembler.assemble(Self.faultsOnLongPackets))
        let replay = try PacketReplay(
            programs: [definition], index: 0, backends: Backend.allEngines, options: .init(verify: false))
        let summary = replay.replay(packets: [60, 200, 64].map { ReplayPacket(Array(repeating: 1, count: $0)) })
        #expect(summary.divergence == nil)
        #expect(summary.faults == 1)
    }

    /// By default the program is verified first, as the kernel does at load: the
    /// unchecked packet read is refused (the kernel says "invalid access to packet").
    @Test func theVerifierRefusesFirst() throws {
        let definition = ProgramDefinition(
            name: "faulty", type: .xdp, instructions: try Assembler.assemble(Self.faultsOnLongPackets))
        do throws(ReplayError) {
            _ = try PacketReplay(programs: [definition], index: 0)
            Issue.record("the verifier accepted an unchecked packet read")
        } catch {
            #expect(error.code == "verifier")
            #expect(error.message.hasPrefix("program 'faulty' would be refused by the kernel's verifier"), "\(error)")
        }
    }

    // MARK: - Captures that end badly

    /// A capture cut in the middle of its fourth record: the three before it are
    /// replayed and counted, and the error names the file and record 4.
    @Test func aCaptureCutShortEndsWithAnErrorNamingThePacket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "replay-cut-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        for index in 0..<4 {
            try writer.write(
                Self.tcpFrame(source: [10, 0, 0, 1], sourcePort: UInt16(index), destination: [10, 0, 0, 2],
                    destinationPort: 80), timestamp: 1_000_000_000 * UInt64(index + 1))
        }
        try writer.close()
        // Each record: 16-byte header and a 54-byte frame after the 24-byte file header;
        // cut 10 bytes into the fourth record's frame.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.truncate(atOffset: UInt64(24 + 3 * 70 + 16 + 10))
        try handle.close()
        let definition = ProgramDefinition(
            name: "pass", type: .xdp, instructions: try Assembler.assemble("mov %r0, 2\nexit"))
        let replay = try PacketReplay(programs: [definition], index: 0)
        let summary = replay.replay(try CaptureReader(path: path))
        #expect(summary.packets == 3)
        #expect(summary.verdicts == ["XDP_PASS": 3])
        let error = try #require(summary.captureError)
        #expect(error.record == 4)
        #expect(error.file == path)
        #expect(error.code == "read_failed")
    }

    /// The clock starts each packet's run at the packet's timestamp.
    @Test(arguments: Engine.allCases)
    func timestampsDriveTheClock(engine: Engine) throws {
        // call 5 = bpf_ktime_get_ns
        let definition = ProgramDefinition(
            name: "clock", type: .xdp, instructions: try Assembler.assemble("call 5\nexit"))
        let replay = try PacketReplay(programs: [definition], index: 0, backends: [.engine(engine)])
        let times: [UInt64] = [1_700_000_000_123_456_789, 1_700_000_001_000_000_000]
        var seen: [UInt64] = []
        replay.replay(packets: times.map { ReplayPacket(Array(repeating: 0, count: 60), timestamp: $0) }) {
            seen.append($0.run?.execution.returnValue ?? 0)
        }
        #expect(seen == times)
    }

    // MARK: - Frames sent on

    /// XDP_TX sends the packet as the program left it: here with its first byte rewritten.
    @Test func transmittedFramesAreThePacketsAsModified() throws {
        let program = try Assembler.assemble(
            """
            ldxw %r2, [%r1+0]
            ldxw %r3, [%r1+4]
            mov %r0, 2
            mov %r4, %r2
            add %r4, 14
            jgt %r4, %r3, done
            stb [%r2+0], 0x42
            mov %r0, 3
            done:
            exit
            """)
        let replay = try PacketReplay(
            programs: [ProgramDefinition(name: "tx", type: .xdp, instructions: program)], index: 0)
        var sent: [[UInt8]] = []
        let summary = replay.replay(
            packets: [ReplayPacket(Array(repeating: 7, count: 10)), ReplayPacket(Array(repeating: 9, count: 60))]
        ) { sent += $0.transmitted }
        #expect(summary.verdicts == ["XDP_PASS": 1, "XDP_TX": 1])
        #expect(sent == [[0x42] + Array(repeating: 9, count: 59)])
        #expect(summary.transmitted == 1)
    }
}
