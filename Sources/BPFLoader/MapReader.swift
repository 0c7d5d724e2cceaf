import BPFRuntime

/// The maps of an object and where each came from, so relocations can find them.
struct MapTable {
    struct Key: Hashable {
        let section: Int
        let offset: UInt64
    }

    var specs: [MapSpec] = []
    /// Maps defined by a symbol in `.maps` or `maps`: (section, symbol offset) -> index.
    var definitionMaps: [Key: Int] = [:]
    /// Global data maps: section index -> index.
    var dataMaps: [Int: Int] = [:]
    /// The `.kconfig` map libbpf makes for `__kconfig` externs, and each extern's offset in it.
    var kconfigMap: Int?
    var kconfigOffsets: [String: Int] = [:]
}

/// Reads map definitions: the legacy `maps` section, BTF-defined `.maps` (with initial
/// values for prog arrays and maps of maps), and global data sections.
struct MapReader {
    let elf: ELFFile
    let btf: BTF?
    let functions: [CodeFunction]
    /// Function indices of the object's programs, in program order.
    let programFunctions: [Int]
    var table = MapTable()
    var file: String { elf.path }

    init(elf: ELFFile, btf: BTF?, functions: [CodeFunction], programFunctions: [Int]) {
        self.elf = elf
        self.btf = btf
        self.functions = functions
        self.programFunctions = programFunctions
    }

    mutating func readAll() throws(LoaderError) -> MapTable {
        if let section = elf.sections.first(where: { $0.name == "maps" }) { try readLegacy(section) }
        if let section = elf.sections.first(where: { $0.name == ".maps" }) { try readBTFMaps(section) }
        for section in elf.sections where Self.isGlobalData(section.name) {
            guard section.size > 0,
                section.type == ELFConstant.sectionProgBits || section.type == ELFConstant.sectionNoBits
            else { continue }
            readGlobalData(section)
        }
        readKconfig()
        return table
    }

    static func isGlobalData(_ name: String) -> Bool {
        for prefix in [".rodata", ".data", ".bss"] where name == prefix || name.hasPrefix(prefix + ".") {
            return true
        }
        return name == ".kconfig"
    }

    mutating func add(_ spec: MapSpec, section: Int, offset: UInt64) {
        table.definitionMaps[MapTable.Key(section: section, offset: offset)] = table.specs.count
        table.specs.append(spec)
    }

    // MARK: Legacy `maps`

    /// `struct bpf_map_def { type, key_size, value_size, max_entries, map_flags }`, five
    /// u32s per map, at each symbol's offset.
    mutating func readLegacy(_ section: ELFSection) throws(LoaderError) {
        let definitionSize = 20
        let symbols = elf.symbols.filter {
            Int($0.sectionIndex) == section.index && $0.type != ELFConstant.symbolSection && !$0.name.isEmpty
        }.sorted { $0.value < $1.value }
        for symbol in symbols {
            let offset = Int(clamping: symbol.value)
            guard definitionSize <= section.data.count, offset <= section.data.count - definitionSize else {
                throw .badMapDefinition(
                    file, section: section.name, offset: offset, map: symbol.name,
                    detail:
                        "a struct bpf_map_def needs \(definitionSize) bytes here; the section has \(section.data.count)"
                )
            }
            let field = { (index: Int) -> UInt32 in LittleEndian.u32(section.data, at: offset + 4 * index)! }
            guard let type = MapType(rawValue: field(0)) else {
                throw .unknownMapType(file, section: section.name, offset: offset, map: symbol.name, type: field(0))
            }
            add(
                MapSpec(
                    name: symbol.name, type: type, keySize: Int(field(1)), valueSize: Int(field(2)),
                    maxEntries: Int(field(3)), flags: field(4)),
                section: section.index, offset: symbol.value)
        }
    }

    // MARK: BTF-defined `.maps`

    /// A `.maps` variable with a `values` member, whose slots relocations fill.
    struct SlotMap {
        let mapIndex: Int
        let variableOffset: UInt64
        let variableSize: UInt64
        let valuesOffset: UInt64
    }

    mutating func readBTFMaps(_ section: ELFSection) throws(LoaderError) {
        guard let btf else { throw .mapsWithoutBTF(file) }
        guard let datasec = btf.firstType(named: ".maps", kind: .dataSection),
            case .sectionVariables(let variables) = datasec.detail
        else {
            throw .badMapDefinition(
                file, section: section.name, offset: nil, map: ".maps",
                detail: "the BTF has no DATASEC '.maps' describing the section")
        }
        var slotMaps: [SlotMap] = []
        for variable in variables {
            guard let entry = btf.type(variable.type), entry.kind == .variable else {
                throw .badMapDefinition(
                    file, section: section.name, offset: Int(variable.offset), map: "?",
                    detail: "DATASEC entry [\(variable.type)] is not a VAR")
            }
            let (spec, valuesOffset) = try definition(
                of: entry.sizeOrType, name: entry.name, section: section.name, offset: Int(variable.offset))
            if let valuesOffset {
                slotMaps.append(
                    SlotMap(
                        mapIndex: table.specs.count, variableOffset: UInt64(variable.offset),
                        variableSize: UInt64(variable.size), valuesOffset: valuesOffset))
            }
            add(spec, section: section.index, offset: UInt64(variable.offset))
        }
        try readInitialValues(section, slotMaps)
    }

    /// Reads one map definition struct: `__uint` members are pointers to arrays whose
    /// length is the value, `__type` members pointers to the type, `__array(values, T)`
    /// a zero-length array of pointers to T. Returns the spec and, when there is a
    /// `values` member, its byte offset in the struct.
    func definition(of typeID: UInt32, name: String, section: String, offset: Int, depth: Int = 0)
        throws(LoaderError) -> (MapSpec, UInt64?)
    {
        let btf = btf!
        func fail(_ detail: String) -> LoaderError {
            .badMapDefinition(file, section: section, offset: offset, map: name, detail: detail)
        }
        guard let structure = btf.type(btf.resolved(typeID)), structure.kind == .structure,
            case .members(let members) = structure.detail
        else { throw fail("its type is not a struct") }

        func number(_ member: BTF.Member) throws(LoaderError) -> UInt32 {
            guard let pointer = btf.type(btf.resolved(member.type)), pointer.kind == .pointer,
                let array = btf.type(btf.resolved(pointer.sizeOrType)), array.kind == .array,
                case .array(_, _, let count) = array.detail
            else { throw fail("field '\(member.name)' is not an __uint(\(member.name), N)") }
            return count
        }
        func pointee(_ member: BTF.Member) throws(LoaderError) -> (id: UInt32, size: Int) {
            guard let pointer = btf.type(btf.resolved(member.type)), pointer.kind == .pointer else {
                throw fail("field '\(member.name)' is not a __type(\(member.name), T)")
            }
            guard let size = btf.size(of: pointer.sizeOrType) else {
                throw fail("the type of '\(member.name)' has no size")
            }
            return (pointer.sizeOrType, size)
        }

        var typeValue: UInt32?
        var keySize: Int?
        var valueSize: Int?
        var keyType: UInt32 = 0
        var valueType: UInt32 = 0
        var maxEntries = 0
        var flags: UInt32 = 0
        var mapExtra: UInt64 = 0
        var pinning = MapPinning.none
        var inner: InnerMapSpec?
        var valuesOffset: UInt64?

        for member in members {
            switch member.name {
            case "type": typeValue = try number(member)
            case "max_entries": maxEntries = Int(try number(member))
            case "map_flags": flags = try number(member)
            case "numa_node": _ = try number(member)
            case "map_extra": mapExtra = UInt64(try number(member))
            case "pinning":
                let value = try number(member)
                guard let parsed = MapPinning(rawValue: value) else { throw fail("pinning \(value) is not 0 or 1") }
                pinning = parsed
            case "key_size":
                let value = Int(try number(member))
                if let keySize, keySize != value {
                    throw fail("key_size \(value) contradicts the key type (\(keySize))")
                }
                keySize = value
            case "value_size":
                let value = Int(try number(member))
                if let valueSize, valueSize != value {
                    throw fail("value_size \(value) contradicts the value type (\(valueSize))")
                }
                valueSize = value
            case "key":
                let (id, size) = try pointee(member)
                if let keySize, keySize != size {
                    throw fail("the key type's size \(size) contradicts key_size \(keySize)")
                }
                keySize = size
                keyType = id
            case "value":
                let (id, size) = try pointee(member)
                if let valueSize, valueSize != size {
                    throw fail("the value type's size \(size) contradicts value_size \(valueSize)")
                }
                valueSize = size
                valueType = id
            case "values":
                guard let array = btf.type(btf.resolved(member.type)), array.kind == .array,
                    case .array(let element, _, _) = array.detail,
                    let pointer = btf.type(btf.resolved(element)), pointer.kind == .pointer,
                    let target = btf.type(btf.resolved(pointer.sizeOrType))
                else { throw fail("field 'values' is not an __array(values, T)") }
                valuesOffset = UInt64(member.bitOffset / 8)
                if target.kind == .structure {
                    guard depth == 0 else { throw fail("an inner map cannot itself hold maps") }
                    let (innerSpec, _) = try definition(
                        of: target.id, name: name + ".inner", section: section, offset: offset, depth: depth + 1)
                    inner = InnerMapSpec(innerSpec)
                } else if target.kind != .functionPrototype {
                    throw fail("'values' must hold maps (a struct) or programs (a function prototype)")
                }
            default:
                throw fail("unknown field '\(member.name)'")
            }
        }
        guard let typeValue else { throw fail("it has no 'type' field") }
        guard let type = MapType(rawValue: typeValue) else {
            throw .unknownMapType(file, section: section, offset: offset, map: name, type: typeValue)
        }
        if valuesOffset != nil {
            let holdsMaps = type == .arrayOfMaps || type == .hashOfMaps
            guard holdsMaps || type == .progArray else {
                throw fail("'values' is only for prog arrays and maps of maps, not \(type.kernelName)")
            }
            if holdsMaps && inner == nil { throw fail("'values' of a map of maps must describe the inner map") }
            if let valueSize, valueSize != 4 { throw fail("value_size must be 4 when 'values' is given") }
            valueSize = 4
        }
        let spec = MapSpec(
            name: name, type: type, keySize: keySize ?? 0, valueSize: valueSize ?? 0, maxEntries: maxEntries,
            flags: flags, mapExtra: mapExtra, pinning: pinning, inner: inner, btfKeyTypeID: keyType,
            btfValueTypeID: valueType)
        return (spec, valuesOffset)
    }

    /// `.values = { [1] = &prog, ... }`: 64-bit relocations in `.maps` at the slots of the
    /// `values` array. A prog array's slot holds a program index (into the object's
    /// programs); a map of maps' slot holds a map index (into the object's maps).
    mutating func readInitialValues(_ section: ELFSection, _ slotMaps: [SlotMap]) throws(LoaderError) {
        guard
            let relocations = elf.relocations.first(where: { Int(elf.sections[$0.key].info) == section.index })
        else { return }
        let relName = elf.sections[relocations.key].name
        var entries: [Int: [(UInt64, UInt32)]] = [:]
        for relocation in relocations.value {
            func fail(_ detail: String, map: String = "?") -> LoaderError {
                .badMapInitialValue(file, section: relName, offset: relocation.entryOffset, map: map, detail: detail)
            }
            guard relocation.symbol < elf.symbols.count else {
                throw .badSymbolIndex(
                    file, section: relName, offset: relocation.entryOffset, index: relocation.symbol,
                    count: elf.symbols.count)
            }
            let symbol = elf.symbols[relocation.symbol]
            guard
                let slotMap = slotMaps.first(where: {
                    relocation.offset >= $0.variableOffset + $0.valuesOffset
                        && relocation.offset < $0.variableOffset + $0.variableSize
                })
            else { throw fail("the relocation at offset \(relocation.offset) is not in any map's 'values'") }
            let spec = table.specs[slotMap.mapIndex]
            let slotOffset = relocation.offset - slotMap.variableOffset - slotMap.valuesOffset
            guard slotOffset % 8 == 0 else { throw fail("offset \(relocation.offset) is not a slot", map: spec.name) }
            let slot = slotOffset / 8
            // The slot is an index for arrays (libbpf's update fails past max_entries) and a
            // key for a hash of maps, which any u32 may be.
            guard spec.type == .hashOfMaps || slot < UInt64(spec.maxEntries) else {
                throw fail("slot \(slot) is beyond max_entries \(spec.maxEntries)", map: spec.name)
            }
            let value: Int
            if spec.type == .progArray {
                guard
                    let program = programFunctions.firstIndex(where: {
                        functions[$0].section == Int(symbol.sectionIndex)
                            && UInt64(functions[$0].start * 8) == symbol.value
                    })
                else { throw fail("slot \(slot) names '\(symbol.name)', which is not a program", map: spec.name) }
                value = program
            } else {
                guard
                    let mapIndex = table.definitionMaps[
                        MapTable.Key(section: Int(symbol.sectionIndex), offset: symbol.value)]
                else { throw fail("slot \(slot) names '\(symbol.name)', which is not a map", map: spec.name) }
                value = mapIndex
            }
            entries[slotMap.mapIndex, default: []].append((slot, UInt32(value)))
        }
        for (mapIndex, slots) in entries {
            let keySize = max(4, table.specs[mapIndex].keySize)
            table.specs[mapIndex].initialEntries = slots.sorted { $0.0 < $1.0 }.map { slot, value in
                var key = [UInt8](repeating: 0, count: keySize)
                for i in 0..<8 where i < keySize { key[i] = UInt8(truncatingIfNeeded: slot >> (8 * UInt64(i))) }
                return MapEntry(key: key, value: LittleEndian.bytes(value))
            }
        }
    }

    // MARK: Kconfig externs

    /// The values bpfsim gives `extern ... __kconfig` variables: those libbpf computes
    /// itself (`LINUX_*`, libbpf.c `bpf_object__read_kconfig_mem` and friends) for the
    /// emulated machine, an x86-64 Linux 6.18 with syscall wrappers.
    static let kconfigValues: [String: UInt64] = [
        "LINUX_KERNEL_VERSION": 6 << 16 | 18 << 8,
        "LINUX_HAS_SYSCALL_WRAPPER": 1,
        "LINUX_HAS_BPF_COOKIE": 1,
    ]

    /// Lays out the `__kconfig` externs the BTF's `.kconfig` DATASEC lists, as libbpf
    /// does: one read-only array element, each variable aligned to its size, holding the
    /// values above. An extern bpfsim has no value for is left to the relocation, which
    /// names it in its error.
    mutating func readKconfig() {
        guard table.kconfigMap == nil, let btf,
            let datasec = btf.firstType(named: ".kconfig", kind: .dataSection),
            case .sectionVariables(let variables) = datasec.detail, !variables.isEmpty
        else { return }
        var bytes: [UInt8] = []
        for variable in variables {
            guard let declaration = btf.type(variable.type), let size = btf.size(of: declaration.sizeOrType),
                size >= 1, size <= 8, let value = Self.kconfigValues[declaration.name]
            else { continue }
            let alignment = size.nonzeroBitCount == 1 ? size : 8
            bytes += [UInt8](repeating: 0, count: (alignment - bytes.count % alignment) % alignment)
            table.kconfigOffsets[declaration.name] = bytes.count
            bytes += (0..<size).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
        }
        guard !bytes.isEmpty else { return }
        bytes += [UInt8](repeating: 0, count: (8 - bytes.count % 8) % 8)
        table.kconfigMap = table.specs.count
        table.specs.append(
            MapSpec(
                name: ".kconfig", type: .array, keySize: 4, valueSize: bytes.count, maxEntries: 1,
                flags: MapFlags.rdonlyProg, initialEntries: [MapEntry(key: [0, 0, 0, 0], value: bytes)],
                section: ".kconfig"))
    }

    // MARK: Global data

    /// A global data section becomes a one-entry array: key 0, the section's bytes as
    /// its value. `.rodata*` (and `.kconfig`) are read-only to programs.
    mutating func readGlobalData(_ section: ELFSection) {
        let readOnly = section.name == ".rodata" || section.name.hasPrefix(".rodata.") || section.name == ".kconfig"
        let valueType = btf?.firstType(named: section.name, kind: .dataSection)?.id ?? 0
        let spec = MapSpec(
            name: section.name, type: .array, keySize: 4, valueSize: section.data.count, maxEntries: 1,
            flags: readOnly ? MapFlags.rdonlyProg : 0,
            initialEntries: [MapEntry(key: [0, 0, 0, 0], value: section.data)], btfValueTypeID: valueType,
            section: section.name)
        table.dataMaps[section.index] = table.specs.count
        table.specs.append(spec)
    }
}
