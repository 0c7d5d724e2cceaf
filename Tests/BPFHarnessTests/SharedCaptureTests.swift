import BPFHarness
import Foundation
import Testing

/// Every capture of ../shared/pcaps against INDEX.md, and the link types, timestamps and
/// errors it was collected for. Expected bytes and times come from tcpdump 4.99.3 /
/// libpcap 1.10.3 and tshark 4.0.17 (Debian 12) on these files; each test names the
/// command.
@Suite(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
struct SharedCaptureTests {
    @Test func indexListsEveryCapture() {
        let listed = Set(SharedCaptures.index.map(\.file))
        #expect(SharedCaptures.index.count == 67)
        #expect(listed.count == SharedCaptures.index.count, "a file is listed twice")
        #expect(Set(SharedCaptures.files) == listed)
    }

    /// Packet count, cut count, link type, format and byte order of every capture, as
    /// INDEX.md gives them (from capinfos, tshark and tcpdump; see `SharedCaptures.Entry`).
    @Test(arguments: SharedCaptures.index)
    func matchesIndex(_ entry: SharedCaptures.Entry) throws {
        let path = SharedCaptures.path(entry.file)
        switch entry.file {
        case "arp-who-has-radiotap.pcap":
            // INDEX.md: "Use it to check that an unsupported link type gets a clear error".
            let error = #expect(throws: CaptureError.self) { try CaptureReader(path: path) }
            #expect(error?.code == "unsupported_link_type")
            return
        case "modify-request.pcapng":
            // INDEX.md: libpcap refuses it (tshark counts 17 packets).
            let outcome = try readAll(path: path)
            #expect(outcome.records.isEmpty && outcome.error?.code == "read_failed")
            return
        default:
            break
        }
        let reader = try CaptureReader(path: path)
        let outcome = readAll(reader)
        #expect(outcome.error == nil)
        #expect(outcome.refusals.isEmpty)
        #expect(outcome.records.count == entry.packets, "packets (capinfos -c)")
        #expect(outcome.records.filter(\.isTruncated).count == entry.cut, "cut records (tshark)")
        #expect(reader.linkType.name == entry.linkType, "link type (tcpdump)")
        #expect(reader.format.rawValue == entry.format)
        #expect(reader.byteOrder == (entry.byteOrder == "BE" ? .bigEndian : .littleEndian))
        #expect(outcome.records.map(\.index) == Array(0..<outcome.records.count))
        #expect(reader.synthesizesHeaders == (entry.linkType != "EN10MB"))
        for record in outcome.records {
            #expect(record.originalLength >= record.bytes.count)
            #expect(record.isTruncated == (record.bytes.count < record.originalLength))
        }
    }

    // MARK: - Synthesized Ethernet headers

    /// `tcpdump -nn -r tcp-handshake-nano.pcap -xx -c1`: the 16-byte SLL header
    /// `0004 0200 0000 0000 0000 0000 0000 0800` (protocol 0x0800), then the IPv4 packet.
    @Test func linuxCookedV1() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("tcp-handshake-nano.pcap"))
        #expect(reader.linkType.description == "LINUX_SLL (113)")
        #expect(reader.synthesisNote?.contains("16-byte cooked header") == true)
        let record = try #require(try reader.next())
        let ip = hex(
            """
            4500 003c 29a9 4000 4006 db5f 839b d745
            8974 515e b640 0050 2f84 2acb 0000 0000
            a002 6a40 50c4 0000 0204 0550 0402 080a
            436a 0362 0000 0000 0103 0307
            """)
        #expect(record.bytes == synthesized(0x0800) + ip)
        #expect(record.recordCapturedLength == 76 && record.recordOriginalLength == 76)
        #expect(record.originalLength == 74)
    }

    /// `tcpdump -nn -r linuxsll-arp.pcap -xx -c1`: protocol 0x0806, a 46-byte ARP payload.
    @Test func linuxCookedV1ARP() throws {
        let record = try #require(try CaptureReader(path: SharedCaptures.path("linuxsll-arp.pcap")).next())
        let arp = hex(
            """
            0001 0800 0604 0001 cc2d e026 1999 c0a8
            1601 0000 0000 0000 c0a8 16a0 0000 0000
            0000 0000 0000 0000 0000 0000 0000
            """)
        #expect(record.bytes == synthesized(0x0806) + arp)
    }

    /// `tcpdump -nn -r linux_dlt_sll2.pcap -xx`: the first two bytes of each 20-byte SLL2
    /// header are 0800 0800 86dd 86dd 0806 8035; the first packet's IPv4 header starts at 20.
    @Test func linuxCookedV2() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("linux_dlt_sll2.pcap"))
        #expect(reader.linkType.description == "LINUX_SLL2 (276)")
        let records = readAll(reader).records
        #expect(
            records.map { UInt16($0.bytes[12]) << 8 | UInt16($0.bytes[13]) } == [
                0x0800, 0x0800, 0x86DD, 0x86DD, 0x0806, 0x8035,
            ])
        #expect(records.allSatisfy { Array($0.bytes.prefix(12)) == Array(synthesized(0).prefix(12)) })
        let first = try #require(records.first)
        #expect(Array(first.bytes[14..<30]) == hex("4500 0054 af8c 4000 4001 071a c000 0201"))
        #expect(first.bytes.count == 14 + 84 && first.recordCapturedLength == 20 + 84)
    }

    /// `tcpdump -nn -r LINKTYPE_RAW_ipv4.pcap -xx` (and LINKTYPE_IPV4.pcap, the same bytes).
    @Test(arguments: ["LINKTYPE_RAW_ipv4.pcap", "LINKTYPE_IPV4.pcap"])
    func rawIPv4(_ file: String) throws {
        let reader = try CaptureReader(path: SharedCaptures.path(file))
        let record = try #require(try reader.next())
        let ip = hex(
            """
            4500 0039 0001 0000 4011 a695 c0a8 0164
            0909 0909 3039 0035 0025 1976 1234 0100
            0001 0000 0000 0000 0765 7861 6d70 6c65
            0363 6f6d 0000 0100 01
            """)
        #expect(record.bytes == synthesized(0x0800) + ip)
        #expect(record.originalLength == 14 + 57)
        #expect(reader.linkType.description == (file == "LINKTYPE_IPV4.pcap" ? "IPV4 (228)" : "RAW (101)"))
    }

    /// `tcpdump -nn -r LINKTYPE_RAW_ipv6.pcap -xx` (and LINKTYPE_IPV6.pcap, the same bytes).
    @Test(arguments: ["LINKTYPE_RAW_ipv6.pcap", "LINKTYPE_IPV6.pcap"])
    func rawIPv6(_ file: String) throws {
        let reader = try CaptureReader(path: SharedCaptures.path(file))
        let record = try #require(try reader.next())
        let ip = hex(
            """
            6000 0000 0025 1140 2001 0db8 0000 0000
            0000 0000 0000 0001 2620 00fe 0000 0000
            0000 0000 0000 0009 3039 0035 0025 98b3
            1234 0100 0001 0000 0000 0000 0765 7861
            6d70 6c65 0363 6f6d 0000 0100 01
            """)
        #expect(record.bytes == synthesized(0x86DD) + ip)
        #expect(reader.linkType.description == (file == "LINKTYPE_IPV6.pcap" ? "IPV6 (229)" : "RAW (101)"))
        #expect(reader.linkType.dlt == (file == "LINKTYPE_IPV6.pcap" ? 229 : 12))
    }

    /// `tcpdump -nn -r quic_handshake_truncated.pcap -xx -c1` begins `1e00 0000 6007 0e00
    /// 04b8 1140`: address family 30 (AF_INET6 on Darwin) little-endian, then IPv6.
    /// `tshark -T fields -e frame.len -e frame.cap_len`: record 1 is 1252 bytes cut to 256,
    /// record 2 is 186 whole.
    @Test func bsdLoopback() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("quic_handshake_truncated.pcap"))
        #expect(reader.linkType.description == "NULL (0)" && reader.snapshotLength == 256)
        let records = readAll(reader).records
        let first = try #require(records.first)
        #expect(Array(first.bytes.prefix(22)) == synthesized(0x86DD) + hex("6007 0e00 04b8 1140"))
        #expect(first.bytes.count == 256 - 4 + 14 && first.originalLength == 1252 - 4 + 14)
        #expect(first.isTruncated)
        #expect(records[1].bytes.count == 186 - 4 + 14 && records[1].originalLength == 186 - 4 + 14)
        #expect(!records[1].isTruncated)
        #expect(records.allSatisfy { $0.bytes[12] == 0x86 && $0.bytes[13] == 0xDD })
    }

    /// `tcpdump -nn -r nflog-http.pcap -xx -c1`: family 2 (AF_INET), TLVs of types 1, 10,
    /// 5, 11, 14, then at offset 0x2c the payload TLV `4000 0900` (64 bytes, NFULA_PAYLOAD)
    /// holding a 60-byte IPv4 SYN.
    @Test func nflog() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("nflog-http.pcap"))
        #expect(reader.synthesisNote?.contains("NFLOG payload was unwrapped") == true)
        let outcome = readAll(reader)
        #expect(outcome.records.count == 13 && outcome.refusals.isEmpty)
        let first = try #require(outcome.records.first)
        let ip = hex(
            """
            4500 003c e8ef 4000 4006 0fe3 0a00 020f
            5db8 d822 c262 0050 3f32 bad1 0000 0000
            a002 7210 4218 0000 0204 05b4 0402 080a
            0027 523e 0000 0000 0103 0307
            """)
        #expect(first.bytes == synthesized(0x0800) + ip)
        #expect(first.originalLength == 74 && first.recordCapturedLength == 0x6c)
        // Every payload is an IPv4 packet whose total length fits what was presented.
        for record in outcome.records {
            #expect(record.bytes[14] >> 4 == 4)
            #expect(Int(record.bytes[16]) << 8 | Int(record.bytes[17]) == record.bytes.count - 14)
        }
    }

    /// Ethernet captures are presented exactly as captured, without a note. For
    /// aarp-heapoverflow-1.pcap, whose header's link type is 0x30000001, libpcap masks the
    /// FCS bits; the one record is a bare 14-byte header (EtherType 0x80f3) of a
    /// 262,144-byte frame.
    @Test func ethernetAsCaptured() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("aarp-heapoverflow-1.pcap"))
        #expect(reader.linkType.description == "EN10MB (1)" && reader.synthesisNote == nil)
        let record = try #require(try reader.next())
        #expect(record.bytes.count == 14 && record.originalLength == 262_144)
        #expect(record.bytes[12] == 0x80 && record.bytes[13] == 0xF3)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: SharedCaptures.path("aarp-heapoverflow-1.pcap")))
        #expect(Array(bytes[20..<24]) == [0x01, 0x00, 0x00, 0x30])  // the link-type field as stored
    }

    /// trunc-hdr.pcap's header says snaplen 1 and its record has caplen 8: libpcap
    /// delivers 1 byte (INDEX.md: tshark shows 8).
    @Test func snapshotLengthOne() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("trunc-hdr.pcap"))
        let record = try #require(try reader.next())
        #expect(reader.snapshotLength == 1)
        #expect(record.bytes.count == 1 && record.originalLength == 78 && record.isTruncated)
    }

    /// `tcpdump -nn -r isup.pcap -xx -c1` and `tcpdump -nn -r pptp.pcap -xx -c1`: the
    /// big-endian files' first frames.
    @Test func bigEndian() throws {
        let isup = try #require(try CaptureReader(path: SharedCaptures.path("isup.pcap")).next())
        #expect(
            Array(isup.bytes.prefix(32))
                == hex("00a0 8000 5e46 0001 af0c 0696 0800 4500 0084 96da 0000 4084 c28e 0a1c 062a 0a1c"))
        #expect(isup.bytes.count == 0x92)
        let pptp = try #require(try CaptureReader(path: SharedCaptures.path("pptp.pcap")).next())
        let syn = hex(
            """
            0800 209f 6b72 0000 0000 0000 0800 4500
            0030 03b7 4000 8006 e0fa 0a01 010b 0a01
            010a 0bd1 06bb d973 edeb 0000 0000 7002
            4000 531d 0000 0204 05b4 0101 0402
            """)
        #expect(pptp.bytes == syn)
        // `tcpdump -tt --nano -c1 -r pptp.pcap`: 954147395.148077000
        #expect(pptp.timestamp == 954_147_395_148_077_000)
    }

    // MARK: - Timestamps

    /// `tcpdump -nn -tt --nano -r tcp-handshake-nano.pcap` (a nanosecond pcap).
    @Test func nanosecondPcap() throws {
        let records = try readAll(path: SharedCaptures.path("tcp-handshake-nano.pcap")).records
        #expect(
            records.map(\.timestamp) == [
                1_418_145_369_924_505_488, 1_418_145_370_052_027_262, 1_418_145_370_052_115_157,
            ])
        #expect(records.allSatisfy { $0.timestampAdjustment == nil })
        let reader = try CaptureReader(path: SharedCaptures.path("get-to-ssh-server.pcap"))
        #expect(reader.format == .pcapNanosecond)
        #expect(try reader.next()?.timestamp == 1_770_126_425_732_560_000)
    }

    /// A microsecond pcap's times, scaled by libpcap: `tcpdump -tt --nano -nn -r dns_udp.pcap`
    /// prints 1591780794.740079000 and 1591780794.870361000.
    @Test func microsecondPcap() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("dns_udp.pcap"))
        #expect(reader.format == .pcap)
        #expect(readAll(reader).records.map(\.timestamp) == [1_591_780_794_740_079_000, 1_591_780_794_870_361_000])
    }

    /// time_2106_overflow.pcapng: `tshark -T fields -e frame.time_epoch` gives
    /// 4294967296.000000000 (and `tcpdump -tttt` 2106-02-07 06:28:16.000000000; tcpdump
    /// 4.99's `-tt` prints 0.000000000, its own 32-bit overflow).
    @Test func after2106() throws {
        let record = try #require(try CaptureReader(path: SharedCaptures.path("time_2106_overflow.pcapng")).next())
        #expect(record.timestamp == 4_294_967_296 * 1_000_000_000)
        #expect(record.seconds == 4_294_967_296 && record.timestampAdjustment == nil)
    }

    /// timestamp_invalid_nano.pcap: `tcpdump -tt --nano` prints 1418145369.999999999,
    /// 1418145370.1000000000 and 1418145370.2147483648 (tshark prints the last as
    /// -1418145370.2147483648). The reader carries the whole seconds of a sub-second field
    /// of 10^9 or more into the seconds, and says so on the record.
    @Test func invalidNanoseconds() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("timestamp_invalid_nano.pcap"))
        let records = readAll(reader).records
        #expect(
            records.map(\.timestamp) == [
                1_418_145_369_999_999_999, 1_418_145_371_000_000_000, 1_418_145_372_147_483_648,
            ])
        #expect(
            records.map(\.timestampAdjustment) == [
                nil, .subsecondCarried(subsecond: 1_000_000_000), .subsecondCarried(subsecond: 2_147_483_648),
            ])
        #expect(reader.adjustedTimestamps == 2)
        #expect(records.allSatisfy { $0.nanoseconds < 1_000_000_000 })
    }

    /// pcapng-multi-interface.pcapng: interface 0 has nanosecond resolution, interface 1
    /// microsecond. `tshark -T fields -e frame.time_epoch -e frame.interface_id`.
    @Test func pcapngInterfaceResolutions() throws {
        let reader = try CaptureReader(path: SharedCaptures.path("pcapng-multi-interface.pcapng"))
        #expect(reader.format == .pcapng)
        let times = readAll(reader).records.map(\.timestamp)
        #expect(
            times == [
                1_767_663_089_500_330_493, 1_767_663_089_514_291_940, 1_767_663_437_111_897_000,
                1_767_663_437_126_460_000, 1_767_663_437_128_303_000, 1_767_663_437_140_942_000,
            ])
    }

    // MARK: - Errors

    @Test func radiotapIsRefusedByName() throws {
        let path = SharedCaptures.path("arp-who-has-radiotap.pcap")
        let error = #expect(throws: CaptureError.self) { try CaptureReader(path: path) }
        #expect(error?.file == path && error?.record == nil)
        #expect(
            error?.description
                == path
                + ": link type IEEE802_11_RADIO (127, 802.11 plus radiotap header) cannot be presented to an Ethernet-based program; bpfsim reads EN10MB (1), RAW (101), IPV4 (228), IPV6 (229), LINUX_SLL (113), LINUX_SLL2 (276), NULL (0), LOOP (108), NFLOG (239)"
        )
    }

    /// libpcap's own words, as `tcpdump -r` prints them for this file.
    @Test func modifyRequestIsLibpcapsError() throws {
        let path = SharedCaptures.path("modify-request.pcapng")
        let reader = try CaptureReader(path: path)
        #expect(reader.format == .pcapng && reader.linkType.name == "EN10MB")
        #expect(throws: CaptureError.self) { try reader.next() }
        #expect(try reader.next() == nil)  // the stream has ended
        do {
            _ = try CaptureReader(path: path).next()
        } catch {
            #expect(error.record == 1 && error.code == "read_failed" && !error.isRecoverable)
            #expect(
                error.description
                    == path
                    + ": record 1: libpcap stopped reading after 0 good records: an interface has a snapshot length 8192 different from the snapshot length of the first interface"
            )
        }
        if let tcpdump = try runTool("tcpdump", ["-r", path]) {
            #expect(tcpdump.errors.contains("snapshot length 8192 different"))
        }
    }

    @Test(arguments: ["empty.pcap", "empty.pcapng"])
    func emptyCaptures(_ file: String) throws {
        let reader = try CaptureReader(path: SharedCaptures.path(file))
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
        #expect(reader.recordsRead == 0 && reader.linkType.name == "EN10MB")
    }

    /// A file that is no capture: libpcap says "unknown file format".
    @Test func notACapture() throws {
        let path = SharedCaptures.path("INDEX.md")
        let error = #expect(throws: CaptureError.self) { try CaptureReader(path: path) }
        #expect(error?.code == "not_a_capture")
        #expect(
            error?.description == path
                + ": not a pcap or pcapng capture: it starts with 23 20 50 61 (libpcap: unknown file format)")
    }
}
