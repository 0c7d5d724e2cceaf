import BPFLoader

/// One map's contents for `--json` output and state files: entries with hex keys and
/// values; per-CPU maps give a list of values, one per CPU (without the padding the
/// syscall adds). With the object's BTF, an entry also carries its key and value
/// formatted from their BTF types, as `bpftool map dump -j` prints them
/// (`BTF.format(_:as:)`).
public struct MapDump: Codable, Sendable, Hashable {
    public struct Entry: Codable, Sendable, Hashable {
        public var key: String
        public var value: Value
        /// The key and value formatted from the map's BTF types; nil without them.
        public var formatted: Formatted?

        public init(key: String, value: Value, formatted: Formatted? = nil) {
            self.key = key
            self.value = value
            self.formatted = formatted
        }
    }

    /// bpftool's `"formatted"` object: `{"key": K, "value": V}`, or for per-CPU maps
    /// `{"key": K, "values": [{"cpu": 0, "value": V}, ...]}`.
    public struct Formatted: Codable, Sendable, Hashable {
        public struct CPUValue: Codable, Sendable, Hashable {
            public var cpu: Int
            public var value: BTFValue
        }

        public var key: BTFValue
        public var value: BTFValue?
        public var values: [CPUValue]?
    }

    /// A single value, or one per CPU.
    public enum Value: Codable, Sendable, Hashable {
        case single(String)
        case perCPU([String])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([String].self) {
                self = .perCPU(list)
            } else {
                self = .single(try container.decode(String.self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .single(let value): try container.encode(value)
            case .perCPU(let values): try container.encode(values)
            }
        }
    }

    public var entries: [Entry]

    /// A dump is written as its list of entries.
    public init(from decoder: any Decoder) throws {
        entries = try decoder.singleValueContainer().decode([Entry].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(entries)
    }

    /// The map's entries; with `btf`, formatted as its key and value types say (a map
    /// without a value type, or whose types do not fit its sizes, has no `formatted`).
    public init(_ map: BPFMap, btf: BTF? = nil) {
        let perCPU = map.type.isPerCPU
        let format = btf.flatMap { Self.formatter(for: map, btf: $0) }
        entries = map.entries().map { entry in
            if perCPU {
                let slices = stride(from: 0, to: entry.value.count, by: map.valueStride).map { start in
                    Array(entry.value[start..<min(start + map.valueSize, entry.value.count)])
                }
                var formatted: Formatted?
                if let format, let key = format.key(entry.key) {
                    let values = slices.enumerated().compactMap { cpu, bytes in
                        format.value(bytes).map { Formatted.CPUValue(cpu: cpu, value: $0) }
                    }
                    if values.count == slices.count { formatted = Formatted(key: key, values: values) }
                }
                return Entry(key: Hex.string(entry.key), value: .perCPU(slices.map(Hex.string)), formatted: formatted)
            }
            var formatted: Formatted?
            if let format, let key = format.key(entry.key), let value = format.value(entry.value) {
                formatted = Formatted(key: key, value: value)
            }
            return Entry(key: Hex.string(entry.key), value: .single(Hex.string(entry.value)), formatted: formatted)
        }
    }

    /// How a map's keys and values are formatted: by their BTF types; an array map without
    /// a key type (global data) takes its `u32` index as the key.
    private static func formatter(for map: BPFMap, btf: BTF) -> (
        key: ([UInt8]) -> BTFValue?, value: ([UInt8]) -> BTFValue?
    )? {
        let spec = map.spec
        guard spec.btfValueTypeID != 0, btf.size(of: spec.btfValueTypeID) == map.valueSize else { return nil }
        let key: ([UInt8]) -> BTFValue?
        if spec.btfKeyTypeID != 0 {
            guard btf.size(of: spec.btfKeyTypeID) == map.keySize else { return nil }
            key = { btf.format($0, as: spec.btfKeyTypeID) }
        } else if map.keySize == 4 {
            key = { bytes in .unsigned(bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }) }
        } else {
            return nil
        }
        return (key, { btf.format($0, as: spec.btfValueTypeID) })
    }

    /// Every map of a machine, by name; formatted with `btf` when given.
    public static func all(_ machine: Machine, btf: BTF? = nil) -> [String: MapDump] {
        var result: [String: MapDump] = [:]
        for map in machine.maps { result[map.name] = MapDump(map, btf: btf) }
        return result
    }
}

/// Hex text for bytes, lower case, no separators.
public enum Hex {
    public static func string(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses hex, allowing spaces, colons, newlines and a leading 0x; nil if malformed.
    public static func bytes(_ text: String) -> [UInt8]? {
        var digits = Array(text.lowercased().utf8)
        if digits.starts(with: Array("0x".utf8)) { digits.removeFirst(2) }
        digits.removeAll { $0 == 0x20 || $0 == 0x3a || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d }
        guard digits.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}

extension MapSpec {
    /// Parses `NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS]`, the form kernel_oracle.py
    /// and `bpfsim run --map` use; TYPE is a kernel name (`hash`, `percpu_array`) or an id.
    public init?(commandLine text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 || parts.count == 6, !parts[0].isEmpty else { return nil }
        guard let type = MapType(kernelName: parts[1]) ?? UInt32(parts[1]).flatMap(MapType.init(rawValue:)),
            let key = Int(parts[2]), let value = Int(parts[3]), let max = Int(parts[4])
        else { return nil }
        let flags =
            parts.count == 6
            ? (parts[5].hasPrefix("0x") ? UInt32(parts[5].dropFirst(2), radix: 16) : UInt32(parts[5])) : 0
        guard let flags else { return nil }
        self.init(name: parts[0], type: type, keySize: key, valueSize: value, maxEntries: max, flags: flags)
    }
}
