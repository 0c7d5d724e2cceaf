import BPFHarness
import BPFSession
import Foundation
import Testing

/// The packet builder against real packets: each test decodes the header fields of a
/// packet from ../shared/pcaps (offsets from the RFCs), rebuilds it from those fields
/// alone, and expects the captured bytes back, lengths and checksums included. tshark
/// 4.0.17 validates those checksums as correct: `tshark -r FILE -o ip.check_checksum:TRUE
/// -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE -T fields -e ip.checksum.status
/// -e udp.checksum.status -e tcp.checksum.status -e icmp.checksum.status
/// -e icmpv6.checksum.status` prints 1 (good) for each packet used here.
@Suite(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
struct PacketBuilderCaptureTests {
    func packet(_ file: String, _ index: Int) throws -> [UInt8] {
        let records = try readAll(path: SharedCaptures.path(file)).records
        return records[index].bytes
    }

    func be16(_ p: [UInt8], _ at: Int) -> UInt16 { UInt16(p[at]) << 8 | UInt16(p[at + 1]) }
    func be32(_ p: [UInt8], _ at: Int) -> UInt32 {
        UInt32(p[at]) << 24 | UInt32(p[at + 1]) << 16 | UInt32(p[at + 2]) << 8 | UInt32(p[at + 3])
    }

    func ethernet(_ p: [UInt8]) -> Ethernet {
        Ethernet(source: MACAddress(bytes: Array(p[6..<12])), destination: MACAddress(bytes: Array(p[0..<6])))
    }

    /// The IPv4 header at `at`, every field but length, protocol and checksum.
    func ipv4(_ p: [UInt8], at: Int) -> IPv4 {
        let headerLength = Int(p[at] & 0x0f) * 4
        let source = IPv4Address(bytes: Array(p[at + 12..<at + 16]))
        let destination = IPv4Address(bytes: Array(p[at + 16..<at + 20]))
        return IPv4(
            source: source, destination: destination, ttl: p[at + 8], tos: p[at + 1], identification: be16(p, at + 4),
            flags: p[at + 6] >> 5, fragmentOffset: be16(p, at + 6) & 0x1fff,
            options: Array(p[at + 20..<at + headerLength]))
    }

    /// dns_udp.pcap packet 0: Ethernet, IPv4, UDP 53, a DNS query.
    @Test func udpOverIPv4() throws {
        let p = try packet("dns_udp.pcap", 0)
        let built = Packet.build {
            ethernet(p)
            ipv4(p, at: 14)
            UDP(sourcePort: be16(p, 34), destinationPort: be16(p, 36))
            Array(p[42...])
        }
        #expect(built.data == p)
    }

    /// dns_tcp.pcap packet 0: a SYN with MSS, SACK-permitted, timestamps and window scale options.
    @Test func tcpWithOptions() throws {
        let p = try packet("dns_tcp.pcap", 0)
        let dataOffset = Int(p[46] >> 4) * 4
        let built = Packet.build {
            ethernet(p)
            ipv4(p, at: 14)
            TCP(
                sourcePort: be16(p, 34), destinationPort: be16(p, 36), sequence: be32(p, 38),
                acknowledgment: be32(p, 42), flags: p[47], window: be16(p, 48), urgentPointer: be16(p, 52),
                options: Array(p[54..<34 + dataOffset]))
            Array(p[(34 + dataOffset)...])
        }
        #expect(dataOffset > 20)
        #expect(built.data == p)
    }

    /// dns_tcp.pcap packet 3: the query itself, with a payload after the TCP header.
    @Test func tcpWithPayload() throws {
        let p = try packet("dns_tcp.pcap", 3)
        let dataOffset = Int(p[46] >> 4) * 4
        let layers: [PacketLayer] = [
            .ethernet(ethernet(p)), .ipv4(ipv4(p, at: 14)),
            .tcp(
                TCP(
                    sourcePort: be16(p, 34), destinationPort: be16(p, 36), sequence: be32(p, 38),
                    acknowledgment: be32(p, 42), flags: p[47], window: be16(p, 48),
                    options: Array(p[54..<34 + dataOffset]))),
            .payload(Array(p[(34 + dataOffset)...])),
        ]
        #expect(p.count > 34 + dataOffset)
        #expect(PacketBuilder.bytes(layers) == p)
    }

    /// 5-pings.pcap packet 0: an ICMP echo request.
    @Test func icmpEcho() throws {
        let p = try packet("5-pings.pcap", 0)
        let built = Packet.build {
            ethernet(p)
            ipv4(p, at: 14)
            ICMP(type: p[34], code: p[35], identifier: be16(p, 38), sequence: be16(p, 40))
            Array(p[42...])
        }
        #expect(p[34] == 8)
        #expect(built.data == p)
    }

    /// icmp6-ping.pcap packet 0: an ICMPv6 echo request; its checksum covers the IPv6 pseudo-header.
    @Test func icmpv6Echo() throws {
        let p = try packet("icmp6-ping.pcap", 0)
        let source = IPv6Address(bytes: Array(p[22..<38]))
        let destination = IPv6Address(bytes: Array(p[38..<54]))
        let word = be32(p, 14)
        let built = Packet.build {
            ethernet(p)
            IPv6(
                source: source, destination: destination, hopLimit: p[21], trafficClass: UInt8(word >> 20 & 0xff),
                flowLabel: word & 0xfffff)
            ICMPv6(type: p[54], code: p[55], identifier: be16(p, 58), sequence: be16(p, 60))
            Array(p[62...])
        }
        #expect(p[54] == 128)
        #expect(built.data == p)
    }

    /// IGMP_V2.pcap packet 1: a 24-byte IPv4 header with the router alert option
    /// (tshark: ip.hdr_len 24, ip.opt.type 148), protocol 2 given, IGMP as payload.
    @Test func ipv4Options() throws {
        let p = try packet("IGMP_V2.pcap", 1)
        var ip = ipv4(p, at: 14)
        ip.protocol = 2
        let built = Packet.build {
            ethernet(p)
            ip
            Array(p[38..<14 + Int(be16(p, 16))])
        }
        #expect(ip.options == [0x94, 0x04, 0x00, 0x00])
        #expect(built.data == Array(p.prefix(14 + Int(be16(p, 16)))))
    }

    /// 802.1ad_QinQ.pcap packet 0: an S-tag with TPID 0x88a8 (VID 200), then a C-tag
    /// (VID 2001), then ARP (type given).
    @Test func qinq() throws {
        let p = try packet("802.1ad_QinQ.pcap", 0)
        let built = Packet.build {
            ethernet(p)
            VLAN(id: be16(p, 14) & 0xfff, priority: p[14] >> 5)
            VLAN(id: be16(p, 18) & 0xfff, priority: p[18] >> 5, type: 0x0806)
            Array(p[22...])
        }
        #expect(be16(p, 12) == 0x88a8)
        #expect(built.data == p)
    }
}

/// Builder behaviour that needs no capture: values computed by hand from the RFCs.
struct PacketBuilderTests {
    /// RFC 1071's worked example: words 0001 f203 f4f5 f6f7 sum to 0xddf2 (with the end-around
    /// carry), so the checksum is its complement, 0x220d.
    @Test func internetChecksum() {
        #expect(Checksum.internet([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]) == 0x220d)
        // An odd length pads with zero: 0x0100 -> 0xfeff.
        #expect(Checksum.internet([0x01]) == 0xfeff)
    }

    @Test func addresses() {
        func v6(_ text: String) -> IPv6Address? { IPv6Address(text) }
        func v4(_ text: String) -> IPv4Address? { IPv4Address(text) }
        func mac(_ text: String) -> MACAddress? { MACAddress(text) }
        #expect(v6("fe80::1")?.bytes == [0xfe, 0x80] + Array(repeating: 0, count: 13) + [1])
        #expect(v6("::ffff:10.0.0.1")?.bytes == Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1])
        #expect(v6("1:2:3:4:5:6:7:8:9") == nil)
        #expect(v6("1::2::3") == nil)
        #expect(v4("10.0.0.256") == nil)
        #expect(mac("02:00:00:00:00") == nil)
        #expect(TCP.flags("SA") == 0x12)
        #expect(TCP.flags("X") == nil)
    }

    /// The default stack: types and lengths follow the layers (IPv4 total length 20+8+5,
    /// UDP length 8+5, EtherType 0x0800, protocol 17); a lone VLAN tag is 0x8100.
    @Test func lengthsAndTypes() {
        let bytes = PacketBuilder.bytes([
            .ethernet(Ethernet()), .vlan(VLAN(id: 5, priority: 3)), .ipv4(IPv4()),
            .udp(UDP(sourcePort: 1, destinationPort: 2)), .payload(Array("hello".utf8)),
        ])
        #expect(bytes[12..<14] == [0x81, 0x00])
        #expect(bytes[14..<16] == [0x60, 0x05])
        #expect(bytes[16..<18] == [0x08, 0x00])
        #expect(bytes[20..<22] == [0x00, 33])
        #expect(bytes[27] == 17)
        #expect(bytes[42..<44] == [0x00, 13])
        #expect(bytes.count == 14 + 4 + 20 + 8 + 5)
        // A given checksum or length is kept as given.
        let given = PacketBuilder.bytes([.ipv4(IPv4(totalLength: 99, checksum: 0xbeef))])
        #expect(given[2..<4] == [0, 99])
        #expect(given[10..<12] == [0xbe, 0xef])
    }
}
