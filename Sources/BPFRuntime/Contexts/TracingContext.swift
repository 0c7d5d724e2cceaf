/// The context of tracing programs: bytes the program may only read, with the bounds the
/// kernel's verifier enforces for each type (kernel/trace/bpf_trace.c):
///
/// | type | context | readable |
/// |---|---|---|
/// | tracepoint | the event's record, laid out as its tracefs `format` file says | offsets 8 up to 2048 (`PERF_MAX_TRACE_SIZE`): the 8-byte common header is not |
/// | raw_tracepoint | `struct bpf_raw_tracepoint_args { __u64 args[]; }` | offsets below 96 (12 arguments) |
/// | kprobe | x86-64 `struct pt_regs`, 168 bytes | all of it |
///
/// Every access must be aligned to its size (`off % size == 0`), and none may write. The
/// kernel checks a tracepoint program's furthest read against the event's size when it
/// attaches the program; bpfsim faults when a read passes the end of the record it was
/// given.
///
/// Some tracepoints hand their program a pointer (`raw_syscalls` raw tracepoints pass
/// `struct pt_regs *`): such memory is placed in a read-only region of its own, which
/// the program reads with `bpf_probe_read_kernel`, as in the kernel.
public final class TracingContext: ContextAccessor {
    public enum Kind: String, Sendable, CaseIterable {
        case tracepoint
        case rawTracepoint = "raw_tracepoint"
        case kprobe

        public init?(_ type: ProgramType) {
            switch type {
            case .tracepoint: self = .tracepoint
            case .rawTracepoint, .rawTracepointWritable: self = .rawTracepoint
            case .kprobe: self = .kprobe
            default: return nil
            }
        }

        /// The first and one-past-last offsets a program of this type may read.
        var readable: Range<Int> {
            switch self {
            case .tracepoint: 8..<2048
            case .rawTracepoint: 0..<96
            case .kprobe: 0..<PtRegs.size
            }
        }

        var structName: String {
            switch self {
            case .tracepoint: "the tracepoint record"
            case .rawTracepoint: "struct bpf_raw_tracepoint_args"
            case .kprobe: "struct pt_regs"
            }
        }
    }

    public let kind: Kind
    public private(set) var bytes: [UInt8] = []
    /// Kernel memory the context points into, mapped read-only in `kernelRegion`.
    private var kernelMemory: UnsafeMutableRawPointer?
    private var kernelMemorySize = 0
    private var kernelRegion: UInt32?

    public init(kind: Kind) {
        self.kind = kind
    }

    deinit { kernelMemory?.deallocate() }

    /// The guest address of the context, what r1 holds at entry.
    public static var contextAddress: UInt64 { AddressSpace.address(region: AddressSpace.Well.context.rawValue) }

    /// Sets the context's bytes and maps the context region.
    public func load(_ bytes: [UInt8], into machine: Machine) {
        self.bytes = bytes
        machine.memory.map(
            AddressSpace.Well.context.rawValue, name: "the context (\(kind.structName))", kind: .context, base: nil,
            size: bytes.count, writable: false)
        machine.legacyNegativeOffsetLoad = nil
        machine.legacyDataOffset = 0
        machine.setInput([])
    }

    /// Places `memory` where the program can read it (not write it) and returns its
    /// guest address: what a context field that is a kernel pointer holds.
    public func placeKernelMemory(_ memory: [UInt8], in machine: Machine) -> UInt64 {
        let region = kernelRegion ?? machine.memory.allocateRegion()
        kernelRegion = region
        if memory.count > kernelMemorySize {
            kernelMemory?.deallocate()
            kernelMemorySize = max(memory.count, 64)
            kernelMemory = .allocate(byteCount: kernelMemorySize, alignment: 16)
        }
        memory.withUnsafeBytes {
            if let base = $0.baseAddress { kernelMemory!.copyMemory(from: base, byteCount: memory.count) }
        }
        machine.memory.map(
            region, name: "kernel memory the context points to", kind: .memory, base: kernelMemory,
            size: memory.count, writable: false)
        return AddressSpace.address(region: region)
    }

    public func load(offset: UInt32, size: Int, machine: Machine) -> UInt64? {
        let offset = Int(offset)
        guard kind.readable.contains(offset), offset % size == 0, offset + size <= bytes.count else { return nil }
        var value: UInt64 = 0
        for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
        return value
    }

    /// Tracing contexts are read-only.
    public func store(offset: UInt32, size: Int, value: UInt64, machine: Machine) -> Bool { false }

    public func explainRefusal(offset: UInt32, size: Int, write: Bool) -> String? {
        let offset = Int(offset)
        if write { return "\(kind.structName) at offset \(offset): \(kind.rawValue) contexts are read-only" }
        if !kind.readable.contains(offset) {
            return kind == .tracepoint && offset < 8
                ? "the tracepoint record's common header (offset \(offset)): programs may not read it"
                : "\(kind.structName) at offset \(offset): beyond what a \(kind.rawValue) program may read"
        }
        if offset % size != 0 { return "\(kind.structName) at offset \(offset): a \(size)-byte read must be aligned" }
        return
            "\(kind.structName) at offset \(offset): past the end of the \(bytes.count) bytes given (the kernel would refuse to attach a program that reads there)"
    }
}

/// x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), 168 bytes: what a kprobe
/// program's context is, and what `raw_syscalls` raw tracepoints point to. A kprobe on a
/// function sees its arguments in di, si, dx, cx, r8, r9 (`PT_REGS_PARM1..6`); a
/// kretprobe sees the return value in ax. A system call's arguments are in di, si, dx,
/// r10, r8, r9, its number in orig_ax.
public struct PtRegs: Sendable, Hashable {
    public static let size = 168
    /// Register names in layout order, 8 bytes each.
    public static let names = [
        "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax", "ip",
        "cs", "flags", "sp", "ss",
    ]

    public var values: [UInt64]

    public init() { values = Array(repeating: 0, count: Self.names.count) }

    public subscript(name: String) -> UInt64 {
        get { Self.names.firstIndex(of: name).map { values[$0] } ?? 0 }
        set {
            guard let index = Self.names.firstIndex(of: name) else { preconditionFailure("no register \(name)") }
            values[index] = newValue
        }
    }

    /// The registers a kprobe sees on entry to a function called with `arguments`.
    public static func functionEntry(arguments: [UInt64]) -> PtRegs {
        var regs = PtRegs()
        for (name, value) in zip(["di", "si", "dx", "cx", "r8", "r9"], arguments) { regs[name] = value }
        return regs
    }

    /// The registers a kretprobe sees when the function returns `value`.
    public static func functionReturn(_ value: UInt64) -> PtRegs {
        var regs = PtRegs()
        regs["ax"] = value
        return regs
    }

    /// The registers on entry to system call `number`.
    public static func syscallEntry(number: Int32, arguments: [UInt64]) -> PtRegs {
        var regs = PtRegs()
        for (name, value) in zip(["di", "si", "dx", "r10", "r8", "r9"], arguments) { regs[name] = value }
        regs["orig_ax"] = UInt64(bitPattern: Int64(number))
        return regs
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        for value in values { out += littleEndian(value) }
        return out
    }
}

/// Tracepoint records, laid out as the tracefs `format` files of Linux 6.18 on x86-64
/// describe them: an 8-byte common header (`common_type` u16, `common_flags` u8,
/// `common_preempt_count` u8, `common_pid` s32), then the event's fields.
public enum TracepointRecord {
    /// The common header; `type` is the event's id in tracefs (it differs from kernel to
    /// kernel; programs may not read it).
    static func header(type: UInt16, pid: UInt32) -> [UInt8] {
        [UInt8(type & 0xff), UInt8(type >> 8), 0, 0] + littleEndian32(pid)
    }

    /// `syscalls/sys_enter_NAME`: `int __syscall_nr` at 8, then each argument as an
    /// 8-byte slot from 16.
    public static func syscallEnter(number: Int32, arguments: [UInt64], pid: UInt32 = 0, type: UInt16 = 0)
        -> [UInt8]
    {
        header(type: type, pid: pid) + littleEndian32(UInt32(bitPattern: number)) + [0, 0, 0, 0]
            + arguments.flatMap(littleEndian)
    }

    /// `syscalls/sys_exit_NAME`: `int __syscall_nr` at 8, `long ret` at 16.
    public static func syscallExit(number: Int32, returnValue: Int64, pid: UInt32 = 0, type: UInt16 = 0) -> [UInt8] {
        header(type: type, pid: pid) + littleEndian32(UInt32(bitPattern: number)) + [0, 0, 0, 0]
            + littleEndian(UInt64(bitPattern: returnValue))
    }

    /// `raw_syscalls/sys_enter`: `long id` at 8, `unsigned long args[6]` at 16.
    public static func rawSyscallEnter(number: Int64, arguments: [UInt64], pid: UInt32 = 0, type: UInt16 = 0)
        -> [UInt8]
    {
        let six = Array((arguments + Array(repeating: 0, count: 6)).prefix(6))
        return header(type: type, pid: pid) + littleEndian(UInt64(bitPattern: number)) + six.flatMap(littleEndian)
    }

    /// `raw_syscalls/sys_exit`: `long id` at 8, `long ret` at 16.
    public static func rawSyscallExit(number: Int64, returnValue: Int64, pid: UInt32 = 0, type: UInt16 = 0)
        -> [UInt8]
    {
        header(type: type, pid: pid) + littleEndian(UInt64(bitPattern: number))
            + littleEndian(UInt64(bitPattern: returnValue))
    }
}

func littleEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) } }
func littleEndian32(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> UInt32(8 * $0)) }
}
