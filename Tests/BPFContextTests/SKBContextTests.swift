import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// The `__sk_buff` access rules against the kernel verifier's verdicts, and what
/// bpfsim adds around a packet (metadata, verdicts, LD_ABS, refusals).
@Suite("skb contexts")
struct SKBContextTests {
    /// The kernel's verdict on every access (expected.json `access`, from
    /// corpus/contexts/generate.py loading one-instruction programs).
    static func kernelAccess(_ kind: String) -> Set<String> {
        let table = KernelCases.document["access"] as? [String: [[Any]]] ?? [:]
        return Set((table[kind] ?? []).map { "\($0[0]):\($0[1]):\($0[2])" })
    }

    @Test(
        "every load and store the kernel's verifier accepts, and only those",
        arguments: [(SKBContext.Kind.tc, "tc"), (.socketFilter, "socket"), (.cgroupSkb, "cgroup_skb")])
    func accessTable(kind: SKBContext.Kind, name: String) {
        let expected = Self.kernelAccess(name)
        #expect(!expected.isEmpty)
        let context = SKBContext(kind: kind)
        var actual = Set<String>()
        for offset in 0..<196 {
            for size in [1, 2, 4, 8] where offset % size == 0 {
                for write in [false, true] where context.isValidAccess(offset: offset, size: size, write: write) {
                    actual.insert("\(offset):\(size):\(write ? "w" : "r")")
                }
            }
        }
        #expect(actual.subtracting(expected).sorted() == [])
        #expect(expected.subtracting(actual).sorted() == [])
    }

    static let packet: [UInt8] = KernelCases.bytes(
        "020000000001020000000002080045000028000100004006"
            + "5c6c0a0000010a000002303900500000000100000000500220005b7a0000")

    /// A program that returns the 4-byte field at `offset` of its context.
    static func fieldReader(_ offset: Int, size: String = "w", type: ProgramType) throws -> Session {
        let program = try Assembler.assemble("ldx\(size) %r0, [%r1+\(offset)]\nexit")
        return try Session(programs: [ProgramDefinition(name: "read", type: type, instructions: program)], maps: [])
    }

    @Test("packet metadata becomes wire_len, ingress_ifindex and tstamp", arguments: Engine.allCases)
    func metadata(engine: Engine) throws {
        let frame = Packet(Self.packet, wireLength: 1514, ingressIfindex: 3, timestamp: 42)
        for (offset, expected, size) in [(160, UInt64(1514), "w"), (36, 3, "w"), (152, 42, "dw"), (0, 54, "w")] {
            let session = try Self.fieldReader(offset, size: size, type: .schedCls)
            let run = session.run(0, input: .frame(frame))
            #expect(run.execution.returnValue == expected, "offset \(offset)")
        }
        // Without metadata there is no ctx_in, and wire_len reads 0 as in the kernel.
        let bare = try Self.fieldReader(160, type: .schedCls).run(0, input: .packet(Self.packet))
        #expect(bare.execution.returnValue == 0)
        #expect(bare.contextOut == nil)
        // A wire length below the captured length is what the kernel refuses.
        let short = try Self.fieldReader(160, type: .schedCls).run(
            0, input: .frame(Packet(Self.packet, wireLength: 20)))
        #expect(short.refusal?.errno == 22)
    }

    @Test("verdicts are named per program type", arguments: Engine.allCases)
    func verdicts(engine: Engine) throws {
        func verdict(_ type: ProgramType, _ value: Int32) throws -> Verdict? {
            let program = try Assembler.assemble("mov32 %r0, \(value)\nexit")
            let session = try Session(
                programs: [ProgramDefinition(name: "v", type: type, instructions: program)], maps: [],
                configuration: RunConfiguration(engine: engine))
            return session.run(0, input: .packet(Self.packet)).verdict
        }
        #expect(try verdict(.xdp, 2) == .xdp(.pass, value: 2))
        #expect(try verdict(.xdp, 9) == .xdp(nil, value: 9))
        #expect(try verdict(.schedCls, 2) == .tc(.shot, value: 2))
        #expect(try verdict(.schedAct, -1) == .tc(.unspec, value: -1))
        #expect(try verdict(.socketFilter, 0)?.description == "drop")
        #expect(try verdict(.socketFilter, 40) == .socketFilter(keep: 40))
        #expect(try verdict(.cgroupSkb, 1) == .cgroupSkb(allow: true, congestionNotification: false))
        #expect(try verdict(.cgroupSkb, 2)?.description == "drop (congestion notification)")
        #expect(TCAction.redirect.kernelName == "TC_ACT_REDIRECT")
    }

    @Test("a refused field access faults and says why", arguments: Engine.allCases)
    func refusedField(engine: Engine) throws {
        // Socket filters may not read data (offset 76).
        let run = try Self.fieldReader(76, type: .socketFilter).run(0, input: .packet(Self.packet))
        let fault = try #require(run.execution.fault)
        #expect(fault.message.contains("__sk_buff.data"))
        #expect(fault.message.contains("socket filter"))
        // skb->sk is readable in the kernel but not emulated.
        let sk = try Self.fieldReader(168, size: "dw", type: .schedCls).run(0, input: .packet(Self.packet))
        #expect(sk.execution.fault?.message.contains("not emulated") == true)
    }

    @Test("the flow hash is the same in both directions and on every run", arguments: Engine.allCases)
    func flowHash(engine: Engine) throws {
        let object = try BPFObject(path: try BPFCorpus.contextObject("skb_helpers.c"))
        func hash(_ packet: [UInt8]) throws -> UInt64 {
            let session = try Session(object: object, configuration: RunConfiguration(engine: engine))
            _ = session.run(try session.programIndex(named: "hashes"), input: .packet(packet))
            let map = try #require(session.machine.map(named: "out"))
            #expect(map.entries().count == 32)
            let skb = try #require(session.machine.context as? SKBContext)
            return UInt64(skb.hash)
        }
        let forward = try hash(Self.packet)
        var reply = Self.packet
        // Swap the addresses and the ports.
        reply.replaceSubrange(26..<34, with: Array(Self.packet[30..<34] + Self.packet[26..<30]))
        reply.replaceSubrange(34..<38, with: Array(Self.packet[36..<38] + Self.packet[34..<36]))
        #expect(try hash(reply) == forward)
        #expect(forward != 0)
        #expect(try hash(Self.packet) == forward)
    }

    @Test("packet types the kernel cannot give a packet are refused")
    func wrongInput() throws {
        let program = try Assembler.assemble("mov %r0, 0\nexit")
        let session = try Session(
            programs: [ProgramDefinition(name: "k", type: .kprobe, instructions: program)], maps: [])
        #expect(session.run(0, input: .packet(Self.packet)).refusal != nil)
        let tc = try Session(programs: [ProgramDefinition(name: "t", type: .schedCls, instructions: program)], maps: [])
        #expect(tc.run(0, input: .context([0])).refusal != nil)
    }
}
