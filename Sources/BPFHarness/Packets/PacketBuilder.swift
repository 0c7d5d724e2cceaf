import BPFSession

/// One header (or the payload) of a packet under construction. Layers are laid out in
/// order; each may leave fields that depend on what follows it (a type, a length, a
/// checksum) for the builder to fill in.
public enum PacketLayer: Sendable, Hashable {
    case ethernet(Ethernet)
    case vlan(VLAN)
    case ipv4(IPv4)
    case ipv6(IPv6)
    case tcp(TCP)
    case udp(UDP)
    case icmp(ICMP)
    case icmpv6(ICMPv6)
    case payload([UInt8])

    /// The EtherType that announces this layer after Ethernet or a VLAN tag.
    var etherType: UInt16? {
        switch self {
        case .ipv4: 0x0800
        case .ipv6: 0x86dd
        case .vlan: 0x8100
        default: nil
        }
    }

    /// The IP protocol number (IPv4 `protocol`, IPv6 `next header`) of this layer.
    var ipProtocol: UInt8? {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .icmp: 1
        case .icmpv6: 58
        case .ipv4: 4
        case .ipv6: 41
        default: nil
        }
    }
}

/// A 6-byte Ethernet address.
public struct MACAddress: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var bytes: [UInt8]

    /// Parses `02:00:00:00:00:01` (or with `-` separators); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count <= 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 6, "a MAC address has 6 bytes")
        self.bytes = bytes
    }

    /// A literal must be a valid address; a malformed one is a programming error.
    public init(stringLiteral value: String) {
        guard let parsed = MACAddress(value) else { preconditionFailure("'\(value)' is not a MAC address") }
        self = parsed
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

/// An IPv4 address in network order.
public struct IPv4Address: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var bytes: [UInt8]

    /// Parses dotted quad notation; nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let byte = UInt8(part) else {
                return nil
            }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 4, "an IPv4 address has 4 bytes")
        self.bytes = bytes
    }

    public init(stringLiteral value: String) {
        guard let parsed = IPv4Address(value) else { preconditionFailure("'\(value)' is not an IPv4 address") }
        self = parsed
    }

    public var description: String { bytes.map(String.init).joined(separator: ".") }
}

/// An IPv6 address in network order.
public struct IPv6Address: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var bytes: [UInt8]

    /// Parses RFC 4291 text: eight groups of hex, `::` for a run of zero groups, and an
    /// optional dotted IPv4 tail (`::ffff:10.0.0.1`). Nil when malformed.
    public init?(_ text: String) {
        var groups: [UInt16] = []
        var tail: [UInt8] = []
        var text = Substring(text)
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = IPv4Address(String(text[text.index(after: lastColon)...])) else { return nil }
            tail = v4.bytes
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        func parse(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        let total = 8 - tail.count / 2
        if let range = text.range(of: "::") {
            guard let head = parse(text[..<range.lowerBound]), let rest = parse(text[range.upperBound...]),
                head.count + rest.count < total
            else { return nil }
            groups = head + Array(repeating: 0, count: total - head.count - rest.count) + rest
        } else {
            guard let all = parse(text), all.count == total else { return nil }
            groups = all
        }
        bytes = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } + tail
    }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "an IPv6 address has 16 bytes")
        self.bytes = bytes
    }

    public init(stringLiteral value: String) {
        guard let parsed = IPv6Address(value) else { preconditionFailure("'\(value)' is not an IPv6 address") }
        self = parsed
    }

    public var description: String {
        stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}

/// An Ethernet II header. `type` follows the next layer unless given: IPv4 0x0800,
/// IPv6 0x86dd, a VLAN tag 0x8100 (0x88a8 when a second tag follows, as 802.1ad QinQ
/// has it), and 0x88b5 (IEEE local experimental) before a bare payload.
public struct Ethernet: Sendable, Hashable {
    public var source: MACAddress
    public var destination: MACAddress
    public var type: UInt16?

    public init(
        source: MACAddress = "02:00:00:00:00:01", destination: MACAddress = "02:00:00:00:00:02", type: UInt16? = nil
    ) {
        self.source = source
        self.destination = destination
        self.type = type
    }
}

/// An 802.1Q tag: priority, drop eligibility, VLAN id. `type` (the EtherType after the
/// tag) follows the next layer unless given, as for Ethernet.
public struct VLAN: Sendable, Hashable {
    public var id: UInt16
    public var priority: UInt8
    public var dropEligible: Bool
    public var type: UInt16?

    public init(id: UInt16, priority: UInt8 = 0, dropEligible: Bool = false, type: UInt16? = nil) {
        self.id = id
        self.priority = priority
        self.dropEligible = dropEligible
        self.type = type
    }
}

/// An IPv4 header (RFC 791). `protocol` follows the next layer (TCP 6, UDP 17, ICMP 1,
/// IPv4 4, IPv6 41; 253, reserved for experiments, before a bare payload);
/// `totalLength` and `checksum` are computed unless given. `options` are padded with
/// zero bytes (end of option list) to a multiple of 4.
public struct IPv4: Sendable, Hashable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var ttl: UInt8
    public var tos: UInt8
    public var identification: UInt16
    public var `protocol`: UInt8?
    /// Bit 1 don't fragment (DF), bit 0 more fragments (MF): `flags` 2 is DF.
    public var flags: UInt8
    /// In 8-byte units.
    public var fragmentOffset: UInt16
    public var options: [UInt8]
    public var totalLength: UInt16?
    public var checksum: UInt16?

    public init(
        source: IPv4Address = "10.0.0.1", destination: IPv4Address = "10.0.0.2", ttl: UInt8 = 64, tos: UInt8 = 0,
        identification: UInt16 = 0, protocol: UInt8? = nil, flags: UInt8 = 0, fragmentOffset: UInt16 = 0,
        options: [UInt8] = [], totalLength: UInt16? = nil, checksum: UInt16? = nil
    ) {
        self.source = source
        self.destination = destination
        self.ttl = ttl
        self.tos = tos
        self.identification = identification
        self.protocol = `protocol`
        self.flags = flags
        self.fragmentOffset = fragmentOffset
        self.options = options
        self.totalLength = totalLength
        self.checksum = checksum
    }
}

/// An IPv6 header (RFC 8200). `nextHeader` follows the next layer as IPv4's protocol
/// does; `payloadLength` is computed unless given.
public struct IPv6: Sendable, Hashable {
    public var source: IPv6Address
    public var destination: IPv6Address
    public var hopLimit: UInt8
    public var trafficClass: UInt8
    /// 20 bits.
    public var flowLabel: UInt32
    public var nextHeader: UInt8?
    public var payloadLength: UInt16?

    public init(
        source: IPv6Address = "fd00::1", destination: IPv6Address = "fd00::2", hopLimit: UInt8 = 64,
        trafficClass: UInt8 = 0, flowLabel: UInt32 = 0, nextHeader: UInt8? = nil, payloadLength: UInt16? = nil
    ) {
        self.source = source
        self.destination = destination
        self.hopLimit = hopLimit
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel
        self.nextHeader = nextHeader
        self.payloadLength = payloadLength
    }
}

/// A TCP header (RFC 9293). The checksum covers the IPv4 or IPv6 pseudo-header and is
/// computed unless given; `options` are padded with zero bytes to a multiple of 4.
public struct TCP: Sendable, Hashable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgment: UInt32
    /// The flags byte: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20,
    /// ECE 0x40, CWR 0x80.
    public var flags: UInt8
    public var window: UInt16
    public var urgentPointer: UInt16
    public var options: [UInt8]
    public var checksum: UInt16?

    public init(
        sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32 = 0, acknowledgment: UInt32 = 0,
        flags: UInt8 = 0x02, window: UInt16 = 65535, urgentPointer: UInt16 = 0, options: [UInt8] = [],
        checksum: UInt16? = nil
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.options = options
        self.checksum = checksum
    }

    /// Flags from letters, as tcpdump prints them: `S` SYN, `A` ACK, `F` FIN, `R` RST,
    /// `P` PSH, `U` URG, `E` ECE, `C` CWR (`SA` is a SYN-ACK). Nil for another letter.
    public static func flags(_ letters: String) -> UInt8? {
        var value: UInt8 = 0
        for letter in letters.uppercased() {
            switch letter {
            case "F": value |= 0x01
            case "S": value |= 0x02
            case "R": value |= 0x04
            case "P": value |= 0x08
            case "A": value |= 0x10
            case "U": value |= 0x20
            case "E": value |= 0x40
            case "C": value |= 0x80
            default: return nil
            }
        }
        return value
    }
}

/// A UDP header (RFC 768); length and checksum computed unless given (a computed
/// checksum of 0 is sent as 0xffff, as RFC 768 asks).
public struct UDP: Sendable, Hashable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var length: UInt16?
    public var checksum: UInt16?

    public init(sourcePort: UInt16, destinationPort: UInt16, length: UInt16? = nil, checksum: UInt16? = nil) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.length = length
        self.checksum = checksum
    }
}

/// An ICMP message header (RFC 792) in the echo layout: type, code, checksum,
/// identifier, sequence number. The default is an echo request (type 8).
public struct ICMP: Sendable, Hashable {
    public var type: UInt8
    public var code: UInt8
    public var identifier: UInt16
    public var sequence: UInt16
    public var checksum: UInt16?

    public init(type: UInt8 = 8, code: UInt8 = 0, identifier: UInt16 = 0, sequence: UInt16 = 0, checksum: UInt16? = nil)
    {
        self.type = type
        self.code = code
        self.identifier = identifier
        self.sequence = sequence
        self.checksum = checksum
    }
}

/// An ICMPv6 message header (RFC 4443) in the echo layout; its checksum covers the IPv6
/// pseudo-header. The default is an echo request (type 128).
public struct ICMPv6: Sendable, Hashable {
    public var type: UInt8
    public var code: UInt8
    public var identifier: UInt16
    public var sequence: UInt16
    public var checksum: UInt16?

    public init(
        type: UInt8 = 128, code: UInt8 = 0, identifier: UInt16 = 0, sequence: UInt16 = 0, checksum: UInt16? = nil
    ) {
        self.type = type
        self.code = code
        self.identifier = identifier
        self.sequence = sequence
        self.checksum = checksum
    }
}

/// Lays out layers into packet bytes, filling in types, lengths and checksums that were
/// not given.
public enum PacketBuilder {
    /// The bytes of `layers`, outermost first.
    public static func bytes(_ layers: [PacketLayer]) -> [UInt8] {
        // Built from the innermost layer outwards, so each header knows what follows it.
        var tail: [UInt8] = []
        for index in layers.indices.reversed() {
            let next = index + 1 < layers.count ? layers[index + 1] : nil
            let afterNext = index + 2 < layers.count ? layers[index + 2] : nil
            let network = enclosingNetworkLayer(layers, before: index)
            tail = header(layers[index], next: next, afterNext: afterNext, network: network, rest: tail) + tail
        }
        return tail
    }

    /// The closest IPv4 or IPv6 header before `index`: the pseudo-header of a transport checksum.
    private static func enclosingNetworkLayer(_ layers: [PacketLayer], before index: Int) -> PacketLayer? {
        layers[..<index].last {
            if case .ipv4 = $0 { return true }
            if case .ipv6 = $0 { return true }
            return false
        }
    }

    private static func header(
        _ layer: PacketLayer, next: PacketLayer?, afterNext: PacketLayer?, network: PacketLayer?, rest: [UInt8]
    ) -> [UInt8] {
        switch layer {
        case .payload(let bytes):
            return bytes
        case .ethernet(let eth):
            return eth.destination.bytes + eth.source.bytes + be16(eth.type ?? etherType(next, afterNext))
        case .vlan(let tag):
            let tci = UInt16(tag.priority & 7) << 13 | (tag.dropEligible ? 0x1000 : 0) | (tag.id & 0x0fff)
            return be16(tci) + be16(tag.type ?? etherType(next, afterNext))
        case .ipv4(let ip):
            var options = ip.options
            while options.count % 4 != 0 { options.append(0) }
            let headerLength = 20 + options.count
            var bytes: [UInt8] = [UInt8(0x40 | (headerLength / 4) & 0x0f), ip.tos]
            bytes += be16(ip.totalLength ?? UInt16(truncatingIfNeeded: headerLength + rest.count))
            bytes += be16(ip.identification)
            bytes += be16(UInt16(ip.flags & 7) << 13 | (ip.fragmentOffset & 0x1fff))
            bytes += [ip.ttl, ip.protocol ?? next?.ipProtocol ?? 253, 0, 0]
            bytes += ip.source.bytes + ip.destination.bytes + options
            let sum = ip.checksum ?? Checksum.internet(bytes)
            bytes[10] = UInt8(sum >> 8)
            bytes[11] = UInt8(sum & 0xff)
            return bytes
        case .ipv6(let ip):
            let word = UInt32(6) << 28 | UInt32(ip.trafficClass) << 20 | (ip.flowLabel & 0xfffff)
            return be32(word) + be16(ip.payloadLength ?? UInt16(truncatingIfNeeded: rest.count))
                + [ip.nextHeader ?? next?.ipProtocol ?? 59, ip.hopLimit] + ip.source.bytes + ip.destination.bytes
        case .tcp(let tcp):
            var options = tcp.options
            while options.count % 4 != 0 { options.append(0) }
            let headerLength = 20 + options.count
            var bytes = be16(tcp.sourcePort) + be16(tcp.destinationPort) + be32(tcp.sequence) + be32(tcp.acknowledgment)
            bytes += [UInt8((headerLength / 4) << 4 & 0xf0), tcp.flags] + be16(tcp.window) + [0, 0]
            bytes += be16(tcp.urgentPointer) + options
            let sum = tcp.checksum ?? transportChecksum(bytes + rest, protocol: 6, network: network)
            bytes[16] = UInt8(sum >> 8)
            bytes[17] = UInt8(sum & 0xff)
            return bytes
        case .udp(let udp):
            var bytes = be16(udp.sourcePort) + be16(udp.destinationPort)
            bytes += be16(udp.length ?? UInt16(truncatingIfNeeded: 8 + rest.count)) + [0, 0]
            var sum = udp.checksum ?? transportChecksum(bytes + rest, protocol: 17, network: network)
            if udp.checksum == nil && sum == 0 { sum = 0xffff }
            bytes[6] = UInt8(sum >> 8)
            bytes[7] = UInt8(sum & 0xff)
            return bytes
        case .icmp(let icmp):
            var bytes = [icmp.type, icmp.code, 0, 0] + be16(icmp.identifier) + be16(icmp.sequence)
            let sum = icmp.checksum ?? Checksum.internet(bytes + rest)
            bytes[2] = UInt8(sum >> 8)
            bytes[3] = UInt8(sum & 0xff)
            return bytes
        case .icmpv6(let icmp):
            var bytes = [icmp.type, icmp.code, 0, 0] + be16(icmp.identifier) + be16(icmp.sequence)
            let sum = icmp.checksum ?? transportChecksum(bytes + rest, protocol: 58, network: network)
            bytes[2] = UInt8(sum >> 8)
            bytes[3] = UInt8(sum & 0xff)
            return bytes
        }
    }

    private static func etherType(_ next: PacketLayer?, _ afterNext: PacketLayer?) -> UInt16 {
        if case .vlan = next, case .vlan = afterNext { return 0x88a8 }
        return next?.etherType ?? 0x88b5
    }

    /// The checksum over a pseudo-header (RFC 768/9293 for IPv4, RFC 8200 8.1 for IPv6)
    /// and `segment`; without an IP header, over the segment alone.
    private static func transportChecksum(_ segment: [UInt8], protocol number: UInt8, network: PacketLayer?)
        -> UInt16
    {
        var pseudo: [UInt8] = []
        switch network {
        case .ipv4(let ip)?:
            pseudo =
                ip.source.bytes + ip.destination.bytes + [0, number] + be16(UInt16(truncatingIfNeeded: segment.count))
        case .ipv6(let ip)?:
            pseudo = ip.source.bytes + ip.destination.bytes + be32(UInt32(segment.count)) + [0, 0, 0, number]
        default:
            break
        }
        return Checksum.internet(pseudo + segment)
    }

    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    private static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
/// 16-bit big-endian words, an odd last byte padded with zero.
public enum Checksum {
    public static func internet(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum &+= UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum &+= UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

/// Collects layers written one per line in a `Packet.build { ... }` block.
@resultBuilder
public enum PacketLayersBuilder {
    public static func buildExpression(_ layer: Ethernet) -> [PacketLayer] { [.ethernet(layer)] }
    public static func buildExpression(_ layer: VLAN) -> [PacketLayer] { [.vlan(layer)] }
    public static func buildExpression(_ layer: IPv4) -> [PacketLayer] { [.ipv4(layer)] }
    public static func buildExpression(_ layer: IPv6) -> [PacketLayer] { [.ipv6(layer)] }
    public static func buildExpression(_ layer: TCP) -> [PacketLayer] { [.tcp(layer)] }
    public static func buildExpression(_ layer: UDP) -> [PacketLayer] { [.udp(layer)] }
    public static func buildExpression(_ layer: ICMP) -> [PacketLayer] { [.icmp(layer)] }
    public static func buildExpression(_ layer: ICMPv6) -> [PacketLayer] { [.icmpv6(layer)] }
    public static func buildExpression(_ layer: PacketLayer) -> [PacketLayer] { [layer] }
    /// Text becomes payload bytes (UTF-8).
    public static func buildExpression(_ text: String) -> [PacketLayer] { [.payload(Array(text.utf8))] }
    public static func buildExpression(_ bytes: [UInt8]) -> [PacketLayer] { [.payload(bytes)] }
    public static func buildBlock(_ parts: [PacketLayer]...) -> [PacketLayer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [PacketLayer]?) -> [PacketLayer] { part ?? [] }
    public static func buildEither(first: [PacketLayer]) -> [PacketLayer] { first }
    public static func buildEither(second: [PacketLayer]) -> [PacketLayer] { second }
    public static func buildArray(_ parts: [[PacketLayer]]) -> [PacketLayer] { parts.flatMap { $0 } }
}

extension Packet {
    /// A packet from layers, outermost first:
    /// `Packet.build { Ethernet(); IPv4(source: "10.0.0.7"); TCP(sourcePort: 1, destinationPort: 80); "hello" }`.
    public static func build(@PacketLayersBuilder _ layers: () -> [PacketLayer]) -> Packet {
        Packet(PacketBuilder.bytes(layers()))
    }

    /// A packet from a list of layers.
    public init(layers: [PacketLayer]) {
        self.init(PacketBuilder.bytes(layers))
    }
}
