/// A value formatted from its BTF type, as `bpftool map dump -j` prints a map's
/// "formatted" key and value (tools/bpf/bpftool/btf_dumper.c), and as JSON encodes it.
public indirect enum BTFValue: Sendable, Hashable, Codable {
    case unsigned(UInt64)
    case signed(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([BTFValue])
    /// Members in declaration order (JSON output may sort them).
    case object([Field])

    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: BTFValue

        public init(_ name: String, _ value: BTFValue) {
            self.name = name
            self.value = value
        }
    }

    /// The member named `name` of an object.
    public subscript(name: String) -> BTFValue? {
        guard case .object(let fields) = self else { return nil }
        return fields.first { $0.name == name }?.value
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .object(let fields):
            var container = encoder.container(keyedBy: Key.self)
            for field in fields { try container.encode(field.value, forKey: Key(stringValue: field.name)) }
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case .unsigned(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .signed(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .float(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        }
    }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: Key.self) {
            self = .object(
                try container.allKeys.sorted { $0.stringValue < $1.stringValue }.map {
                    Field($0.stringValue, try container.decode(BTFValue.self, forKey: $0))
                })
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var values: [BTFValue] = []
            while !container.isAtEnd { values.append(try container.decode(BTFValue.self)) }
            self = .array(values)
            return
        }
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .signed(value)
        } else if let value = try? container.decode(Double.self) {
            self = .float(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }
}

extension BTF {
    /// Formats `bytes` as a value of type `id` the way bpftool's `-j` output does:
    ///
    /// - integers as numbers, signed or unsigned as the type says; `_Bool` as true/false;
    ///   a 1-byte `BTF_INT_CHAR` as a one-character string when printable;
    /// - a `char` array (elements named `char`, or of the char encoding) as a string when
    ///   it holds printable characters up to a NUL; other arrays as arrays;
    /// - structs and unions as objects of their members (every member of a union);
    /// - bitfields, and integers narrower than their size, as hex strings (`"0x5"`);
    /// - enums as the enumerator's name, or the number when none matches;
    /// - pointers as unsigned numbers; floats as numbers;
    /// - a data section (global variables) as `{"NAME": [{"var": value}, ...]}`.
    ///
    /// One difference: bpftool reads 4 bytes for a `_Bool` (and so may print true for a
    /// false one followed by non-zero bytes); bpfsim reads the bool's byte.
    ///
    /// Returns nil when the type has no size (void, a forward declaration, a function) or
    /// `bytes` is shorter than it.
    public func format(_ bytes: [UInt8], as id: UInt32) -> BTFValue? {
        guard let size = size(of: id), size <= bytes.count else { return nil }
        return bytes.withUnsafeBufferPointer { format(UnsafeRawBufferPointer($0), at: 0, id: id, depth: 0) }
    }

    private func format(_ data: UnsafeRawBufferPointer, at offset: Int, id: UInt32, depth: Int) -> BTFValue? {
        guard depth < 32, let entry = type(id) else { return nil }
        switch entry.kind {
        case .typedef, .volatile, .const, .restrict, .typeTag:
            return format(data, at: offset, id: entry.sizeOrType, depth: depth + 1)
        case .int:
            guard case .int(let encoding, let bitOffset, let bits) = entry.detail else { return nil }
            let size = Int(entry.sizeOrType)
            guard offset + size <= data.count else { return nil }
            if bitOffset != 0 || Int(bits) != size * 8 {
                return .string(hexBits(data, bitOffset: offset * 8 + Int(bitOffset), width: Int(bits)))
            }
            let raw = load(data, at: offset, size: size)
            switch encoding {
            case 4: return .bool(raw != 0)
            case 2:
                return .string(String(UnicodeScalar(UInt8(truncatingIfNeeded: raw))))
            case 1: return .signed(signExtend(raw, bits: size * 8))
            default: return .unsigned(raw)
            }
        case .pointer:
            guard offset + 8 <= data.count else { return nil }
            return .unsigned(load(data, at: offset, size: 8))
        case .float:
            let size = Int(entry.sizeOrType)
            guard offset + size <= data.count else { return nil }
            switch size {
            case 4: return .float(Double(Float(bitPattern: UInt32(truncatingIfNeeded: load(data, at: offset, size: 4)))))
            case 8: return .float(Double(bitPattern: load(data, at: offset, size: 8)))
            default: return nil
            }
        case .enumeration, .enumeration64:
            let size = Int(entry.sizeOrType)
            guard size >= 1, size <= 8, offset + size <= data.count,
                case .enumValues(let values) = entry.detail
            else { return nil }
            let raw = load(data, at: offset, size: size)
            let mask: UInt64 = size == 8 ? .max : (1 << UInt64(size * 8)) - 1
            if let match = values.first(where: { UInt64(bitPattern: $0.value) & mask == raw }) {
                return .string(match.name)
            }
            return entry.kindFlag ? .signed(signExtend(raw, bits: size * 8)) : .unsigned(raw)
        case .array:
            guard case .array(let element, _, let count) = entry.detail, let elementSize = size(of: element) else {
                return nil
            }
            guard offset + elementSize * Int(count) <= data.count else { return nil }
            if let text = characterString(data, at: offset, count: Int(count), element: element) {
                return .string(text)
            }
            var values: [BTFValue] = []
            for index in 0..<Int(count) {
                guard let value = format(data, at: offset + index * elementSize, id: element, depth: depth + 1)
                else { return nil }
                values.append(value)
            }
            return .array(values)
        case .structure, .union:
            guard case .members(let members) = entry.detail else { return nil }
            var fields: [BTFValue.Field] = []
            for member in members {
                let value: BTFValue?
                if member.bitfieldSize != 0 {
                    let bit = offset * 8 + Int(member.bitOffset)
                    guard (bit + Int(member.bitfieldSize) + 7) / 8 <= data.count else { return nil }
                    value = .string(hexBits(data, bitOffset: bit, width: Int(member.bitfieldSize)))
                } else {
                    value = format(data, at: offset + Int(member.bitOffset / 8), id: member.type, depth: depth + 1)
                }
                guard let value else { return nil }
                fields.append(.init(member.name, value))
            }
            return .object(fields)
        case .dataSection:
            guard case .sectionVariables(let variables) = entry.detail else { return nil }
            var list: [BTFValue] = []
            for variable in variables {
                guard let declaration = type(variable.type),
                    let value = format(
                        data, at: offset + Int(variable.offset), id: declaration.sizeOrType, depth: depth + 1)
                else { return nil }
                list.append(.object([.init(declaration.name, value)]))
            }
            return .object([.init(entry.name, .array(list))])
        case .variable:
            guard let value = format(data, at: offset, id: entry.sizeOrType, depth: depth + 1) else { return nil }
            return .object([.init(entry.name, value)])
        case .void, .forward, .function, .functionPrototype, .declarationTag:
            return nil
        }
    }

    /// bpftool's test for a string (`is_str_array`): elements are 1-byte integers named
    /// `char` or of the char encoding, printable (0x20...0x7e) up to a NUL inside the array.
    private func characterString(_ data: UnsafeRawBufferPointer, at offset: Int, count: Int, element: UInt32)
        -> String?
    {
        guard count > 0 else { return nil }
        var id = element
        while let entry = type(id), [.volatile, .const, .restrict, .typeTag].contains(entry.kind) {
            id = entry.sizeOrType
        }
        guard let entry = type(id), entry.kind == .int, entry.sizeOrType == 1,
            case .int(let encoding, _, _) = entry.detail, encoding == 2 || entry.name == "char"
        else { return nil }
        var bytes: [UInt8] = []
        for index in 0..<count {
            let byte = data[offset + index]
            if byte == 0 { return String(decoding: bytes, as: UTF8.self) }
            guard (0x20..<0x7f).contains(byte) else { return nil }
            bytes.append(byte)
        }
        return nil
    }

    private func load(_ data: UnsafeRawBufferPointer, at offset: Int, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in (0..<min(size, 8)).reversed() { value = value << 8 | UInt64(data[offset + index]) }
        return value
    }

    private func signExtend(_ value: UInt64, bits: Int) -> Int64 {
        guard bits < 64 else { return Int64(bitPattern: value) }
        let shift = UInt64(64 - bits)
        return Int64(bitPattern: value << shift) >> Int64(shift)
    }

    /// `width` bits from `bitOffset` (little-endian bit order), as bpftool prints
    /// bitfields: `0x` and lower-case hex without leading zeros.
    private func hexBits(_ data: UnsafeRawBufferPointer, bitOffset: Int, width: Int) -> String {
        var digits: [UInt8] = []  // 4-bit groups, least significant first
        var group: UInt8 = 0
        for index in 0..<width {
            let bit = bitOffset + index
            let set = bit / 8 < data.count && data[bit / 8] >> UInt8(bit % 8) & 1 == 1
            if set { group |= 1 << UInt8(index % 4) }
            if index % 4 == 3 || index == width - 1 {
                digits.append(group)
                group = 0
            }
        }
        while digits.count > 1, digits.last == 0 { digits.removeLast() }
        let hex = Array("0123456789abcdef")
        return "0x" + String(digits.reversed().map { hex[Int($0)] })
    }
}
