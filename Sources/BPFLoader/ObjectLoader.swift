import BPFCore
import BPFRuntime

/// ELF relocation types for BPF (llvm's ELFRelocs/BPF.def).
enum BPFRelocation {
    /// `R_BPF_64_64`: the 64-bit immediate of an `lddw`.
    static let imm64: UInt32 = 1
    /// `R_BPF_64_ABS64`: a 64-bit data word (in `.maps` initial values, DWARF).
    static let abs64: UInt32 = 2
    /// `R_BPF_64_32`: the immediate of a `call` (in instructions).
    static let call32: UInt32 = 10
}

/// Opcodes and pseudo sources the linker rewrites (linux/bpf.h).
enum LinkOpcode {
    static let lddw: UInt8 = 0x18  // BPF_LD | BPF_IMM | BPF_DW
    static let call: UInt8 = 0x85  // BPF_JMP | BPF_CALL
    static let pseudoCall: UInt8 = 1  // BPF_PSEUDO_CALL
    static let pseudoFunc: UInt8 = 4  // BPF_PSEUDO_FUNC
    static let pseudoMapIndex: UInt8 = 5  // BPF_PSEUDO_MAP_IDX
    static let pseudoMapIndexValue: UInt8 = 6  // BPF_PSEUDO_MAP_IDX_VALUE
}

/// A function symbol in an executable section.
struct CodeFunction {
    let name: String
    let section: Int
    /// Index of its first instruction in the section.
    let start: Int
    let count: Int
    let isGlobal: Bool
}

/// What the loader produced, before it becomes a `BPFObject`.
struct LoadedObject {
    var license: String?
    var kernelVersion: UInt32?
    var programs: [ObjectProgram]
    var maps: [MapSpec]
    var btf: BTF?
}

/// Turns an `ELFFile` into programs and maps, the way libbpf's `bpf_object__open` and
/// its relocation pass do.
struct ObjectLoader {
    let elf: ELFFile
    var file: String { elf.path }
    var btf: BTF?
    var ext = BTFExt()
    /// Instructions of each executable section, by section index.
    var code: [Int: [Instruction]] = [:]
    var functions: [CodeFunction] = []
    /// Relocations of each executable section: section index -> instruction index -> relocation.
    var codeRelocations: [Int: [Int: ELFRelocation]] = [:]
    var maps = MapTable()

    init(elf: ELFFile) {
        self.elf = elf
    }

    mutating func load() throws(LoaderError) -> LoadedObject {
        if let section = elf.sections.first(where: { $0.name == ".BTF" }) {
            let elf = self.elf
            let parsed = try BTF(section: section.data, file: file).fixingDataSections { name in
                guard let section = elf.sections.first(where: { $0.name == name }) else { return nil }
                var offsets: [String: UInt64] = [:]
                for symbol in elf.symbols
                where Int(symbol.sectionIndex) == section.index && symbol.type != ELFConstant.symbolSection {
                    offsets[symbol.name] = symbol.value
                }
                return (Int(section.size), offsets)
            }
            btf = parsed
            if let extSection = elf.sections.first(where: { $0.name == ".BTF.ext" }) {
                ext = try BTFExt(section: extSection.data, file: file, btf: parsed)
            }
        }
        var license: String?
        if let section = elf.sections.first(where: { $0.name == "license" }) {
            license = String(decoding: section.data.prefix { $0 != 0 }, as: UTF8.self)
        }
        var kernelVersion: UInt32?
        if let section = elf.sections.first(where: { $0.name == "version" }) {
            guard let value = LittleEndian.u32(section.data, at: 0) else {
                throw .truncated(file, section: "version", offset: 0, needed: 4, available: section.data.count)
            }
            kernelVersion = value
        }
        try readCode()
        try readFunctions()
        try readCodeRelocations()

        // Programs: every global function of an executable section, by section then offset.
        let entries = functions.enumerated().filter { $0.element.isGlobal }
            .sorted { ($0.element.section, $0.element.start) < ($1.element.section, $1.element.start) }
            .map(\.offset)

        var reader = MapReader(elf: elf, btf: btf, functions: functions, programFunctions: entries)
        maps = try reader.readAll()

        var programs: [ObjectProgram] = []
        for entry in entries { programs.append(try link(entry: entry)) }
        return LoadedObject(
            license: license, kernelVersion: kernelVersion, programs: programs, maps: maps.specs, btf: btf)
    }

    // MARK: Code, functions, relocations

    mutating func readCode() throws(LoaderError) {
        for section in elf.sections where section.isExecutable && section.size > 0 {
            guard section.data.count % 8 == 0 else {
                throw .badInstructionSection(file, section: section.name, size: section.data.count)
            }
            do {
                code[section.index] = try Instruction.decode(section.data)
            } catch {
                throw .badInstructionSection(file, section: section.name, size: section.data.count)
            }
        }
    }

    mutating func readFunctions() throws(LoaderError) {
        for symbol in elf.symbols where symbol.type == ELFConstant.symbolFunction {
            let where_ = symbol.index * ELFConstant.symbolSize
            guard symbol.sectionIndex != ELFConstant.sectionUndefined else { continue }  // an extern
            guard symbol.sectionIndex < ELFConstant.sectionReservedLow, Int(symbol.sectionIndex) < elf.sections.count
            else {
                throw .badSectionIndex(
                    file, section: elf.symbolTableName, offset: where_, index: Int(symbol.sectionIndex),
                    field: "symbol '\(symbol.name)' st_shndx", count: elf.sections.count)
            }
            let sectionIndex = Int(symbol.sectionIndex)
            guard let instructions = code[sectionIndex] else {
                if elf.sections[sectionIndex].isExecutable { continue }  // an empty section
                throw .badFunctionSymbol(
                    file, section: elf.symbolTableName, offset: where_, name: symbol.name,
                    detail: "it is in section '\(elf.sections[sectionIndex].name)', which holds no code")
            }
            guard symbol.value % 8 == 0, symbol.size % 8 == 0, symbol.size > 0 else {
                throw .badFunctionSymbol(
                    file, section: elf.symbolTableName, offset: where_, name: symbol.name,
                    detail: "offset \(symbol.value) and size \(symbol.size) are not whole instructions")
            }
            let start = symbol.value / 8
            let count = symbol.size / 8
            guard start < UInt64(instructions.count), count <= UInt64(instructions.count) - start else {
                throw .badFunctionSymbol(
                    file, section: elf.symbolTableName, offset: where_, name: symbol.name,
                    detail:
                        "instructions \(start)..<\(start + count) run past the end of '\(elf.sections[sectionIndex].name)' (\(instructions.count) instructions)"
                )
            }
            functions.append(
                CodeFunction(
                    name: symbol.name, section: sectionIndex, start: Int(start), count: Int(count),
                    isGlobal: symbol.binding != ELFConstant.bindingLocal))
        }
    }

    mutating func readCodeRelocations() throws(LoaderError) {
        for (relIndex, entries) in elf.relocations {
            let relSection = elf.sections[relIndex]
            let target = try elf.section(
                Int(relSection.info), field: "sh_info (the section it relocates)", in: relSection.name, offset: nil)
            guard target.isExecutable, let instructions = code[target.index] else { continue }
            var byInstruction: [Int: ELFRelocation] = [:]
            for entry in entries {
                guard entry.symbol < elf.symbols.count else {
                    throw .badSymbolIndex(
                        file, section: relSection.name, offset: entry.entryOffset, index: entry.symbol,
                        count: elf.symbols.count)
                }
                guard entry.offset % 8 == 0, entry.offset / 8 < UInt64(instructions.count) else {
                    throw .badRelocationOffset(
                        file, section: relSection.name, offset: entry.entryOffset, target: target.name,
                        value: entry.offset)
                }
                byInstruction[Int(entry.offset / 8)] = entry
            }
            codeRelocations[target.index] = byInstruction
        }
    }

    /// The function that holds instruction `index` of section `section`.
    func function(in section: Int, containing index: Int) -> Int? {
        functions.firstIndex { $0.section == section && $0.start <= index && index < $0.start + $0.count }
    }

    // MARK: Linking one program

    /// Copies the entry function, appends every subprogram it reaches (transitively) at
    /// the end, and rewrites map references, calls and function addresses.
    func link(entry: Int) throws(LoaderError) -> ObjectProgram {
        var out: [Instruction] = []
        var placed: [Int: Int] = [:]  // function index -> start in `out`
        var chunks: [(function: Int, start: Int)] = []

        func place(_ index: Int) -> Int {
            if let start = placed[index] { return start }
            let function = functions[index]
            let start = out.count
            placed[index] = start
            chunks.append((index, start))
            out += code[function.section]![function.start..<function.start + function.count]
            return start
        }
        _ = place(entry)

        var chunk = 0
        var i = 0
        while i < out.count {
            while chunk + 1 < chunks.count && chunks[chunk + 1].start <= i { chunk += 1 }
            let function = functions[chunks[chunk].function]
            let sectionIndex = function.section
            let sectionName = elf.sections[sectionIndex].name
            let sectionInstruction = function.start + (i - chunks[chunk].start)
            let relocation = codeRelocations[sectionIndex]?[sectionInstruction]
            let instruction = out[i]
            let here = sectionInstruction * 8

            if instruction.opcode == LinkOpcode.lddw {
                if let relocation {
                    guard i + 1 < out.count else {
                        throw .badRelocationOffset(
                            file, section: sectionName, offset: here, target: sectionName, value: UInt64(here))
                    }
                    switch try resolveLoad(
                        out[i], relocation: relocation, section: sectionName, offset: here)
                    {
                    case .map(let index):
                        out[i].src = LinkOpcode.pseudoMapIndex
                        out[i].immediate = Int32(index)
                        out[i + 1].immediate = 0
                    case .mapValue(let index, let valueOffset):
                        out[i].src = LinkOpcode.pseudoMapIndexValue
                        out[i].immediate = Int32(index)
                        out[i + 1].immediate = valueOffset
                    case .function(let callee, let instruction):
                        let target = place(callee) + (instruction - functions[callee].start)
                        out[i].src = LinkOpcode.pseudoFunc
                        out[i].immediate = Int32(target - i - 1)
                        out[i + 1].immediate = 0
                    }
                }
                i += 2
                continue
            }
            if instruction.opcode == LinkOpcode.call && instruction.src == LinkOpcode.pseudoCall {
                let targetSection: Int
                let targetInstruction: Int
                if let relocation {
                    let symbol = elf.symbols[relocation.symbol]
                    guard symbol.sectionIndex != ELFConstant.sectionUndefined,
                        Int(symbol.sectionIndex) < elf.sections.count, code[Int(symbol.sectionIndex)] != nil
                    else {
                        throw .unresolvedSymbol(
                            file, section: sectionName, offset: here, symbol: symbol.name,
                            reason: "a call must name a function defined in this object's code")
                    }
                    targetSection = Int(symbol.sectionIndex)
                    targetInstruction = Int(symbol.value / 8) + Int(instruction.immediate) + 1
                } else {
                    targetSection = sectionIndex
                    targetInstruction = sectionInstruction + Int(instruction.immediate) + 1
                }
                guard let callee = self.function(in: targetSection, containing: targetInstruction) else {
                    throw .badCallTarget(
                        file, section: sectionName, offset: here,
                        detail:
                            "the call goes to instruction \(targetInstruction) of '\(elf.sections[targetSection].name)', which is in no function"
                    )
                }
                let start = place(callee)
                let newTarget = start + (targetInstruction - functions[callee].start)
                out[i].immediate = Int32(newTarget - i - 1)
            } else if let relocation {
                let symbol = elf.symbols[relocation.symbol]
                if symbol.sectionIndex == ELFConstant.sectionUndefined {
                    throw .unresolvedSymbol(
                        file, section: sectionName, offset: here, symbol: symbol.name,
                        reason: "it is an extern (a kfunc or ksym), which bpfsim does not resolve")
                }
                throw .unsupportedRelocation(
                    file, section: sectionName, offset: here, type: relocation.type,
                    instruction: Disassembler.lines([instruction]).first?.text ?? "an instruction")
            }
            i += 1
        }

        let entryFunction = functions[entry]
        let sectionName = elf.sections[entryFunction.section].name
        let found = SectionDefinition.find(sectionName)
        return ObjectProgram(
            name: entryFunction.name, section: sectionName, type: found?.definition.programType ?? .unspec,
            expectedAttachType: found?.definition.expectedAttachType ?? 0, attachTarget: found?.attachTarget,
            sleepable: found?.definition.sleepable ?? false, instructions: out,
            functions: chunks.map {
                ProgramFunction(name: functions[$0.function].name, start: $0.start, count: functions[$0.function].count)
            },
            functionInfo: functionInfo(chunks), lineInfo: lineInfo(chunks))
    }

    /// What an `lddw` with a relocation becomes.
    enum LoadTarget {
        /// `BPF_PSEUDO_MAP_IDX`: the map itself.
        case map(Int)
        /// `BPF_PSEUDO_MAP_IDX_VALUE`: an address inside the map's value.
        case mapValue(Int, offset: Int32)
        /// `BPF_PSEUDO_FUNC`: the address of instruction `instruction` (in its section) of function `callee`.
        case function(callee: Int, instruction: Int)
    }

    /// Decides what an `lddw` whose relocation names a map, global data or a function becomes.
    func resolveLoad(_ instruction: Instruction, relocation: ELFRelocation, section: String, offset: Int)
        throws(LoaderError) -> LoadTarget
    {
        let symbol = elf.symbols[relocation.symbol]
        guard relocation.type == BPFRelocation.imm64 else {
            throw .unsupportedRelocation(
                file, section: section, offset: offset, type: relocation.type, instruction: "lddw")
        }
        guard symbol.sectionIndex != ELFConstant.sectionUndefined else {
            if let mapIndex = maps.kconfigMap, let base = maps.kconfigOffsets[symbol.name] {
                return .mapValue(mapIndex, offset: Int32(base) + instruction.immediate)
            }
            throw .unresolvedSymbol(
                file, section: section, offset: offset, symbol: symbol.name,
                reason:
                    "it is an extern (a ksym, or a kconfig value other than \(MapReader.kconfigValues.keys.sorted().joined(separator: ", "))), which bpfsim does not resolve"
            )
        }
        guard symbol.sectionIndex < ELFConstant.sectionReservedLow, Int(symbol.sectionIndex) < elf.sections.count
        else {
            throw .badSectionIndex(
                file, section: elf.symbolTableName, offset: symbol.index * ELFConstant.symbolSize,
                index: Int(symbol.sectionIndex), field: "symbol '\(symbol.name)' st_shndx", count: elf.sections.count)
        }
        let symbolSection = Int(symbol.sectionIndex)
        if let mapIndex = maps.definitionMaps[MapTable.Key(section: symbolSection, offset: symbol.value)] {
            return .map(mapIndex)
        }
        if let mapIndex = maps.dataMaps[symbolSection] {
            // The offset clang leaves in the immediate plus the symbol's own (a section
            // symbol's is 0), as libbpf computes it for RELO_DATA.
            let valueOffset = Int64(clamping: symbol.value) + Int64(instruction.immediate)
            guard valueOffset >= 0, valueOffset <= Int64(maps.specs[mapIndex].valueSize) else {
                throw .unresolvedSymbol(
                    file, section: section, offset: offset, symbol: symbol.name,
                    reason:
                        "offset \(valueOffset) is outside '\(maps.specs[mapIndex].name)' (\(maps.specs[mapIndex].valueSize) bytes)"
                )
            }
            return .mapValue(mapIndex, offset: Int32(valueOffset))
        }
        if code[symbolSection] != nil {
            // A function's address (a callback): the immediate is a byte offset from the symbol.
            let byteOffset = Int64(clamping: symbol.value) + Int64(instruction.immediate)
            guard byteOffset >= 0, byteOffset % 8 == 0,
                let callee = function(in: symbolSection, containing: Int(byteOffset / 8))
            else {
                throw .badCallTarget(
                    file, section: section, offset: offset,
                    detail:
                        "the function address \(symbol.name)+\(instruction.immediate) is not an instruction of a function"
                )
            }
            return .function(callee: callee, instruction: Int(byteOffset / 8))
        }
        if elf.sections[symbolSection].name == ".maps" || elf.sections[symbolSection].name == "maps" {
            throw .unresolvedSymbol(
                file, section: section, offset: offset, symbol: symbol.name,
                reason: "no map is defined at offset \(symbol.value) of '\(elf.sections[symbolSection].name)'")
        }
        throw .unresolvedSymbol(
            file, section: section, offset: offset, symbol: symbol.name,
            reason: "it is in '\(elf.sections[symbolSection].name)', which is neither a map, global data nor code")
    }

    // MARK: BTF function and line info

    /// The records of the functions placed in a program, with indices into its instructions.
    func functionInfo(_ chunks: [(function: Int, start: Int)]) -> [FunctionInfo] {
        guard let btf else { return [] }
        var result: [FunctionInfo] = []
        for (index, start) in chunks {
            let function = functions[index]
            for record in ext.functions[elf.sections[function.section].name] ?? [] {
                let instruction = Int(record.instructionOffset / 8)
                guard instruction >= function.start && instruction < function.start + function.count else { continue }
                result.append(
                    FunctionInfo(
                        instructionIndex: start + instruction - function.start, btfTypeID: record.typeID,
                        name: btf.type(record.typeID)?.name ?? function.name))
            }
        }
        return result.sorted { $0.instructionIndex < $1.instructionIndex }
    }

    func lineInfo(_ chunks: [(function: Int, start: Int)]) -> [LineInfo] {
        guard let btf else { return [] }
        var result: [LineInfo] = []
        for (index, start) in chunks {
            let function = functions[index]
            for record in ext.lines[elf.sections[function.section].name] ?? [] {
                let instruction = Int(record.instructionOffset / 8)
                guard instruction >= function.start && instruction < function.start + function.count else { continue }
                result.append(
                    LineInfo(
                        instructionIndex: start + instruction - function.start,
                        file: btf.string(at: record.fileNameOffset) ?? "?", line: Int(record.lineColumn >> 10),
                        column: Int(record.lineColumn & 0x3ff), source: btf.string(at: record.lineOffset) ?? ""))
            }
        }
        return result.sorted { $0.instructionIndex < $1.instructionIndex }
    }
}
