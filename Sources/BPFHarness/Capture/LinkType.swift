/// A capture's link-layer header type, as libpcap reports it.
///
/// `value` is the number stored in the file (tcpdump.org's `LINKTYPE_` list); `dlt` is the
/// `DLT_` value libpcap's `pcap_datalink` returns for it. The two differ only for a few
/// historical types, of which bpfsim meets `LINKTYPE_RAW` (101), which libpcap reports as
/// `DLT_RAW` (12 on Linux). For Ethernet, libpcap has already masked off the FCS bits a
/// file may carry in the upper bits of the header's link-type field (`0x30000001` is EN10MB).
public struct LinkType: Hashable, Sendable, CustomStringConvertible {
    /// The `LINKTYPE_` number as stored in files.
    public let value: Int
    /// The `DLT_` number libpcap reports.
    public let dlt: Int
    /// libpcap's name without its `DLT_` prefix (`pcap_datalink_val_to_name`), such as `LINUX_SLL`.
    public let name: String
    /// libpcap's description (`pcap_datalink_val_to_description`), such as `Linux cooked v1`.
    public let summary: String

    public init(value: Int, dlt: Int, name: String, summary: String) {
        self.value = value
        self.dlt = dlt
        self.name = name
        self.summary = summary
    }

    /// `LINUX_SLL (113)`: the name tcpdump prints and the file's number.
    public var description: String { "\(name) (\(value))" }

    /// The link types the reader presents, Ethernet first.
    public static let presentable: [LinkType] = [
        .init(value: 1, dlt: 1, name: "EN10MB", summary: "Ethernet"),
        .init(value: 101, dlt: 12, name: "RAW", summary: "Raw IP"),
        .init(value: 228, dlt: 228, name: "IPV4", summary: "Raw IPv4"),
        .init(value: 229, dlt: 229, name: "IPV6", summary: "Raw IPv6"),
        .init(value: 113, dlt: 113, name: "LINUX_SLL", summary: "Linux cooked v1"),
        .init(value: 276, dlt: 276, name: "LINUX_SLL2", summary: "Linux cooked v2"),
        .init(value: 0, dlt: 0, name: "NULL", summary: "BSD loopback"),
        .init(value: 108, dlt: 108, name: "LOOP", summary: "OpenBSD loopback"),
        .init(value: 239, dlt: 239, name: "NFLOG", summary: "Linux netfilter log messages"),
    ]
}

/// The 14-byte Ethernet header the reader puts in front of records whose link type is not
/// Ethernet. The addresses are fixed, locally administered unicast addresses, so a program
/// that reads them sees the same values on every run:
///
/// | field | value |
/// |---|---|
/// | destination | `02:00:00:00:00:01` (the receiving interface) |
/// | source | `02:00:00:00:00:02` (the sender) |
/// | EtherType | from the record: the protocol field, address family or IP version |
public enum SynthesizedEthernet {
    public static let destination: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01]
    public static let source: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02]
    public static let headerLength = 14
    /// ETH_P_IP
    public static let etherTypeIPv4: UInt16 = 0x0800
    /// ETH_P_IPV6
    public static let etherTypeIPv6: UInt16 = 0x86DD

    /// The header for one EtherType (or, below 0x0600, an 802.3 length).
    public static func header(etherType: UInt16) -> [UInt8] {
        destination + source + [UInt8(truncatingIfNeeded: etherType >> 8), UInt8(truncatingIfNeeded: etherType)]
    }
}

/// How records of one link type become the bytes an Ethernet-based program sees. Pure: it
/// looks only at a record's captured bytes and original length, so it is tested on bytes.
enum LinkPresentation: Sendable {
    /// EN10MB: the frame as captured.
    case ethernet
    /// RAW (LINKTYPE 101, DLT 12): the IP version nibble decides between IPv4 and IPv6.
    case rawIP
    /// IPV4 (228) or IPV6 (229): the link type decides.
    case fixedIP(etherType: UInt16)
    /// LINUX_SLL (113): a 16-byte header ending in the protocol (big-endian).
    case linuxSLL
    /// LINUX_SLL2 (276): a 20-byte header starting with the protocol (big-endian).
    case linuxSLL2
    /// NULL (0) and LOOP (108): a 4-byte address family, in the capturing host's byte order
    /// for NULL and in network byte order for LOOP.
    case bsdLoopback
    /// NFLOG (239): a 4-byte header, then TLVs; the payload TLV holds the packet.
    case nflog

    /// The presentation for a `DLT_` value, or nil when bpfsim cannot present the type.
    init?(dlt: Int) {
        switch dlt {
        case 1: self = .ethernet  // DLT_EN10MB
        case 12, 14: self = .rawIP  // DLT_RAW (14 on BSD/OS; libpcap maps LINKTYPE_RAW 101 to it)
        case 101: self = .rawIP  // LINKTYPE_RAW, should a libpcap report it unmapped
        case 228: self = .fixedIP(etherType: SynthesizedEthernet.etherTypeIPv4)  // DLT_IPV4
        case 229: self = .fixedIP(etherType: SynthesizedEthernet.etherTypeIPv6)  // DLT_IPV6
        case 113: self = .linuxSLL  // DLT_LINUX_SLL
        case 276: self = .linuxSLL2  // DLT_LINUX_SLL2
        case 0, 108: self = .bsdLoopback  // DLT_NULL, DLT_LOOP
        case 239: self = .nflog  // DLT_NFLOG
        default: return nil
        }
    }

    /// What a record becomes.
    enum Outcome: Equatable {
        /// The captured bytes are already an Ethernet frame.
        case asCaptured
        /// Put a synthesized header with this EtherType in front of `count` bytes at
        /// `offset`; the presented packet's original length is `originalLength`.
        case synthesize(etherType: UInt16, offset: Int, count: Int, originalLength: Int)
        /// The record cannot be presented; the reason completes "cannot be presented as Ethernet: ".
        case refuse(String)
    }

    /// Decides how to present one record of `bytes` (as captured) whose original length was `originalLength`.
    func present(_ bytes: UnsafeRawBufferPointer, originalLength: Int) -> Outcome {
        switch self {
        case .ethernet:
            return .asCaptured
        case .rawIP:
            guard let first = bytes.first else { return .refuse("it has no bytes, so no IP version") }
            switch first >> 4 {
            case 4: return Self.strip(0, etherType: SynthesizedEthernet.etherTypeIPv4, bytes, originalLength)
            case 6: return Self.strip(0, etherType: SynthesizedEthernet.etherTypeIPv6, bytes, originalLength)
            default: return .refuse("its IP version nibble is \(first >> 4), neither 4 nor 6")
            }
        case .fixedIP(let etherType):
            return Self.strip(0, etherType: etherType, bytes, originalLength)
        case .linuxSLL:
            // sll_pkttype(2) sll_hatype(2) sll_halen(2) sll_addr(8) sll_protocol(2)
            guard bytes.count >= 16 else { return Self.short(bytes.count, header: 16, "LINUX_SLL") }
            return Self.sllProtocol(Self.bigEndian16(bytes, 14), headerLength: 16, bytes, originalLength)
        case .linuxSLL2:
            // sll2_protocol(2) reserved(2) if_index(4) hatype(2) pkttype(1) halen(1) addr(8)
            guard bytes.count >= 20 else { return Self.short(bytes.count, header: 20, "LINUX_SLL2") }
            return Self.sllProtocol(Self.bigEndian16(bytes, 0), headerLength: 20, bytes, originalLength)
        case .bsdLoopback:
            guard bytes.count >= 4 else { return Self.short(bytes.count, header: 4, "loopback") }
            var family =
                UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            // The family is in the byte order of the host that captured (NULL) or big-endian
            // (LOOP); every family fits in 16 bits, so a value with upper bits set is the
            // other byte order. tcpdump's null_if_print makes the same test.
            if family & 0xFFFF_0000 != 0 { family = family.byteSwapped }
            switch family {
            case 2:  // AF_INET everywhere
                return Self.strip(4, etherType: SynthesizedEthernet.etherTypeIPv4, bytes, originalLength)
            case 24, 28, 30:  // AF_INET6: NetBSD/OpenBSD 24, FreeBSD/DragonFly 28, Darwin 30
                return Self.strip(4, etherType: SynthesizedEthernet.etherTypeIPv6, bytes, originalLength)
            default:
                return .refuse(
                    "its address family is \(family), not AF_INET (2) or a BSD AF_INET6 (24, 28, 30)")
            }
        case .nflog:
            return Self.nflog(bytes)
        }
    }

    // MARK: - Helpers

    private static func bigEndian16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    /// Drops a `headerLength`-byte link header and keeps the rest.
    private static func strip(
        _ headerLength: Int, etherType: UInt16, _ bytes: UnsafeRawBufferPointer, _ originalLength: Int
    ) -> Outcome {
        let count = bytes.count - headerLength
        // A record's original length is at least its captured length; a file that says
        // otherwise still yields a presented length no smaller than what is presented.
        let original = max(originalLength - headerLength, count)
        return .synthesize(
            etherType: etherType, offset: headerLength, count: count,
            originalLength: SynthesizedEthernet.headerLength + original)
    }

    private static func short(_ count: Int, header: Int, _ name: String) -> Outcome {
        .refuse(
            "only \(count) byte\(count == 1 ? " was" : "s were") captured, fewer than its \(header)-byte \(name) header"
        )
    }

    /// The SLL protocol field: an EtherType from 0x0600 up; below that one of Linux's
    /// pseudo-protocols, of which two (802.3 and 802.2 frames, which have a length where
    /// Ethernet II has an EtherType) become an 802.3 header carrying the payload's length.
    private static func sllProtocol(
        _ proto: UInt16, headerLength: Int, _ bytes: UnsafeRawBufferPointer, _ originalLength: Int
    ) -> Outcome {
        if proto >= 0x0600 { return strip(headerLength, etherType: proto, bytes, originalLength) }
        switch proto {
        case 0x0001, 0x0004:  // LINUX_SLL_P_802_3 (Novell raw 802.3), LINUX_SLL_P_802_2 (802.2 LLC)
            let payload = max(originalLength - headerLength, bytes.count - headerLength)
            guard payload <= 1500 else {
                return .refuse(
                    "its 802.3 payload of \(payload) bytes is longer than an 802.3 length field allows (1500)")
            }
            return strip(headerLength, etherType: UInt16(payload), bytes, originalLength)
        default:
            return .refuse(
                "its protocol field is 0x\(String(proto, radix: 16)), a Linux pseudo-protocol (CAN, netlink, ...) and no EtherType"
            )
        }
    }

    /// NFLOG: `family(1) version(1) resource_id(2, big-endian)`, then TLVs of
    /// `length(2) type(2) value`, padded to 4 bytes. libpcap has already put the TLV length
    /// and type in this host's byte order. The packet is the value of NFULA_PAYLOAD (9); its
    /// protocol is the header's family (AF_INET 2, AF_INET6 10), else NFULA_PACKET_HDR's
    /// hw_protocol when that is an EtherType.
    private static func nflog(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard bytes.count >= 4 else { return short(bytes.count, header: 4, "NFLOG") }
        var hardwareProtocol: UInt16 = 0
        var offset = 4
        while offset + 4 <= bytes.count {
            let length = Int(hostOrder16(bytes, offset))
            let type = hostOrder16(bytes, offset + 2) & 0x7FFF  // NLA_F_NESTED and NLA_F_NET_BYTEORDER off
            guard length >= 4 else {
                return .refuse("a TLV at byte \(offset) has length \(length), less than its own 4-byte header")
            }
            switch type {
            case 1 where length >= 6 && offset + 6 <= bytes.count:  // NFULA_PACKET_HDR: hw_protocol(2, big-endian)
                hardwareProtocol = bigEndian16(bytes, offset + 4)
            case 9:  // NFULA_PAYLOAD
                let etherType: UInt16
                switch bytes[0] {
                case 2: etherType = SynthesizedEthernet.etherTypeIPv4  // NFPROTO_IPV4
                case 10: etherType = SynthesizedEthernet.etherTypeIPv6  // NFPROTO_IPV6
                default:
                    guard hardwareProtocol >= 0x0600 else {
                        return .refuse(
                            "its family is \(bytes[0]), neither NFPROTO_IPV4 (2) nor NFPROTO_IPV6 (10), and it names no EtherType"
                        )
                    }
                    etherType = hardwareProtocol
                }
                let payloadLength = length - 4
                let count = min(payloadLength, bytes.count - offset - 4)
                return .synthesize(
                    etherType: etherType, offset: offset + 4, count: count,
                    originalLength: SynthesizedEthernet.headerLength + payloadLength)
            default:
                break
            }
            offset += (length + 3) & ~3
        }
        return .refuse("it has no NFULA_PAYLOAD TLV in its \(bytes.count) captured bytes")
    }

    private static func hostOrder16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        #if _endian(little)
            UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
        #else
            UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        #endif
    }

    /// The note the reader reports once per capture when headers are synthesized.
    func synthesisNote(_ linkType: LinkType) -> String? {
        let header = "a synthesized 14-byte Ethernet header (02:00:00:00:00:02 to 02:00:00:00:00:01)"
        switch self {
        case .ethernet:
            return nil
        case .rawIP:
            return "link type \(linkType): each IP packet was given \(header), EtherType from its IP version"
        case .fixedIP:
            return "link type \(linkType): each IP packet was given \(header)"
        case .linuxSLL, .linuxSLL2:
            return
                "link type \(linkType): each record's \(self == .linuxSLL ? 16 : 20)-byte cooked header was replaced by \(header), EtherType from its protocol field"
        case .bsdLoopback:
            return
                "link type \(linkType): each record's 4-byte address family was replaced by \(header), EtherType from the family"
        case .nflog:
            return
                "link type \(linkType): each record's NFLOG payload was unwrapped and given \(header), EtherType from the NFLOG family"
        }
    }
}

extension LinkPresentation: Equatable {}
