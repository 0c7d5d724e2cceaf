/// Why an object file could not be loaded, and where.
///
/// The loader's one error type. Every message is built by one of the static factories in
/// this file, so the wording lives here only; `code` is a stable identifier for `--json`
/// and tests. The location names the file and, when known, the ELF section and a byte
/// offset: inside that section when a section is named, inside the file otherwise.
public struct LoaderError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The object file's path (or the name given with its bytes).
    public let file: String
    /// The ELF section the problem is in, when there is one.
    public let section: String?
    /// A byte offset: inside `section` when it is set, inside the file otherwise.
    public let offset: Int?
    /// A short stable identifier, such as `not_elf`.
    public let code: String
    /// The sentence for people, without the location.
    public let message: String

    private init(_ file: String, _ section: String?, _ offset: Int?, _ code: String, _ message: String) {
        self.file = file
        self.section = section
        self.offset = offset
        self.code = code
        self.message = message
    }

    /// `file: section 'name' offset 0x10: message`, leaving out what is unknown.
    public var description: String {
        var text = file
        if let section { text += ": section '\(section)'" }
        if let offset { text += (section == nil ? ": " : " ") + "offset 0x" + String(offset, radix: 16) }
        return text + ": " + message
    }
}

// MARK: - The file and its ELF structure

extension LoaderError {
    public static func unreadable(_ file: String, reason: String) -> LoaderError {
        .init(file, nil, nil, "unreadable", "cannot read the file: \(reason)")
    }

    public static func truncated(_ file: String, section: String? = nil, offset: Int, needed: Int, available: Int)
        -> LoaderError
    {
        .init(
            file, section, offset, "truncated",
            "the file is truncated: \(needed) bytes are needed here, \(available) are present")
    }

    public static func notELF(_ file: String) -> LoaderError {
        .init(file, nil, 0, "not_elf", "not an ELF file (the first bytes are not 7f 45 4c 46)")
    }

    public static func wrongClass(_ file: String, value: UInt8) -> LoaderError {
        .init(file, nil, 4, "wrong_class", "ELF class \(value) is not ELFCLASS64 (2); BPF objects are 64-bit")
    }

    public static func wrongEndianness(_ file: String, value: UInt8) -> LoaderError {
        .init(
            file, nil, 5, "wrong_endianness",
            "ELF data encoding \(value) is not little-endian (ELFDATA2LSB, 1); bpfsim emulates a little-endian machine")
    }

    public static func wrongMachine(_ file: String, machine: UInt16) -> LoaderError {
        .init(file, nil, 18, "wrong_machine", "e_machine is \(machine), not EM_BPF (247): this is not a BPF object")
    }

    public static func notRelocatable(_ file: String, type: UInt16) -> LoaderError {
        .init(file, nil, 16, "not_relocatable", "e_type is \(type), not ET_REL (1): expected an object from clang -c")
    }

    /// libelf refused the file; `detail` is its own message.
    public static func malformedELF(_ file: String, section: String? = nil, offset: Int? = nil, detail: String)
        -> LoaderError
    {
        .init(file, section, offset, "malformed_elf", "malformed ELF: \(detail)")
    }

    public static func badSectionIndex(
        _ file: String, section: String?, offset: Int?, index: Int, field: String, count: Int
    )
        -> LoaderError
    {
        .init(
            file, section, offset, "bad_section_index",
            "\(field) names section \(index), but the file has \(count) sections")
    }

    public static func sectionOutOfFile(
        _ file: String, section: String, headerOffset: Int, start: UInt64, size: UInt64,
        fileSize: Int
    ) -> LoaderError {
        .init(
            file, section, nil, "section_out_of_file",
            "the section's bytes (\(size) at file offset \(start)) run past the end of the file (\(fileSize) bytes); its header is at file offset \(headerOffset)"
        )
    }

    public static func noSymbolTable(_ file: String) -> LoaderError {
        .init(file, nil, nil, "no_symbol_table", "the object has no symbol table (.symtab)")
    }

    public static func badSymbolIndex(_ file: String, section: String, offset: Int, index: Int, count: Int)
        -> LoaderError
    {
        .init(
            file, section, offset, "bad_symbol_index",
            "the relocation names symbol \(index), but the symbol table has \(count) entries")
    }

    public static func badFunctionSymbol(_ file: String, section: String, offset: Int, name: String, detail: String)
        -> LoaderError
    {
        .init(file, section, offset, "bad_function_symbol", "function '\(name)': \(detail)")
    }

    public static func badInstructionSection(_ file: String, section: String, size: Int) -> LoaderError {
        .init(file, section, nil, "bad_code_section", "\(size) bytes is not a whole number of 8-byte instructions")
    }
}

// MARK: - Relocations

extension LoaderError {
    public static func badRelocationOffset(_ file: String, section: String, offset: Int, target: String, value: UInt64)
        -> LoaderError
    {
        .init(
            file, section, offset, "bad_relocation_offset",
            "the relocation patches byte \(value) of '\(target)', which is not an instruction there")
    }

    public static func unsupportedRelocation(
        _ file: String, section: String, offset: Int, type: UInt32,
        instruction: String
    ) -> LoaderError {
        .init(
            file, section, offset, "unsupported_relocation",
            "relocation type \(type) on \(instruction) is not one bpfsim handles (R_BPF_64_64 on lddw, R_BPF_64_32 on call)"
        )
    }

    public static func unresolvedSymbol(_ file: String, section: String, offset: Int, symbol: String, reason: String)
        -> LoaderError
    {
        .init(file, section, offset, "unresolved_symbol", "cannot resolve '\(symbol)': \(reason)")
    }

    public static func badCallTarget(_ file: String, section: String, offset: Int, detail: String) -> LoaderError {
        .init(file, section, offset, "bad_call_target", detail)
    }
}

// MARK: - Maps

extension LoaderError {
    public static func unknownMapType(_ file: String, section: String, offset: Int, map: String, type: UInt32)
        -> LoaderError
    {
        .init(
            file, section, offset, "unknown_map_type", "map '\(map)' has type \(type), which is not a kernel map type")
    }

    public static func badMapDefinition(_ file: String, section: String, offset: Int?, map: String, detail: String)
        -> LoaderError
    {
        .init(file, section, offset, "bad_map_definition", "map '\(map)': \(detail)")
    }

    public static func mapsWithoutBTF(_ file: String) -> LoaderError {
        .init(
            file, ".maps", nil, "maps_without_btf",
            "the object defines maps in '.maps' but has no BTF to describe them (compile with -g)")
    }

    public static func badMapInitialValue(_ file: String, section: String, offset: Int, map: String, detail: String)
        -> LoaderError
    {
        .init(file, section, offset, "bad_map_initial_value", "map '\(map)': \(detail)")
    }
}

// MARK: - BTF

extension LoaderError {
    public static func malformedBTF(_ file: String, section: String, offset: Int, detail: String) -> LoaderError {
        .init(file, section, offset, "malformed_btf", detail)
    }
}

// MARK: - Programs

extension LoaderError {
    public static func noSuchProgram(_ file: String, name: String, available: [String]) -> LoaderError {
        .init(
            file, nil, nil, "no_such_program",
            "no program named '\(name)' (the object has: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
        )
    }
}
