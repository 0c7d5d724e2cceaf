import BPFCore
import BPFRuntime
import Foundation

/// A clang-compiled BPF object file (`clang -target bpf -c`), read the way libbpf reads
/// it: its programs, fully relocated and ready for `Program(instructions:)`, its maps
/// (BTF-defined, legacy and global data), its license and its BTF.
///
/// Map references in the instructions use the kernel's fd-array forms: `lddw` with
/// `BPF_PSEUDO_MAP_IDX` (5) and `imm` = an index into `maps`, or
/// `BPF_PSEUDO_MAP_IDX_VALUE` (6) with the offset into the value in the second slot.
public struct BPFObject: Sendable {
    /// The path the object was read from (or the name it was given).
    public let path: String
    /// The `license` section, without its terminating NUL.
    public let license: String?
    /// The `version` section (a `LINUX_VERSION_CODE`), when present.
    public let kernelVersion: UInt32?
    /// Every program, in section order then by offset, as libbpf lists them.
    public let programs: [ObjectProgram]
    /// Every map: legacy `maps` first, then BTF-defined `.maps`, then global data sections.
    public let maps: [MapSpec]
    public let btf: BTF?

    /// Reads and loads the object at `path`.
    public init(path: String) throws(LoaderError) {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw .unreadable(path, reason: (error as NSError).localizedDescription)
        }
        try self.init(bytes: bytes, path: path)
    }

    /// Loads an object from its bytes; `path` names it in errors.
    public init(bytes: [UInt8], path: String) throws(LoaderError) {
        let elf = try ELFFile(bytes: bytes, path: path)
        var loader = ObjectLoader(elf: elf)
        let loaded = try loader.load()
        self.path = path
        self.license = loaded.license
        self.kernelVersion = loaded.kernelVersion
        self.programs = loaded.programs
        self.maps = loaded.maps
        self.btf = loaded.btf
    }

    /// The program whose function is called `name`.
    public func program(named name: String) throws(LoaderError) -> ObjectProgram {
        guard let program = programs.first(where: { $0.name == name }) else {
            throw .noSuchProgram(path, name: name, available: programs.map(\.name))
        }
        return program
    }

    /// The index in `maps` of the map called `name`.
    public func mapIndex(named name: String) -> Int? {
        maps.firstIndex { $0.name == name }
    }

    /// True when `bytes` start with the ELF magic (7f 45 4c 46).
    public static func isELF(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46])
    }
}

/// One program of an object: an entry function and every subprogram it calls, appended
/// after it as libbpf does, with map and call references relocated.
public struct ObjectProgram: Sendable, Hashable {
    /// The entry function's name, which is how programs are selected.
    public let name: String
    /// The ELF section it came from (`xdp`, `tracepoint/syscalls/sys_enter_openat`).
    public let section: String
    /// The program type libbpf derives from the section name; `.unspec` when libbpf
    /// knows no such section (global functions in `.text`, for instance).
    public let type: ProgramType
    /// libbpf's expected attach type (`enum bpf_attach_type`, see `AttachType`).
    public let expectedAttachType: UInt32
    /// What the section names after its prefix: `syscalls/sys_enter_openat` for a
    /// tracepoint, the function for a kprobe or fentry; nil when the section has none.
    public let attachTarget: String?
    /// The `.s` section forms (sleepable programs).
    public let sleepable: Bool
    /// The relocated instructions: the entry function, then each subprogram it reaches.
    public let instructions: [Instruction]
    /// Where each function starts in `instructions` (the entry function first, at 0).
    public let functions: [ProgramFunction]
    /// BTF function info, with indices into `instructions`; empty without `.BTF.ext`.
    public let functionInfo: [FunctionInfo]
    /// BTF line info, sorted by instruction index; empty without `.BTF.ext`.
    public let lineInfo: [LineInfo]

    /// The source line of instruction `index`: the last line-info record at or before it
    /// in the same function.
    public func line(at index: Int) -> LineInfo? {
        guard index >= 0 && index < instructions.count else { return nil }
        let functionStart = functions.last { $0.start <= index }?.start ?? 0
        var low = 0
        var high = lineInfo.count - 1
        var found: LineInfo?
        while low <= high {
            let mid = (low + high) / 2
            if lineInfo[mid].instructionIndex <= index {
                found = lineInfo[mid]
                low = mid + 1
            } else {
                high = mid - 1
            }
        }
        guard let found, found.instructionIndex >= functionStart else { return nil }
        return found
    }

    /// Validates the instructions into a `Program`.
    public func validated(options: ValidationOptions = .init()) throws(ProgramError) -> Program {
        try Program(instructions: instructions, options: options)
    }
}

/// A function placed in a program's instruction list.
public struct ProgramFunction: Sendable, Hashable, Codable {
    public let name: String
    /// The index of its first instruction in the program.
    public let start: Int
    public let count: Int
}

/// `struct bpf_func_info`, with the instruction offset turned into an index of the program.
public struct FunctionInfo: Sendable, Hashable, Codable {
    public let instructionIndex: Int
    /// The `FUNC` type's id in the object's BTF.
    public let btfTypeID: UInt32
    public let name: String
}

/// `struct bpf_line_info`, resolved: which C source line an instruction came from.
public struct LineInfo: Sendable, Hashable, Codable {
    public let instructionIndex: Int
    /// The file name as the compiler recorded it (often a path).
    public let file: String
    public let line: Int
    public let column: Int
    /// The text of the source line.
    public let source: String

    /// `file.c:LINE`, with the file's last path component.
    public var location: String {
        let name = file.split(separator: "/").last.map(String.init) ?? file
        return "\(name):\(line)"
    }
}
