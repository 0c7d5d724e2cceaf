@testable import BPFHarness
import Foundation
import Testing

/// Captures made in the test: cut copies of shared captures, and link-type corners no
/// shared capture has. Record layouts from pcap-savefile(5), the pcapng draft and the
/// tcpdump.org LINKTYPE_ pages (LINKTYPE_LINUX_SLL, LINKTYPE_NULL, LINKTYPE_NFLOG).
struct HandmadeCaptureTests {
    static let ipv4 = hex("4500 0014 0000 4000 4000 0000 0a00 0001 0a00 0002")  // a 20-byte IPv4 header
    static let ipv6 = hex("6000 0000 0000 3b40") + [UInt8](repeating: 0, count: 32)  // no next header

    // MARK: - Cut files

    /// Where each record of a classic pcap starts (after the 24-byte file header).
    static func recordOffsets(_ bytes: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var offset = 24
        while offset + 16 <= bytes.count {
            offsets.append(offset)
            let caplen = Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8 | Int(bytes[offset + 10]) << 16
            offset += 16 + caplen
        }
        return offsets
    }

    /// dns_tcp.pcap (11 records) cut in the middle of record 5's bytes, and in the middle
    /// of its 16-byte header: records 1-4 come first, then libpcap's error for record 5.
    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip), arguments: [false, true])
    func cutInTheMiddle(insideHeader: Bool) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SharedCaptures.path("dns_tcp.pcap"))))
        let offsets = Self.recordOffsets(original)
        #expect(offsets.count == 11)
        let cut = offsets[4] + (insideHeader ? 5 : 16 + 20)
        let directory = try temporaryDirectory()
        let path = directory.appendingPathComponent("dns_tcp-cut.pcap").path
        try Data(original.prefix(cut)).write(to: URL(fileURLWithPath: path))

        let whole = try readAll(path: SharedCaptures.path("dns_tcp.pcap")).records
        let reader = try CaptureReader(path: path)
        let outcome = readAll(reader)
        #expect(outcome.records == Array(whole.prefix(4)))
        let error = try #require(outcome.error)
        #expect(error.record == 5 && error.code == "read_failed" && error.file == path)
        let caplen = Int(original[offsets[4] + 8]) | Int(original[offsets[4] + 9]) << 8
        let detail =
            insideHeader
            ? "truncated dump file; tried to read 16 header bytes, only got 5"
            : "truncated dump file; tried to read \(caplen) captured bytes, only got 20"
        #expect(error.description == "\(path): record 5: libpcap stopped reading after 4 good records: \(detail)")
        #expect(try reader.next() == nil)
        #expect(reader.recordsRead == 4)
    }

    /// vlan-pcp-dei.pcapng (9 records) cut inside its 4th Enhanced Packet Block.
    @Test(.enabled(if: SharedCaptures.available, SharedCaptures.skip))
    func cutPcapng() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SharedCaptures.path("vlan-pcp-dei.pcapng"))))
        // Blocks: type(4) total length(4) ... total length(4), little-endian here.
        var packetBlocks: [Int] = []
        var offset = 0
        while offset + 8 <= original.count {
            let type = Int(original[offset]) | Int(original[offset + 1]) << 8
            let length = Int(original[offset + 4]) | Int(original[offset + 5]) << 8 | Int(original[offset + 6]) << 16
            if type == 6 { packetBlocks.append(offset) }
            offset += length
        }
        #expect(packetBlocks.count == 9)
        let directory = try temporaryDirectory()
        let path = directory.appendingPathComponent("cut.pcapng").path
        try Data(original.prefix(packetBlocks[3] + 30)).write(to: URL(fileURLWithPath: path))
        let outcome = try readAll(path: path)
        #expect(outcome.records.count == 3)
        #expect(outcome.error?.record == 4)
        #expect(outcome.error?.message.contains("truncated pcapng dump file") == true)
    }

    // MARK: - Files that are not captures

    @Test func missingFile() {
        let error = #expect(throws: CaptureError.self) { try CaptureReader(path: "/nonexistent/trace.pcap") }
        #expect(error?.description == "/nonexistent/trace.pcap: cannot open the capture: No such file or directory")
    }

    @Test func zeroByteFile() throws {
        let path = try temporaryDirectory().appendingPathComponent("zero.pcap").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let error = #expect(throws: CaptureError.self) { try CaptureReader(path: path) }
        #expect(error?.code == "empty_file")
        #expect(error?.description == path + ": the file is empty (0 bytes): not a pcap or pcapng capture")
    }

    /// A pcap magic number followed by too little header: libpcap's message, as a bad header.
    @Test func cutFileHeader() throws {
        let bytes = HandmadePcap(linkType: 1).bytes.prefix(10)
        let path = try temporaryDirectory().appendingPathComponent("short.pcap").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: CaptureError.self) { try CaptureReader(path: path) }
        #expect(error?.code == "bad_header")
        #expect(error?.message.contains("truncated dump file") == true)
    }

    // MARK: - Link types no shared capture has

    /// NULL with the family in either byte order (tcpdump's test: a value with upper bits is
    /// swapped), LOOP in network byte order, and the BSD AF_INET6 values.
    @Test func loopbackFamilies() throws {
        var file = HandmadePcap(linkType: 0)
        file.add(hex("0000 0002") + Self.ipv4)  // AF_INET written by a big-endian host
        file.add(hex("1800 0000") + Self.ipv6)  // 24: NetBSD/OpenBSD AF_INET6
        file.add(hex("1c00 0000") + Self.ipv6)  // 28: FreeBSD AF_INET6
        file.add(hex("0a00 0000") + Self.ipv6)  // 10: Linux AF_INET6, which NULL never carries
        file.add(hex("0200 00"))  // shorter than the family
        file.add(hex("0200 0000") + Self.ipv4)
        let path = try file.write(to: try temporaryDirectory(), name: "null.pcap")
        let outcome = try readAll(path: path)
        #expect(outcome.records.map(\.index) == [0, 1, 2, 5])
        #expect(outcome.records.map { $0.bytes[13] } == [0x00, 0xDD, 0xDD, 0x00])
        #expect(outcome.records[0].bytes == synthesized(0x0800) + Self.ipv4)
        #expect(outcome.records[1].bytes == synthesized(0x86DD) + Self.ipv6)
        #expect(outcome.refusals.map(\.record) == [4, 5])
        #expect(
            outcome.refusals.map(\.message) == [
                "this NULL (0) record cannot be presented as Ethernet: its address family is 10, not AF_INET (2) or a BSD AF_INET6 (24, 28, 30)",
                "this NULL (0) record cannot be presented as Ethernet: only 3 bytes were captured, fewer than its 4-byte loopback header",
            ])
        #expect(outcome.refusals.allSatisfy { $0.isRecoverable })

        var loop = HandmadePcap(linkType: 108, bigEndian: true)
        loop.add(hex("0000 0018") + Self.ipv6)
        let loopPath = try loop.write(to: try temporaryDirectory(), name: "loop.pcap")
        let reader = try CaptureReader(path: loopPath)
        #expect(reader.linkType.description == "LOOP (108)" && reader.byteOrder == .bigEndian)
        #expect(try reader.next()?.bytes == synthesized(0x86DD) + Self.ipv6)
    }

    /// SLL protocol values below 0x0600: LINUX_SLL_P_802_2 (4) becomes an 802.3 header
    /// whose length field is the payload's original length; CAN (0x000c) is refused.
    @Test func cookedPseudoProtocols() throws {
        let sllPrefix = hex("0000 0001 0006 0011 2233 4455 0000")  // pkttype, hatype, halen, address
        let llc = hex("4242 0300 0000 0000")
        var file = HandmadePcap(linkType: 113)
        file.add(sllPrefix + hex("0004") + llc, originalLength: 16 + 60)
        file.add(sllPrefix + hex("000c") + [0, 1, 2, 3])
        file.add(Array(sllPrefix.prefix(10)))
        file.add(sllPrefix + hex("0004") + llc, originalLength: 16 + 1_501)
        let path = try file.write(to: try temporaryDirectory(), name: "sll.pcap")
        let outcome = try readAll(path: path)
        #expect(outcome.records.count == 1)
        #expect(outcome.records[0].bytes == synthesized(60) + llc)
        #expect(outcome.records[0].originalLength == 14 + 60 && outcome.records[0].isTruncated)
        #expect(outcome.refusals.map(\.record) == [2, 3, 4])
        #expect(
            outcome.refusals[0].message.hasSuffix(
                "its protocol field is 0xc, a Linux pseudo-protocol (CAN, netlink, ...) and no EtherType"))
        #expect(
            outcome.refusals[1].message.hasSuffix(
                "only 10 bytes were captured, fewer than its 16-byte LINUX_SLL header"))
        #expect(outcome.refusals[2].message.contains("longer than an 802.3 length field allows"))
    }

    /// NFLOG: an IPv6 family, a payload cut by the snapshot length (its original length
    /// comes from the TLV), a record without payload, and a TLV shorter than its header.
    @Test func nflogCorners() throws {
        func tlv(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
            let length = UInt16(4 + value.count)
            let padding = [UInt8](repeating: 0, count: (4 - value.count % 4) % 4)
            return [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(type & 0xFF), UInt8(type >> 8)] + value + padding
        }
        let header6 = hex("0a00 0001")  // AF_INET6, version 0, resource 1
        let prefix = tlv(10, Array("drop".utf8))  // NFULA_PREFIX
        var file = HandmadePcap(linkType: 239)
        file.add(header6 + prefix + tlv(9, Self.ipv6))
        let cutPayload = header6 + prefix + tlv(9, Self.ipv6)
        file.add(
            Array(cutPayload.prefix(header6.count + prefix.count + 4 + 10)), originalLength: UInt32(cutPayload.count))
        file.add(header6 + prefix)
        file.add(header6 + hex("0200 0900"))
        let path = try file.write(to: try temporaryDirectory(), name: "nflog.pcap")
        let outcome = try readAll(path: path)
        #expect(outcome.records.count == 2)
        #expect(outcome.records[0].bytes == synthesized(0x86DD) + Self.ipv6)
        #expect(outcome.records[1].bytes == synthesized(0x86DD) + Array(Self.ipv6.prefix(10)))
        #expect(outcome.records[1].originalLength == 14 + 40 && outcome.records[1].isTruncated)
        #expect(outcome.refusals.map(\.record) == [3, 4])
        #expect(outcome.refusals[0].message.hasSuffix("it has no NFULA_PAYLOAD TLV in its 12 captured bytes"))
        #expect(outcome.refusals[1].message.hasSuffix("a TLV at byte 4 has length 2, less than its own 4-byte header"))
    }

    /// RAW: the version nibble decides; neither 4 nor 6, or no byte at all, is refused. A
    /// cut record keeps its original length, plus the synthesized header.
    @Test func rawVersions() throws {
        var file = HandmadePcap(linkType: 101)
        file.add(Array(Self.ipv4.prefix(8)), originalLength: 1_500)
        file.add(hex("5000 0000"))
        file.add([])
        file.add(Self.ipv6)
        let path = try file.write(to: try temporaryDirectory(), name: "raw.pcap")
        let outcome = try readAll(path: path)
        #expect(outcome.records.map(\.index) == [0, 3])
        #expect(outcome.records[0].bytes == synthesized(0x0800) + Array(Self.ipv4.prefix(8)))
        #expect(outcome.records[0].originalLength == 1_514)
        #expect(
            outcome.refusals.map(\.message) == [
                "this RAW (101) record cannot be presented as Ethernet: its IP version nibble is 5, neither 4 nor 6",
                "this RAW (101) record cannot be presented as Ethernet: it has no bytes, so no IP version",
            ])
    }

    /// A kept record never changes when the reader moves on (its buffer is copied on write).
    @Test func keptRecordsStayIntact() throws {
        var file = HandmadePcap(linkType: 1)
        for value in 0..<5 { file.add([UInt8](repeating: UInt8(value), count: 60)) }
        let reader = try CaptureReader(path: try file.write(to: try temporaryDirectory(), name: "five.pcap"))
        var kept: [CaptureRecord] = []
        while let record = try reader.next() { kept.append(record) }
        #expect(kept.map { $0.bytes } == (0..<5).map { [UInt8](repeating: UInt8($0), count: 60) })
    }

    // MARK: - Timestamps

    /// A microsecond pcap's fields as libpcap scales them, including a microsecond field of
    /// 10^6 or more (carried) and the last second a pcap can hold.
    @Test func microsecondFields() throws {
        var file = HandmadePcap(linkType: 1, bigEndian: true)
        file.add(Array(repeating: 0, count: 14), seconds: 1, subsecond: 999_999)
        file.add(Array(repeating: 0, count: 14), seconds: 1, subsecond: 2_500_000)
        file.add(Array(repeating: 0, count: 14), seconds: UInt32.max, subsecond: 0)
        let reader = try CaptureReader(path: try file.write(to: try temporaryDirectory(), name: "usec.pcap"))
        #expect(reader.format == .pcap && reader.byteOrder == .bigEndian)
        let records = readAll(reader).records
        #expect(records.map(\.timestamp) == [1_999_999_000, 3_500_000_000, UInt64(UInt32.max) * 1_000_000_000])
        #expect(records.map(\.timestampAdjustment) == [nil, .subsecondCarried(subsecond: 2_500_000_000), nil])
    }

    /// pcap's 32-bit fields are unsigned. libpcap 1.10 reads them as signed when the file is
    /// in this host's byte order (unsigned when it swaps), so times from 2038 on and
    /// sub-second fields of 2^31 or more arrive negative; both byte orders must agree.
    @Test(arguments: [false, true], [false, true])
    func unsignedFields(bigEndian: Bool, nanosecond: Bool) throws {
        var file = HandmadePcap(linkType: 1, bigEndian: bigEndian, nanosecond: nanosecond)
        file.add(Array(repeating: 0, count: 14), seconds: 0x8000_0000, subsecond: 5)  // 2038-01-19 03:14:08
        file.add(Array(repeating: 0, count: 14), seconds: UInt32.max, subsecond: 0x8000_0000)
        let name = "fields-\(bigEndian)-\(nanosecond).pcap"
        let reader = try CaptureReader(path: try file.write(to: try temporaryDirectory(), name: name))
        let records = readAll(reader).records
        let unit: UInt64 = nanosecond ? 1 : 1_000
        let subsecond = UInt64(0x8000_0000) * unit
        #expect(
            records.map(\.timestamp) == [
                0x8000_0000 * 1_000_000_000 + 5 * unit, UInt64(UInt32.max) * 1_000_000_000 + subsecond,
            ])
        #expect(records.map(\.timestampAdjustment) == [nil, .subsecondCarried(subsecond: subsecond)])
    }

    /// A little-endian pcapng (draft-ietf-opsawg-pcapng): a Section Header Block, one
    /// Ethernet Interface Description Block with these options, then one Enhanced Packet
    /// Block per 64-bit timestamp, in the interface's units.
    static func pcapng(options: [(code: UInt16, value: [UInt8])], timestamps: [UInt64]) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
            let length = UInt32(12 + body.count)
            return u32(type) + u32(length) + body + u32(length)
        }
        var idbOptions: [UInt8] = []
        for option in options {
            idbOptions += u16(option.code) + u16(UInt16(option.value.count)) + option.value
            idbOptions += [UInt8](repeating: 0, count: (4 - option.value.count % 4) % 4)
        }
        idbOptions += u16(0) + u16(0)  // opt_endofopt
        var file = block(0x0A0D_0D0A, u32(0x1A2B_3C4D) + u16(1) + u16(0) + [UInt8](repeating: 0xFF, count: 8))
        file += block(1, u16(1) + u16(0) + u32(0) + idbOptions)
        let frame = [UInt8](repeating: 0, count: 16)
        for t in timestamps {
            file += block(6, u32(0) + u32(UInt32(t >> 32)) + u32(UInt32(t & 0xFFFF_FFFF)) + u32(16) + u32(16) + frame)
        }
        return file
    }

    /// libpcap scales each interface's `if_tsresol` (a power of 10, or of 2 with the top bit
    /// set) to nanoseconds and adds `if_tsoffset` seconds; a time before 1970 becomes 0.
    @Test func pcapngResolutions() throws {
        let directory = try temporaryDirectory()
        func times(_ options: [(code: UInt16, value: [UInt8])], _ timestamps: [UInt64]) throws -> [CaptureRecord] {
            let url = directory.appendingPathComponent("\(UUID().uuidString).pcapng")
            try Data(Self.pcapng(options: options, timestamps: timestamps)).write(to: url)
            let outcome = try readAll(path: url.path)
            #expect(outcome.error == nil)
            return outcome.records
        }
        // No if_tsresol: microseconds.
        #expect(try times([], [1_700_000_000_123_456]).map(\.timestamp) == [1_700_000_000_123_456_000])
        // 10^-3: milliseconds. 10^-12: picoseconds, cut to nanoseconds.
        #expect(try times([(9, [3])], [1_234_567]).map(\.timestamp) == [1_234_567_000_000])
        #expect(try times([(9, [12])], [5_000_000_000_123_456]).map(\.timestamp) == [5_000_000_000_123])
        // 2^-20 s: 5.5 s is 5 × 2^20 + 2^19 units.
        #expect(try times([(9, [0x80 | 20])], [5 << 20 | 1 << 19]).map(\.timestamp) == [5_500_000_000])
        // if_tsoffset +100 s; and -10 s, which puts 5 s before 1970.
        let offset = withUnsafeBytes(of: Int64(100).littleEndian) { Array($0) }
        #expect(try times([(14, offset)], [5_000_000]).map(\.timestamp) == [105_000_000_000])
        let negative = withUnsafeBytes(of: Int64(-10).littleEndian) { Array($0) }
        let early = try times([(14, negative)], [5_000_000])
        #expect(early.map(\.timestamp) == [0] && early.map(\.timestampAdjustment) == [.beforeEpoch(seconds: -5)])
    }

    /// The cases no pcap can produce but a pcapng `if_tsoffset` can.
    @Test func timestampLimits() {
        #expect(CaptureReader.timestamp(seconds: -5, subsecond: 0) == (0, .beforeEpoch(seconds: -5)))
        #expect(
            CaptureReader.timestamp(seconds: Int64.max, subsecond: 0) == (UInt64.max, .pastRange(seconds: Int64.max)))
        #expect(CaptureReader.timestamp(seconds: 18_446_744_073, subsecond: 709_551_615) == (UInt64.max, nil))
        #expect(
            CaptureReader.timestamp(seconds: 18_446_744_073, subsecond: 709_551_616).1
                == .pastRange(seconds: 18_446_744_073))
        #expect(
            CaptureReader.timestamp(seconds: Int64.max, subsecond: 1_000_000_000).1 == .pastRange(seconds: Int64.max))
        // A fraction libpcap stored through an `int` and that wrapped negative.
        #expect(CaptureReader.timestamp(seconds: 0, subsecond: -1).0 == 4_294_967_295)
    }
}
