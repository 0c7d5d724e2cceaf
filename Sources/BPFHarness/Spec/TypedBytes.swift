import BPFSession

/// Bytes as a spec writes them (keys, values, payloads, packets): hex text, integers of
/// a given width and byte order, addresses, zero-padded strings, or a list of these.
/// A bare integer takes the width of what it fills (a map's key or value), so it is
/// resolved only once that width is known.
indirect enum TypedBytes: Sendable, Hashable {
    case bytes([UInt8])
    /// A bare integer: little-endian, as wide as the place it fills.
    case integer(UInt64, negative: Bool, line: Int?)
    case list([TypedBytes])

    static let kinds = [
        "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "be16", "be32", "be64", "ipv4", "ipv6", "mac", "str",
        "size", "hex", "zero",
    ]

    /// Reads typed bytes from a node.
    static func parse(_ node: YAMLNode, _ place: String) throws(SpecError) -> TypedBytes {
        if node.isSequence {
            var parts: [TypedBytes] = []
            for item in try node.sequence(place) { parts.append(try parse(item, place)) }
            return .list(parts)
        }
        if node.looksLikeInteger {
            let text = try node.string(place)
            return .integer(try node.integer(place), negative: text.hasPrefix("-"), line: node.line)
        }
        if node.isScalar {
            let text = try node.string(place)
            guard let bytes = Hex.bytes(text) else {
                throw node.error("\(place): '\(text)' is not hex bytes (write text as {str: ...})")
            }
            return .bytes(bytes)
        }
        let fields = try node.mapping(place, known: kinds)
        if fields.has("str") {
            guard fields.entries.allSatisfy({ $0.key == "str" || $0.key == "size" }) else {
                throw node.error("\(place): {str: ...} takes only 'size' beside it")
            }
            var bytes = Array(try fields.required("str").string("str").utf8)
            if let sizeNode = fields["size"] {
                let size = try sizeNode.integer("size", as: Int.self)
                guard bytes.count <= size else {
                    throw sizeNode.error("\(place): the string has \(bytes.count) bytes, more than size \(size)")
                }
                bytes += Array(repeating: 0, count: size - bytes.count)
            }
            return .bytes(bytes)
        }
        guard fields.entries.count == 1, let entry = fields.entries.first else {
            throw node.error(
                "\(place): give one of \(kinds.filter { $0 != "size" }.joined(separator: ", ")) per item; a list concatenates"
            )
        }
        let value = entry.value
        func little<T: FixedWidthInteger>(_ type: T.Type) throws(SpecError) -> TypedBytes {
            let number = try value.integer("\(place) \(entry.key)", as: T.self)
            return .bytes(withUnsafeBytes(of: number.littleEndian) { Array($0) })
        }
        func big<T: FixedWidthInteger>(_ type: T.Type) throws(SpecError) -> TypedBytes {
            let number = try value.integer("\(place) \(entry.key)", as: T.self)
            return .bytes(withUnsafeBytes(of: number.bigEndian) { Array($0) })
        }
        switch entry.key {
        case "u8": return try little(UInt8.self)
        case "u16": return try little(UInt16.self)
        case "u32": return try little(UInt32.self)
        case "u64": return try little(UInt64.self)
        case "i8": return try little(Int8.self)
        case "i16": return try little(Int16.self)
        case "i32": return try little(Int32.self)
        case "i64": return try little(Int64.self)
        case "be16": return try big(UInt16.self)
        case "be32": return try big(UInt32.self)
        case "be64": return try big(UInt64.self)
        case "ipv4":
            let text = try value.string("ipv4")
            guard let address = IPv4Address(text) else { throw value.error("'\(text)' is not an IPv4 address") }
            return .bytes(address.bytes)
        case "ipv6":
            let text = try value.string("ipv6")
            guard let address = IPv6Address(text) else { throw value.error("'\(text)' is not an IPv6 address") }
            return .bytes(address.bytes)
        case "mac":
            let text = try value.string("mac")
            guard let address = MACAddress(text) else { throw value.error("'\(text)' is not a MAC address") }
            return .bytes(address.bytes)
        case "hex":
            let text = try value.string("hex")
            guard let bytes = Hex.bytes(text) else { throw value.error("'\(text)' is not hex bytes") }
            return .bytes(bytes)
        case "zero":
            return .bytes(Array(repeating: 0, count: try value.integer("zero", as: Int.self)))
        default:
            throw value.error("\(place): 'size' goes with 'str'")
        }
    }

    /// The bytes, with bare integers `width` bytes wide; nil width means a bare integer
    /// is not allowed here.
    func resolve(width: Int?, file: String, place: String) throws(SpecError) -> [UInt8] {
        switch self {
        case .bytes(let bytes): return bytes
        case .list(let parts):
            var result: [UInt8] = []
            for part in parts {
                if case .integer(_, _, let line) = part {
                    throw SpecError(
                        file: file, line: line, "\(place): a bare integer inside a list has no width; write {u32: N}")
                }
                result += try part.resolve(width: nil, file: file, place: place)
            }
            return result
        case .integer(let value, let negative, let line):
            guard let width, width >= 1, width <= 8 else {
                throw SpecError(
                    file: file, line: line,
                    "\(place): a bare integer needs a width (\(width.map { "\($0) bytes is more than 8" } ?? "none here")); write {u32: N} or hex"
                )
            }
            if width < 8 {
                let bits = UInt64(width * 8)
                let fits =
                    negative
                    ? Int64(bitPattern: value) >= -(Int64(1) << (bits - 1)) : value < (UInt64(1) << bits)
                guard fits else {
                    throw SpecError(
                        file: file, line: line,
                        "\(place): \(negative ? Int64(bitPattern: value).description : value.description) does not fit in \(width) bytes"
                    )
                }
            }
            return (0..<width).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
        }
    }
}

/// Packets as a spec writes them: hex text, or builder layers in order.
enum SpecPacket {
    static let layerKeys = ["eth", "vlan", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6", "payload"]

    static func parse(_ node: YAMLNode) throws(SpecError) -> [UInt8] {
        if node.isScalar {
            let text = try node.string("packet")
            guard let bytes = Hex.bytes(text) else { throw node.error("packet: '\(text)' is not hex bytes") }
            return bytes
        }
        var layers: [PacketLayer] = []
        for (key, value, _) in try node.pairs("packet", known: layerKeys) {
            switch key {
            case "eth": layers.append(.ethernet(try ethernet(value)))
            case "vlan":
                for tag in value.items() { layers.append(.vlan(try vlan(tag))) }
            case "ipv4": layers.append(.ipv4(try ipv4(value)))
            case "ipv6": layers.append(.ipv6(try ipv6(value)))
            case "tcp": layers.append(.tcp(try tcp(value)))
            case "udp": layers.append(.udp(try udp(value)))
            case "icmp":
                let f = try value.mapping("icmp", known: ["type", "code", "id", "seq", "checksum"])
                layers.append(
                    .icmp(
                        ICMP(
                            type: try f["type"]?.integer("icmp type", as: UInt8.self) ?? 8,
                            code: try f["code"]?.integer("icmp code", as: UInt8.self) ?? 0,
                            identifier: try f["id"]?.integer("icmp id", as: UInt16.self) ?? 0,
                            sequence: try f["seq"]?.integer("icmp seq", as: UInt16.self) ?? 0,
                            checksum: try f["checksum"]?.integer("icmp checksum", as: UInt16.self))))
            case "icmpv6":
                let f = try value.mapping("icmpv6", known: ["type", "code", "id", "seq", "checksum"])
                layers.append(
                    .icmpv6(
                        ICMPv6(
                            type: try f["type"]?.integer("icmpv6 type", as: UInt8.self) ?? 128,
                            code: try f["code"]?.integer("icmpv6 code", as: UInt8.self) ?? 0,
                            identifier: try f["id"]?.integer("icmpv6 id", as: UInt16.self) ?? 0,
                            sequence: try f["seq"]?.integer("icmpv6 seq", as: UInt16.self) ?? 0,
                            checksum: try f["checksum"]?.integer("icmpv6 checksum", as: UInt16.self))))
            default:
                layers.append(.payload(try payload(value)))
            }
        }
        return PacketBuilder.bytes(layers)
    }

    /// `payload`: text, or typed bytes in a mapping (`{hex: ...}`) or a list.
    static func payload(_ node: YAMLNode) throws(SpecError) -> [UInt8] {
        if node.isScalar { return Array(try node.string("payload").utf8) }
        return try TypedBytes.parse(node, "payload").resolve(width: nil, file: node.file, place: "payload")
    }

    private static func mac(_ node: YAMLNode?, _ place: String, default value: MACAddress) throws(SpecError)
        -> MACAddress
    {
        guard let node else { return value }
        let text = try node.string(place)
        guard let address = MACAddress(text) else { throw node.error("\(place): '\(text)' is not a MAC address") }
        return address
    }

    private static func ethernet(_ node: YAMLNode) throws(SpecError) -> Ethernet {
        if node.isNull { return Ethernet() }
        let f = try node.mapping("eth", known: ["src", "dst", "type"])
        return Ethernet(
            source: try mac(f["src"], "eth src", default: "02:00:00:00:00:01"),
            destination: try mac(f["dst"], "eth dst", default: "02:00:00:00:00:02"),
            type: try f["type"]?.integer("eth type", as: UInt16.self))
    }

    private static func vlan(_ node: YAMLNode) throws(SpecError) -> VLAN {
        let f = try node.mapping("vlan", known: ["id", "pcp", "dei", "type"])
        let id = try f.required("id").integer("vlan id", as: UInt16.self)
        guard id < 4096 else { throw node.error("vlan id \(id) does not fit in 12 bits") }
        let pcp = try f["pcp"]?.integer("vlan pcp", as: UInt8.self) ?? 0
        guard pcp < 8 else { throw node.error("vlan pcp \(pcp) does not fit in 3 bits") }
        return VLAN(
            id: id, priority: pcp, dropEligible: try f["dei"]?.bool("vlan dei") ?? false,
            type: try f["type"]?.integer("vlan type", as: UInt16.self))
    }

    private static func ipv4Address(_ node: YAMLNode?, _ place: String, default value: IPv4Address) throws(SpecError)
        -> IPv4Address
    {
        guard let node else { return value }
        let text = try node.string(place)
        guard let address = IPv4Address(text) else { throw node.error("\(place): '\(text)' is not an IPv4 address") }
        return address
    }

    private static func ipv6Address(_ node: YAMLNode?, _ place: String, default value: IPv6Address) throws(SpecError)
        -> IPv6Address
    {
        guard let node else { return value }
        let text = try node.string(place)
        guard let address = IPv6Address(text) else { throw node.error("\(place): '\(text)' is not an IPv6 address") }
        return address
    }

    private static func ipv4(_ node: YAMLNode) throws(SpecError) -> IPv4 {
        if node.isNull { return IPv4() }
        let f = try node.mapping(
            "ipv4", known: ["src", "dst", "ttl", "tos", "id", "proto", "flags", "frag", "options", "len", "checksum"])
        var flags: UInt8 = 0
        if let flagNode = f["flags"] {
            if flagNode.looksLikeInteger {
                flags = try flagNode.integer("ipv4 flags", as: UInt8.self)
            } else {
                for word in try flagNode.string("ipv4 flags").uppercased().split(whereSeparator: { " ,|".contains($0) })
                {
                    switch word {
                    case "DF": flags |= 2
                    case "MF": flags |= 1
                    default: throw flagNode.error("ipv4 flags: '\(word)' is not DF or MF")
                    }
                }
            }
        }
        let frag = try f["frag"]?.integer("ipv4 frag", as: UInt16.self) ?? 0
        guard frag < 8192 else { throw node.error("ipv4 frag \(frag) does not fit in 13 bits (8-byte units)") }
        let options = try f["options"].map { (n) throws(SpecError) in
            try TypedBytes.parse(n, "ipv4 options").resolve(width: nil, file: n.file, place: "ipv4 options")
        }
        if let options, options.count > 40 { throw node.error("ipv4 options: \(options.count) bytes, more than 40") }
        return IPv4(
            source: try ipv4Address(f["src"], "ipv4 src", default: "10.0.0.1"),
            destination: try ipv4Address(f["dst"], "ipv4 dst", default: "10.0.0.2"),
            ttl: try f["ttl"]?.integer("ipv4 ttl", as: UInt8.self) ?? 64,
            tos: try f["tos"]?.integer("ipv4 tos", as: UInt8.self) ?? 0,
            identification: try f["id"]?.integer("ipv4 id", as: UInt16.self) ?? 0,
            protocol: try f["proto"]?.integer("ipv4 proto", as: UInt8.self), flags: flags, fragmentOffset: frag,
            options: options ?? [], totalLength: try f["len"]?.integer("ipv4 len", as: UInt16.self),
            checksum: try f["checksum"]?.integer("ipv4 checksum", as: UInt16.self))
    }

    private static func ipv6(_ node: YAMLNode) throws(SpecError) -> IPv6 {
        if node.isNull { return IPv6() }
        let f = try node.mapping("ipv6", known: ["src", "dst", "hop", "flow", "tc", "next", "len"])
        let flow = try f["flow"]?.integer("ipv6 flow", as: UInt32.self) ?? 0
        guard flow < 1 << 20 else { throw node.error("ipv6 flow \(flow) does not fit in 20 bits") }
        return IPv6(
            source: try ipv6Address(f["src"], "ipv6 src", default: "fd00::1"),
            destination: try ipv6Address(f["dst"], "ipv6 dst", default: "fd00::2"),
            hopLimit: try f["hop"]?.integer("ipv6 hop", as: UInt8.self) ?? 64,
            trafficClass: try f["tc"]?.integer("ipv6 tc", as: UInt8.self) ?? 0, flowLabel: flow,
            nextHeader: try f["next"]?.integer("ipv6 next", as: UInt8.self),
            payloadLength: try f["len"]?.integer("ipv6 len", as: UInt16.self))
    }

    private static func tcp(_ node: YAMLNode) throws(SpecError) -> TCP {
        let f = try node.mapping(
            "tcp", known: ["sport", "dport", "seq", "ack", "flags", "window", "urg", "options", "checksum"])
        var flags: UInt8 = 0x02
        if let flagNode = f["flags"] {
            if flagNode.looksLikeInteger {
                flags = try flagNode.integer("tcp flags", as: UInt8.self)
            } else {
                let letters = try flagNode.string("tcp flags")
                guard let value = TCP.flags(letters) else {
                    throw flagNode.error("tcp flags: '\(letters)' is not made of the letters S A F R P U E C")
                }
                flags = value
            }
        }
        let options = try f["options"].map { (n) throws(SpecError) in
            try TypedBytes.parse(n, "tcp options").resolve(width: nil, file: n.file, place: "tcp options")
        }
        if let options, options.count > 40 { throw node.error("tcp options: \(options.count) bytes, more than 40") }
        return TCP(
            sourcePort: try f.required("sport").integer("tcp sport", as: UInt16.self),
            destinationPort: try f.required("dport").integer("tcp dport", as: UInt16.self),
            sequence: try f["seq"]?.integer("tcp seq", as: UInt32.self) ?? 0,
            acknowledgment: try f["ack"]?.integer("tcp ack", as: UInt32.self) ?? 0, flags: flags,
            window: try f["window"]?.integer("tcp window", as: UInt16.self) ?? 65535,
            urgentPointer: try f["urg"]?.integer("tcp urg", as: UInt16.self) ?? 0, options: options ?? [],
            checksum: try f["checksum"]?.integer("tcp checksum", as: UInt16.self))
    }

    private static func udp(_ node: YAMLNode) throws(SpecError) -> UDP {
        let f = try node.mapping("udp", known: ["sport", "dport", "len", "checksum"])
        return UDP(
            sourcePort: try f.required("sport").integer("udp sport", as: UInt16.self),
            destinationPort: try f.required("dport").integer("udp dport", as: UInt16.self),
            length: try f["len"]?.integer("udp len", as: UInt16.self),
            checksum: try f["checksum"]?.integer("udp checksum", as: UInt16.self))
    }
}
