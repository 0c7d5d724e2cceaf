import BPFHarness
import BPFSession
import BPFTestSupport
import Foundation
import Testing

/// PacketReplay: shared captures through corpus programs, bpfsim's engines compared
/// packet by packet (map by map, printk, events, redirects, faults).
@Suite struct ReplayTests {
    /// corpus/programs/flow_table.bpf.c (XDP: a hash map keyed by the IPv4 5-tuple, a
    /// ring of events) and corpus/contexts/skb_fields.c built with -DTC (sched_cls: every
    /// __sk_buff field it may read, wire_len included, stored in an array map).
    static func flowTable() throws -> BPFObject { try BPFObject(path: ProgramCorpus.object("flow_table")) }
    static func skbFields() throws -> BPFObject {
        try BPFObject(path: BPFCorpus.contextObject("skb_fields.c", defines: ["TC"]))
    }

    /// Every shared capture libpcap reads, with the number of packets INDEX.md gives.
    static var readableCaptures: [SharedCaptures.Entry] {
        SharedCaptures.index.filter { entry in
            (try? CaptureReader(path: SharedCaptures.path(entry.file))) != nil
        }
    }

    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
    func xdpCapturesAgreeOnBothEngines() throws {
        let object = try Self.flowTable()
        var replayed = 0
        for entry in Self.readableCaptures {
            let replay = try PacketReplay(
                object: object, program: "track_flows", backends: Backend.allEngines, options: .init(cpus: 2))
            let reader = try CaptureReader(path: SharedCaptures.path(entry.file))
            let summary = replay.replay(reader)
            #expect(summary.divergence == nil, "\(entry.file): \(summary.divergence.map { "\($0)" } ?? "")")
            // modify-request.pcapng stops at its first packet (libpcap refuses its
            // interfaces); the rest replay every packet capinfos counts.
            if summary.captureError == nil {
                #expect(
                    summary.packets + summary.skippedRecords == entry.packets, "\(entry.file)")
            }
            #expect(summary.packetsPerCPU.reduce(0, +) == summary.packets)
            replayed += summary.packets
        }
        #expect(replayed > 1_000)
    }

    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
    func tcCapturesAgreeOnBothEngines() throws {
        let object = try Self.skbFields()
        for entry in Self.readableCaptures {
            let replay = try PacketReplay(
                object: object, program: "skb_fields", backends: Backend.allEngines, options: .init(cpus: 2))
            let summary = replay.replay(try CaptureReader(path: SharedCaptures.path(entry.file)))
            #expect(summary.divergence == nil, "\(entry.file): \(summary.divergence.map { "\($0)" } ?? "")")
            #expect(summary.faults == 0, "\(entry.file): \(summary.faultSamples)")
        }
    }

    /// A cut packet runs as captured, with its original length as wire_len (field 32 of
    /// skb_fields) and the captured length as len (field 0), as BPF_PROG_TEST_RUN's
    /// ctx_in wire_len gives it (net/bpf/test_run.c, convert___skb_to_skb: cb->pkt_len).
    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
    func truncatedPacketsKeepTheirWireLength() throws {
        // quic_handshake_truncated.pcap: 18 records, 4 cut by its snaplen of 256 (INDEX.md);
        // a NULL capture, so each record gets a 14-byte Ethernet header for its 4-byte one.
        let replay = try PacketReplay(object: try Self.skbFields(), program: "skb_fields")
        var cut: [(lengthIn: Int, wireLength: Int, fields: MapDump?)] = []
        let summary = replay.replay(try CaptureReader(path: SharedCaptures.path("quic_handshake_truncated.pcap"))) {
            result in
            if result.wireLength > result.lengthIn {
                cut.append((result.lengthIn, result.wireLength, replay.maps()["fields"]))
            }
        }
        #expect(summary.packets == 18)
        #expect(summary.refusals == 0 && summary.faults == 0)
        #expect(cut.count == 4)
        func field(_ index: UInt32, of fields: MapDump?) -> UInt64? {
            let key = Hex.string(withUnsafeBytes(of: index.littleEndian, Array.init))
            guard case .single(let value)? = fields?.entries.first(where: { $0.key == key })?.value,
                let bytes = Hex.bytes(value)
            else { return nil }
            return bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        for packet in cut {
            // 256 captured bytes less the 4-byte NULL header, plus 14 synthesized.
            #expect(packet.lengthIn == 266)
            #expect(field(0, of: packet.fields) == UInt64(packet.lengthIn))
            #expect(field(32, of: packet.fields) == UInt64(packet.wireLength))
        }
    }

    /// Maps carry over from packet to packet: flow_table counts every packet of a flow in
    /// one element. tcp-handshake-nano.pcap holds one TCP handshake: 3 packets of one
    /// flow in two directions (INDEX.md), so two elements, whose counts add up to 3.
    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
    func mapsCarryOverFromPacketToPacket() throws {
        let replay = try PacketReplay(object: try Self.flowTable(), program: "track_flows")
        let summary = replay.replay(try CaptureReader(path: SharedCaptures.path("tcp-handshake-nano.pcap")))
        #expect(summary.packets == 3)
        let flows = try #require(replay.maps()["flows"])
        #expect(flows.entries.count == 2)
        let packets = flows.entries.compactMap { entry -> UInt64? in
            guard case .single(let hex) = entry.value else { return nil }
            let bytes = Hex.bytes(hex) ?? []
            return bytes.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        #expect(packets.reduce(0, +) == 3)
    }
}

extension Backend {
    /// The interpreter and the JIT.
    static var allEngines: [Backend] { Engine.allCases.map(Backend.engine) }
}
