import CLibELF

// The only file that talks to libelf. It reads everything the loader needs (section
// headers and bytes, symbols, relocations) into Swift values while the `Elf` handle is
// open, then closes it: no libelf pointer outlives `ELFFile.init`.

/// ELF constants the loader uses (elf.h), spelled out so their meaning is visible here.
enum ELFConstant {
    static let classELF64: UInt8 = 2  // ELFCLASS64
    static let dataLittleEndian: UInt8 = 1  // ELFDATA2LSB
    static let machineBPF: UInt16 = 247  // EM_BPF
    static let typeRelocatable: UInt16 = 1  // ET_REL
    static let sectionProgBits: UInt32 = 1  // SHT_PROGBITS
    static let sectionSymbolTable: UInt32 = 2  // SHT_SYMTAB
    static let sectionRela: UInt32 = 4  // SHT_RELA
    static let sectionNoBits: UInt32 = 8  // SHT_NOBITS
    static let sectionRel: UInt32 = 9  // SHT_REL
    static let flagExecutable: UInt64 = 0x4  // SHF_EXECINSTR
    static let symbolObject: UInt8 = 1  // STT_OBJECT
    static let symbolFunction: UInt8 = 2  // STT_FUNC
    static let symbolSection: UInt8 = 3  // STT_SECTION
    static let bindingLocal: UInt8 = 0  // STB_LOCAL
    static let sectionUndefined: UInt16 = 0  // SHN_UNDEF
    static let sectionReservedLow: UInt16 = 0xff00  // SHN_LORESERVE
    static let sectionHeaderSize = 64  // sizeof(Elf64_Shdr)
    static let symbolSize = 24  // sizeof(Elf64_Sym)
    static let relocationSize = 16  // sizeof(Elf64_Rel)
    /// The largest `.bss`-like section bpfsim will allocate (a corrupt size must not exhaust memory).
    static let maxNoBitsSize: UInt64 = 1 << 28
}

struct ELFSection {
    let index: Int
    let name: String
    let type: UInt32
    let flags: UInt64
    let link: UInt32
    let info: UInt32
    let size: UInt64
    /// Where the section's header is in the file.
    let headerOffset: Int
    /// The section's bytes; zeros for `SHT_NOBITS`; empty for debug sections, which are not read.
    let data: [UInt8]

    var isExecutable: Bool { type == ELFConstant.sectionProgBits && flags & ELFConstant.flagExecutable != 0 }
}

struct ELFSymbol {
    let index: Int
    let name: String
    let value: UInt64
    let size: UInt64
    let type: UInt8
    let binding: UInt8
    let sectionIndex: UInt16
}

struct ELFRelocation {
    /// Byte offset in the section the relocation patches.
    let offset: UInt64
    let symbol: Int
    let type: UInt32
    /// Byte offset of this entry in its relocation section.
    let entryOffset: Int
}

/// A relocatable ELF object, read through libelf into plain values.
struct ELFFile {
    let path: String
    let byteCount: Int
    let sections: [ELFSection]
    let symbols: [ELFSymbol]
    /// The `SHT_SYMTAB` section's name, for error locations.
    let symbolTableName: String
    /// Relocation entries by the index of their `SHT_REL` section.
    let relocations: [Int: [ELFRelocation]]

    /// libelf wants its version declared once per process before any other call.
    private static let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

    init(bytes: [UInt8], path: String) throws(LoaderError) {
        self.path = path
        self.byteCount = bytes.count
        // The identity checks come first, so the common mistakes get precise messages.
        let magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else {
            if bytes.count < 4 && bytes == Array(magic.prefix(bytes.count)) && !bytes.isEmpty {
                throw .truncated(path, offset: 0, needed: 64, available: bytes.count)
            }
            throw .notELF(path)
        }
        guard bytes.count >= 64 else { throw .truncated(path, offset: 0, needed: 64, available: bytes.count) }
        guard bytes[4] == ELFConstant.classELF64 else { throw .wrongClass(path, value: bytes[4]) }
        guard bytes[5] == ELFConstant.dataLittleEndian else { throw .wrongEndianness(path, value: bytes[5]) }
        guard Self.libelfReady else { throw .malformedELF(path, detail: "libelf could not be initialised") }

        // libelf reads from this copy; it must stay alive (and unmoved) until elf_end.
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        defer { image.deallocate() }
        image.copyBytes(from: bytes)
        guard let elf = elf_memory(image.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count) else {
            throw .malformedELF(path, detail: Self.lastError())
        }
        defer { elf_end(elf) }
        let reader = Reader(elf: elf, path: path, byteCount: bytes.count)
        let header = try reader.header()
        guard header.e_machine == ELFConstant.machineBPF else { throw .wrongMachine(path, machine: header.e_machine) }
        guard header.e_type == ELFConstant.typeRelocatable else {
            throw .notRelocatable(path, type: header.e_type)
        }
        let sections = try reader.sections(header: header)
        self.sections = sections
        guard let symbolTable = sections.first(where: { $0.type == ELFConstant.sectionSymbolTable }) else {
            throw .noSymbolTable(path)
        }
        symbolTableName = symbolTable.name
        symbols = try reader.symbols(in: symbolTable, sectionCount: sections.count)
        var relocations: [Int: [ELFRelocation]] = [:]
        for section in sections where section.type == ELFConstant.sectionRel {
            relocations[section.index] = try reader.relocations(in: section)
        }
        self.relocations = relocations
    }

    static func lastError() -> String {
        guard let message = elf_errmsg(-1) else { return "unknown libelf error" }
        return String(cString: message)
    }

    /// The section at `index`, or an error naming the field that held the index.
    func section(_ index: Int, field: String, in location: String?, offset: Int?) throws(LoaderError) -> ELFSection {
        guard index > 0 && index < sections.count else {
            throw .badSectionIndex(
                path, section: location, offset: offset, index: index, field: field, count: sections.count)
        }
        return sections[index]
    }
}

/// The libelf calls, on an open handle. Every pointer it touches stays inside.
private struct Reader {
    let elf: OpaquePointer
    let path: String
    let byteCount: Int

    func header() throws(LoaderError) -> GElf_Ehdr {
        var header = GElf_Ehdr()
        guard gelf_getehdr(elf, &header) != nil else { throw .malformedELF(path, detail: ELFFile.lastError()) }
        return header
    }

    func sections(header: GElf_Ehdr) throws(LoaderError) -> [ELFSection] {
        // libelf quietly reports no sections when their table runs past the end; say so.
        let headerTable = Int(clamping: header.e_shoff)
        let declared = UInt64(header.e_shnum) * UInt64(ELFConstant.sectionHeaderSize)
        guard header.e_shoff <= UInt64(byteCount), declared <= UInt64(byteCount) - header.e_shoff else {
            throw .truncated(
                path, offset: headerTable, needed: Int(declared), available: max(0, byteCount - headerTable))
        }
        var count = 0
        guard elf_getshdrnum(elf, &count) == 0 else { throw .malformedELF(path, detail: ELFFile.lastError()) }
        var namesIndex = 0
        guard elf_getshdrstrndx(elf, &namesIndex) == 0 else {
            throw .malformedELF(path, offset: 62, detail: "e_shstrndx: " + ELFFile.lastError())
        }
        guard namesIndex < count else {
            throw .badSectionIndex(path, section: nil, offset: 62, index: namesIndex, field: "e_shstrndx", count: count)
        }
        let tableEnd = UInt64(header.e_shoff) + UInt64(count) * UInt64(ELFConstant.sectionHeaderSize)
        guard tableEnd <= UInt64(byteCount) else {
            throw .truncated(
                path, offset: headerTable, needed: Int(clamping: tableEnd - UInt64(header.e_shoff)),
                available: max(0, byteCount - headerTable))
        }
        var sections: [ELFSection] = []
        sections.reserveCapacity(count)
        for index in 0..<count {
            let headerOffset = headerTable + index * ELFConstant.sectionHeaderSize
            guard let scn = elf_getscn(elf, index) else {
                throw .malformedELF(path, offset: headerOffset, detail: "section \(index): " + ELFFile.lastError())
            }
            var shdr = GElf_Shdr()
            guard gelf_getshdr(scn, &shdr) != nil else {
                throw .malformedELF(path, offset: headerOffset, detail: "section \(index): " + ELFFile.lastError())
            }
            var name = ""
            if index != 0 {
                guard let text = elf_strptr(elf, namesIndex, Int(shdr.sh_name)) else {
                    throw .malformedELF(
                        path, offset: headerOffset,
                        detail: "section \(index)'s name offset \(shdr.sh_name) is outside the section name table")
                }
                name = String(cString: text)
            }
            let data = try contents(of: scn, shdr, name: name, headerOffset: headerOffset, index: index)
            sections.append(
                ELFSection(
                    index: index, name: name, type: shdr.sh_type, flags: shdr.sh_flags, link: shdr.sh_link,
                    info: shdr.sh_info, size: shdr.sh_size, headerOffset: headerOffset, data: data))
        }
        return sections
    }

    func contents(of scn: OpaquePointer, _ shdr: GElf_Shdr, name: String, headerOffset: Int, index: Int)
        throws(LoaderError) -> [UInt8]
    {
        if index == 0 || name.hasPrefix(".debug") || name.hasPrefix(".rel.debug") { return [] }
        if shdr.sh_type == ELFConstant.sectionNoBits {
            guard shdr.sh_size <= ELFConstant.maxNoBitsSize else {
                throw .malformedELF(
                    path, section: name,
                    detail: "a zero-filled section of \(shdr.sh_size) bytes is too large to emulate")
            }
            return [UInt8](repeating: 0, count: Int(shdr.sh_size))
        }
        let (end, overflow) = shdr.sh_offset.addingReportingOverflow(shdr.sh_size)
        guard !overflow && end <= UInt64(byteCount) else {
            throw .sectionOutOfFile(
                path, section: name, headerOffset: headerOffset, start: shdr.sh_offset, size: shdr.sh_size,
                fileSize: byteCount)
        }
        if shdr.sh_size == 0 { return [] }
        guard let data = elf_getdata(scn, nil) else {
            throw .malformedELF(path, section: name, detail: ELFFile.lastError())
        }
        guard let base = data.pointee.d_buf, data.pointee.d_size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: data.pointee.d_size))
    }

    func symbols(in table: ELFSection, sectionCount: Int) throws(LoaderError) -> [ELFSymbol] {
        guard table.link > 0 && Int(table.link) < sectionCount else {
            throw .badSectionIndex(
                path, section: table.name, offset: nil, index: Int(table.link), field: "sh_link (its string table)",
                count: sectionCount)
        }
        guard let scn = elf_getscn(elf, table.index), let data = elf_getdata(scn, nil) else {
            throw .malformedELF(path, section: table.name, detail: ELFFile.lastError())
        }
        let count = data.pointee.d_size / ELFConstant.symbolSize
        var symbols: [ELFSymbol] = []
        symbols.reserveCapacity(count)
        for index in 0..<count {
            var symbol = GElf_Sym()
            guard gelf_getsym(data, Int32(index), &symbol) != nil else {
                throw .malformedELF(
                    path, section: table.name, offset: index * ELFConstant.symbolSize, detail: ELFFile.lastError())
            }
            var name = ""
            if symbol.st_name != 0 {
                guard let text = elf_strptr(elf, Int(table.link), Int(symbol.st_name)) else {
                    throw .malformedELF(
                        path, section: table.name, offset: index * ELFConstant.symbolSize,
                        detail: "symbol \(index)'s name offset \(symbol.st_name) is outside the string table")
                }
                name = String(cString: text)
            }
            symbols.append(
                ELFSymbol(
                    index: index, name: name, value: symbol.st_value, size: symbol.st_size,
                    type: symbol.st_info & 0xf, binding: symbol.st_info >> 4, sectionIndex: symbol.st_shndx))
        }
        return symbols
    }

    func relocations(in section: ELFSection) throws(LoaderError) -> [ELFRelocation] {
        guard let scn = elf_getscn(elf, section.index) else {
            throw .malformedELF(path, section: section.name, detail: ELFFile.lastError())
        }
        guard section.size > 0 else { return [] }
        guard let data = elf_getdata(scn, nil) else {
            throw .malformedELF(path, section: section.name, detail: ELFFile.lastError())
        }
        let count = data.pointee.d_size / ELFConstant.relocationSize
        var entries: [ELFRelocation] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            var relocation = GElf_Rel()
            guard gelf_getrel(data, Int32(index), &relocation) != nil else {
                throw .malformedELF(
                    path, section: section.name, offset: index * ELFConstant.relocationSize,
                    detail: ELFFile.lastError())
            }
            entries.append(
                ELFRelocation(
                    offset: relocation.r_offset, symbol: Int(relocation.r_info >> 32),
                    type: UInt32(truncatingIfNeeded: relocation.r_info),
                    entryOffset: index * ELFConstant.relocationSize))
        }
        return entries
    }
}
