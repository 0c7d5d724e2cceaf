/// The BPF Type Format of an object (its `.BTF` section): the C types of its maps,
/// functions and variables. Parsed from the documented format (Documentation/bpf/btf.rst);
/// enough to compute sizes, print C declarations and struct layouts, and format values.
///
/// Type ids start at 1; id 0 is `void`. `types[0]` is a placeholder for `void`, so
/// `types[id]` is the type with that id.
public struct BTF: Sendable, Hashable {
    /// `BTF_KIND_*`.
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        case void = 0
        case int = 1
        case pointer = 2
        case array = 3
        case structure = 4
        case union = 5
        case enumeration = 6
        case forward = 7
        case typedef = 8
        case volatile = 9
        case const = 10
        case restrict = 11
        case function = 12
        case functionPrototype = 13
        case variable = 14
        case dataSection = 15
        case float = 16
        case declarationTag = 17
        case typeTag = 18
        case enumeration64 = 19

        /// The kernel's name, as `bpftool btf dump` prints it (`STRUCT`, `FUNC_PROTO`).
        public var kernelName: String {
            switch self {
            case .void: "VOID"
            case .int: "INT"
            case .pointer: "PTR"
            case .array: "ARRAY"
            case .structure: "STRUCT"
            case .union: "UNION"
            case .enumeration: "ENUM"
            case .forward: "FWD"
            case .typedef: "TYPEDEF"
            case .volatile: "VOLATILE"
            case .const: "CONST"
            case .restrict: "RESTRICT"
            case .function: "FUNC"
            case .functionPrototype: "FUNC_PROTO"
            case .variable: "VAR"
            case .dataSection: "DATASEC"
            case .float: "FLOAT"
            case .declarationTag: "DECL_TAG"
            case .typeTag: "TYPE_TAG"
            case .enumeration64: "ENUM64"
            }
        }
    }

    /// A struct or union member.
    public struct Member: Sendable, Hashable {
        public let name: String
        public let type: UInt32
        /// Offset from the start of the aggregate, in bits.
        public let bitOffset: UInt32
        /// Width of a bitfield in bits; 0 for an ordinary member.
        public let bitfieldSize: UInt32
    }

    public struct EnumValue: Sendable, Hashable {
        public let name: String
        public let value: Int64
    }

    public struct Parameter: Sendable, Hashable {
        public let name: String
        public let type: UInt32
    }

    /// A variable placed in a data section (`struct btf_var_secinfo`).
    public struct SectionVariable: Sendable, Hashable {
        /// The `VAR` (or `FUNC`, for externs) type id.
        public let type: UInt32
        public let offset: UInt32
        public let size: UInt32
    }

    /// What a kind carries beyond name, size and referenced type.
    public enum Detail: Sendable, Hashable {
        case none
        /// `BTF_KIND_INT`: encoding bits (1 signed, 2 char, 4 bool), bit offset and width.
        case int(encoding: UInt8, bitOffset: UInt8, bits: UInt8)
        case array(element: UInt32, index: UInt32, count: UInt32)
        case members([Member])
        case enumValues([EnumValue])
        case parameters([Parameter])
        /// `VAR` linkage (0 static, 1 global, 2 extern) or `FUNC` linkage (0 static, 1 global, 2 extern).
        case linkage(UInt32)
        case sectionVariables([SectionVariable])
        /// `DECL_TAG`: the member or parameter index, -1 for the whole declaration.
        case componentIndex(Int32)
    }

    public struct TypeEntry: Sendable, Hashable {
        public let id: UInt32
        public let kind: Kind
        public let name: String
        public let kindFlag: Bool
        /// `size` for int, struct, union, enum, datasec and float; the referenced type id otherwise.
        public let sizeOrType: UInt32
        public let detail: Detail

        /// The referenced type for pointers, modifiers, typedefs, functions, variables and tags.
        public var referencedType: UInt32? {
            switch kind {
            case .pointer, .typedef, .volatile, .const, .restrict, .function, .functionPrototype, .variable,
                .declarationTag, .typeTag:
                sizeOrType
            default: nil
            }
        }
    }

    public let types: [TypeEntry]
    /// The string section, as stored (NUL-separated).
    public let strings: [UInt8]

    /// The type with id `id`; nil for an id the BTF does not have. Id 0 is `void`.
    public func type(_ id: UInt32) -> TypeEntry? {
        Int(id) < types.count ? types[Int(id)] : nil
    }

    /// The string at `offset` in the string section.
    public func string(at offset: UInt32) -> String? {
        BTF.string(in: strings, at: Int(offset))
    }

    /// The first type with this name (and kind, when given).
    public func firstType(named name: String, kind: Kind? = nil) -> TypeEntry? {
        types.first { $0.name == name && (kind == nil || $0.kind == kind) && $0.id != 0 }
    }

    /// The id after following typedefs, modifiers (const, volatile, restrict) and type tags.
    public func resolved(_ id: UInt32) -> UInt32 {
        var current = id
        for _ in 0..<64 {
            guard let entry = type(current) else { return current }
            switch entry.kind {
            case .typedef, .volatile, .const, .restrict, .typeTag: current = entry.sizeOrType
            default: return current
            }
        }
        return current
    }

    /// The size in bytes of a value of type `id`; nil for types without one (void,
    /// functions, forward declarations) and for malformed chains.
    public func size(of id: UInt32) -> Int? {
        size(of: id, depth: 0)
    }

    private func size(of id: UInt32, depth: Int) -> Int? {
        guard depth < 64, let entry = type(id) else { return nil }
        switch entry.kind {
        case .int, .structure, .union, .enumeration, .enumeration64, .dataSection, .float:
            return Int(entry.sizeOrType)
        case .pointer:
            return 8
        case .array:
            guard case .array(let element, _, let count) = entry.detail,
                let elementSize = size(of: element, depth: depth + 1)
            else { return nil }
            let (total, overflow) = elementSize.multipliedReportingOverflow(by: Int(count))
            return overflow ? nil : total
        case .typedef, .volatile, .const, .restrict, .typeTag, .variable:
            return size(of: entry.sizeOrType, depth: depth + 1)
        case .void, .forward, .function, .functionPrototype, .declarationTag:
            return nil
        }
    }

    /// The C spelling of type `id`: `unsigned int`, `struct flow_key`, `char *`, `__u64[4]`.
    public func typeName(_ id: UInt32) -> String {
        typeName(id, depth: 0)
    }

    private func typeName(_ id: UInt32, depth: Int) -> String {
        guard depth < 32, let entry = type(id) else { return "<bad type \(id)>" }
        switch entry.kind {
        case .void: return "void"
        case .int, .float, .typedef: return entry.name
        case .structure: return "struct " + (entry.name.isEmpty ? "{...}" : entry.name)
        case .union: return "union " + (entry.name.isEmpty ? "{...}" : entry.name)
        case .enumeration, .enumeration64: return "enum " + (entry.name.isEmpty ? "{...}" : entry.name)
        case .forward: return (entry.kindFlag ? "union " : "struct ") + entry.name
        case .pointer:
            if let target = type(entry.sizeOrType), target.kind == .functionPrototype {
                return typeName(entry.sizeOrType, depth: depth + 1)
            }
            return typeName(entry.sizeOrType, depth: depth + 1) + " *"
        case .array:
            guard case .array(let element, _, let count) = entry.detail else { return "?" }
            return typeName(element, depth: depth + 1) + "[\(count)]"
        case .volatile: return "volatile " + typeName(entry.sizeOrType, depth: depth + 1)
        case .const: return "const " + typeName(entry.sizeOrType, depth: depth + 1)
        case .restrict: return typeName(entry.sizeOrType, depth: depth + 1) + " restrict"
        case .typeTag: return typeName(entry.sizeOrType, depth: depth + 1)
        case .function: return entry.name
        case .functionPrototype:
            guard case .parameters(let parameters) = entry.detail else { return "?" }
            let list = parameters.map { $0.type == 0 ? "..." : typeName($0.type, depth: depth + 1) }
            return typeName(entry.sizeOrType, depth: depth + 1) + " (*)(" + list.joined(separator: ", ") + ")"
        case .variable: return typeName(entry.sizeOrType, depth: depth + 1)
        case .dataSection: return "section " + entry.name
        case .declarationTag: return typeName(entry.sizeOrType, depth: depth + 1)
        }
    }

    /// A struct or union's layout, one member per line with its offset and size, in the
    /// style of pahole:
    ///
    ///     struct flow_key {                 /* size 16 */
    ///         __u32 saddr;                  /* offset 0, size 4 */
    ///
    /// Other types print as their C name and size.
    public func layout(_ id: UInt32) -> String {
        let target = resolved(id)
        guard let entry = type(target), entry.kind == .structure || entry.kind == .union,
            case .members(let members) = entry.detail
        else {
            return typeName(id) + (size(of: id).map { " /* size \($0) */" } ?? "")
        }
        var rows: [(String, String)] = [(typeName(target) + " {", "/* size \(entry.sizeOrType) */")]
        for member in members {
            let name = member.name.isEmpty ? "" : " " + member.name
            var declaration = "    " + typeName(member.type) + name
            if member.bitfieldSize > 0 { declaration += ":\(member.bitfieldSize)" }
            declaration += ";"
            let byteOffset = member.bitOffset / 8
            var comment = "/* offset \(byteOffset)"
            if member.bitfieldSize > 0 || member.bitOffset % 8 != 0 { comment += ", bit \(member.bitOffset % 8)" }
            if let memberSize = size(of: member.type), member.bitfieldSize == 0 { comment += ", size \(memberSize)" }
            rows.append((declaration, comment + " */"))
        }
        let width = rows.map(\.0.count).max() ?? 0
        var text = rows.map { $0.0.padding(toLength: width + 2) + $0.1 }.joined(separator: "\n")
        text += "\n};"
        return text
    }

    /// A value of type `id` in `bytes`, formatted like bpftool's plain map dump: numbers in
    /// decimal, structs as `{field = value, ...}`, arrays as `[a, b]`, pointers in hex.
    /// Bytes the type does not cover are ignored; missing bytes print as `?`.
    public func format(_ bytes: [UInt8], as id: UInt32) -> String {
        format(bytes, at: 0, bitOffset: 0, bitfieldSize: 0, id: id, depth: 0)
    }

    private func format(
        _ bytes: [UInt8], at offset: Int, bitOffset: UInt32, bitfieldSize: UInt32, id: UInt32,
        depth: Int
    ) -> String {
        guard depth < 16, let entry = type(resolved(id)) else { return "?" }
        func integer(_ size: Int, signed: Bool) -> String {
            guard size > 0, size <= 8, offset >= 0, offset + size <= bytes.count else { return "?" }
            var raw: UInt64 = 0
            for i in 0..<size { raw |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            if bitfieldSize > 0 {
                raw = (raw >> UInt64(bitOffset)) & ((1 << UInt64(bitfieldSize)) &- 1)
                return "\(raw)"
            }
            if signed && size < 8 && raw & (1 << UInt64(size * 8 - 1)) != 0 {
                raw |= ~0 << UInt64(size * 8)
            }
            return signed ? "\(Int64(bitPattern: raw))" : "\(raw)"
        }
        switch entry.kind {
        case .int:
            guard case .int(let encoding, _, _) = entry.detail else { return "?" }
            if encoding & 4 != 0 { return integer(Int(entry.sizeOrType), signed: false) == "0" ? "false" : "true" }
            return integer(Int(entry.sizeOrType), signed: encoding & 1 != 0)
        case .enumeration, .enumeration64:
            let text = integer(Int(entry.sizeOrType), signed: entry.kindFlag)
            if case .enumValues(let values) = entry.detail, let value = Int64(text),
                let match = values.first(where: { $0.value == value })
            {
                return match.name
            }
            return text
        case .pointer:
            guard offset + 8 <= bytes.count, let raw = LittleEndian.u64(bytes, at: offset) else { return "?" }
            return "0x" + String(raw, radix: 16)
        case .float:
            return integer(Int(entry.sizeOrType), signed: false)
        case .array:
            guard case .array(let element, _, let count) = entry.detail, let elementSize = size(of: element) else {
                return "?"
            }
            if let elementEntry = type(resolved(element)), elementEntry.kind == .int, elementEntry.sizeOrType == 1,
                case .int(let encoding, _, _) = elementEntry.detail, encoding & 2 != 0
            {
                let end = min(bytes.count, offset + Int(count))
                guard offset < end else { return "\"\"" }
                let text = bytes[offset..<end].prefix { $0 != 0 }
                return "\"" + String(decoding: text, as: UTF8.self) + "\""
            }
            let items = (0..<Int(min(count, 64))).map {
                format(
                    bytes, at: offset + $0 * elementSize, bitOffset: 0, bitfieldSize: 0, id: element, depth: depth + 1)
            }
            return "[" + items.joined(separator: ", ") + (count > 64 ? ", ..." : "") + "]"
        case .structure, .union:
            guard case .members(let members) = entry.detail else { return "{}" }
            let fields = members.map { member -> String in
                let value = format(
                    bytes, at: offset + Int(member.bitOffset / 8), bitOffset: member.bitOffset % 8,
                    bitfieldSize: member.bitfieldSize, id: member.type, depth: depth + 1)
                return member.name.isEmpty ? value : "\(member.name) = \(value)"
            }
            return "{" + fields.joined(separator: ", ") + "}"
        case .dataSection:
            guard case .sectionVariables(let variables) = entry.detail else { return "{}" }
            let fields = variables.map { variable -> String in
                let name = type(variable.type)?.name ?? "?"
                let value = format(
                    bytes, at: offset + Int(variable.offset), bitOffset: 0, bitfieldSize: 0, id: variable.type,
                    depth: depth + 1)
                return "\(name) = \(value)"
            }
            return "{" + fields.joined(separator: ", ") + "}"
        case .variable:
            return format(bytes, at: offset, bitOffset: 0, bitfieldSize: 0, id: entry.sizeOrType, depth: depth + 1)
        default:
            return "?"
        }
    }

    static func string(in strings: [UInt8], at offset: Int) -> String? {
        guard offset >= 0, offset < strings.count else { return nil }
        let end = strings[offset...].firstIndex(of: 0) ?? strings.count
        return String(decoding: strings[offset..<end], as: UTF8.self)
    }
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

// MARK: - Parsing

extension BTF {
    static let magic: UInt16 = 0xeb9f

    /// Parses a `.BTF` section. Every reference (string offsets, type ids) is checked, so
    /// a `BTF` value never points outside itself.
    init(section bytes: [UInt8], file: String, sectionName: String = ".BTF") throws(LoaderError) {
        let reader = ByteReader(bytes, file: file, section: sectionName)
        let magic = try reader.u16(0)
        guard magic == BTF.magic else {
            throw .malformedBTF(
                file, section: sectionName, offset: 0,
                detail: "bad magic 0x\(String(magic, radix: 16)) (expected 0xeb9f)")
        }
        let version = try reader.u8(2)
        guard version == 1 else {
            throw .malformedBTF(file, section: sectionName, offset: 2, detail: "BTF version \(version) is not 1")
        }
        let headerLength = Int(try reader.u32(4))
        guard headerLength >= 24, headerLength <= bytes.count else {
            throw .malformedBTF(
                file, section: sectionName, offset: 4, detail: "header length \(headerLength) is out of range")
        }
        let typeOffset = Int(try reader.u32(8))
        let typeLength = Int(try reader.u32(12))
        let stringOffset = Int(try reader.u32(16))
        let stringLength = Int(try reader.u32(20))
        for (what, start, length, field) in [
            ("type", typeOffset, typeLength, 8), ("string", stringOffset, stringLength, 16),
        ] {
            let begin = headerLength + start
            guard begin + length <= bytes.count else {
                throw .malformedBTF(
                    file, section: sectionName, offset: field,
                    detail:
                        "the \(what) section (\(length) bytes at \(begin)) runs past the end of the BTF (\(bytes.count) bytes)"
                )
            }
        }
        let strings = Array(bytes[headerLength + stringOffset..<headerLength + stringOffset + stringLength])
        guard strings.first == 0 || strings.isEmpty else {
            throw .malformedBTF(
                file, section: sectionName, offset: headerLength + stringOffset,
                detail: "the string section does not start with an empty string")
        }
        let typeStart = headerLength + typeOffset
        let typeBytes = Array(bytes[typeStart..<typeStart + typeLength])
        let types = try BTFTypeParser(
            reader: ByteReader(typeBytes, file: file, section: sectionName, base: typeStart), strings: strings,
            stringsStart: headerLength + stringOffset
        ).parse()
        self.types = types
        self.strings = strings
    }
}

private struct BTFTypeParser {
    let reader: ByteReader
    let strings: [UInt8]
    let stringsStart: Int

    func name(_ offset: UInt32, at position: Int) throws(LoaderError) -> String {
        guard let text = BTF.string(in: strings, at: Int(offset)) else {
            throw .malformedBTF(
                reader.file, section: reader.section, offset: reader.base + position,
                detail: "name offset \(offset) is outside the string section (\(strings.count) bytes)")
        }
        return text
    }

    func parse() throws(LoaderError) -> [BTF.TypeEntry] {
        var types: [BTF.TypeEntry] = [
            BTF.TypeEntry(id: 0, kind: .void, name: "void", kindFlag: false, sizeOrType: 0, detail: .none)
        ]
        var position = 0
        var references: [(UInt32, Int)] = []  // (type id referenced, where)
        while position < reader.bytes.count {
            let start = position
            let id = UInt32(types.count)
            let nameOffset = try reader.u32(position)
            let info = try reader.u32(position + 4)
            let sizeOrType = try reader.u32(position + 8)
            position += 12
            let vlen = Int(info & 0xffff)
            let kindValue = UInt8((info >> 24) & 0x1f)
            let kindFlag = info >> 31 != 0
            guard let kind = BTF.Kind(rawValue: kindValue), kind != .void else {
                throw .malformedBTF(
                    reader.file, section: reader.section, offset: reader.base + start,
                    detail: "type [\(id)] has unknown kind \(kindValue)")
            }
            let typeName = try name(nameOffset, at: start)
            var detail = BTF.Detail.none
            switch kind {
            case .int:
                let value = try reader.u32(position)
                position += 4
                detail = .int(
                    encoding: UInt8((value >> 24) & 0xf), bitOffset: UInt8((value >> 16) & 0xff),
                    bits: UInt8(value & 0xff))
            case .pointer, .typedef, .volatile, .const, .restrict, .typeTag:
                references.append((sizeOrType, start))
            case .function:
                references.append((sizeOrType, start))
                detail = .linkage(UInt32(vlen))
            case .array:
                let element = try reader.u32(position)
                let index = try reader.u32(position + 4)
                let count = try reader.u32(position + 8)
                position += 12
                references.append((element, start))
                references.append((index, start))
                detail = .array(element: element, index: index, count: count)
            case .structure, .union:
                var members: [BTF.Member] = []
                for _ in 0..<vlen {
                    let memberName = try name(try reader.u32(position), at: position)
                    let memberType = try reader.u32(position + 4)
                    let offset = try reader.u32(position + 8)
                    references.append((memberType, position))
                    members.append(
                        BTF.Member(
                            name: memberName, type: memberType, bitOffset: kindFlag ? offset & 0xffffff : offset,
                            bitfieldSize: kindFlag ? offset >> 24 : 0))
                    position += 12
                }
                detail = .members(members)
            case .enumeration:
                var values: [BTF.EnumValue] = []
                for _ in 0..<vlen {
                    let valueName = try name(try reader.u32(position), at: position)
                    let raw = try reader.u32(position + 4)
                    values.append(
                        BTF.EnumValue(
                            name: valueName, value: kindFlag ? Int64(Int32(bitPattern: raw)) : Int64(raw)))
                    position += 8
                }
                detail = .enumValues(values)
            case .enumeration64:
                var values: [BTF.EnumValue] = []
                for _ in 0..<vlen {
                    let valueName = try name(try reader.u32(position), at: position)
                    let low = UInt64(try reader.u32(position + 4))
                    let high = UInt64(try reader.u32(position + 8))
                    values.append(BTF.EnumValue(name: valueName, value: Int64(bitPattern: high << 32 | low)))
                    position += 12
                }
                detail = .enumValues(values)
            case .functionPrototype:
                references.append((sizeOrType, start))
                var parameters: [BTF.Parameter] = []
                for _ in 0..<vlen {
                    let parameterName = try name(try reader.u32(position), at: position)
                    let parameterType = try reader.u32(position + 4)
                    references.append((parameterType, position))
                    parameters.append(BTF.Parameter(name: parameterName, type: parameterType))
                    position += 8
                }
                detail = .parameters(parameters)
            case .variable:
                references.append((sizeOrType, start))
                detail = .linkage(try reader.u32(position))
                position += 4
            case .dataSection:
                var variables: [BTF.SectionVariable] = []
                for _ in 0..<vlen {
                    let variableType = try reader.u32(position)
                    references.append((variableType, position))
                    variables.append(
                        BTF.SectionVariable(
                            type: variableType, offset: try reader.u32(position + 4), size: try reader.u32(position + 8)
                        ))
                    position += 12
                }
                detail = .sectionVariables(variables)
            case .declarationTag:
                references.append((sizeOrType, start))
                detail = .componentIndex(Int32(bitPattern: try reader.u32(position)))
                position += 4
            case .forward, .float, .void:
                break
            }
            types.append(
                BTF.TypeEntry(
                    id: id, kind: kind, name: typeName, kindFlag: kindFlag, sizeOrType: sizeOrType, detail: detail))
        }
        for (referenced, where_) in references where Int(referenced) >= types.count {
            throw .malformedBTF(
                reader.file, section: reader.section, offset: reader.base + where_,
                detail: "refers to type [\(referenced)], but the BTF has \(types.count - 1) types")
        }
        return types
    }
}

// MARK: - Data section fix-up

extension BTF {
    /// clang leaves every DATASEC's size and variable offsets 0 in an object file; the
    /// ELF section and symbol table know them. Like libbpf's `btf_fixup_datasec`, fill
    /// them in: `layout` gives a section's size and each variable's offset by name, or nil
    /// for a DATASEC without such a section (left as it is).
    func fixingDataSections(_ layout: (String) -> (size: Int, offsets: [String: UInt64])?) -> BTF {
        var fixed = types
        for (index, entry) in types.enumerated() where entry.kind == .dataSection {
            guard case .sectionVariables(let variables) = entry.detail, let (size, offsets) = layout(entry.name)
            else { continue }
            let placed = variables.map { variable -> SectionVariable in
                guard let name = type(variable.type)?.name, let offset = offsets[name] else { return variable }
                return SectionVariable(
                    type: variable.type, offset: UInt32(truncatingIfNeeded: offset), size: variable.size)
            }
            fixed[index] = TypeEntry(
                id: entry.id, kind: entry.kind, name: entry.name, kindFlag: entry.kindFlag,
                sizeOrType: UInt32(truncatingIfNeeded: size), detail: .sectionVariables(placed))
        }
        return BTF(types: fixed, strings: strings)
    }
}
