/// Where BPF state lives while JIT code runs. See docs/jit.md for the whole picture.

/// The register map: BPF r0-r9 live in x86 registers for the whole run. r10 has no
/// register of its own: BPF code may never write it, so its value is always the guest
/// frame pointer, which the JIT derives from the host frame pointer in rbp.
enum RegisterMap {
    /// Indexed by BPF register number.
    static let bpf: [X86Register] = [
        .rax,  // r0: return value. Also the SysV return register and what cmpxchg compares with.
        .rdi,  // r1: first argument, as in SysV.
        .rsi,  // r2: second argument, as in SysV.
        .rdx,  // r3: third argument, as in SysV (div/idiv clobber it: saved around them).
        .r9,  // r4: not rcx, which stays free for shift counts.
        .r8,  // r5: fifth argument, as in SysV.
        .rbx,  // r6: callee-saved in SysV, like r6-r9 in BPF, so helpers keep it for free.
        .r13,  // r7: callee-saved.
        .r14,  // r8: callee-saved.
        .r15,  // r9: callee-saved.
    ]
    /// The host address of the current frame's end (the host twin of r10). Callee-saved.
    static let hostFrame: X86Register = .rbp
    /// The region table (`machine.memory.table`). Callee-saved; reloaded after every call
    /// into Swift, in case a helper grew the table.
    static let regionTable: X86Register = .r12
    /// Instructions the run may still execute (the budget). Caller-saved: spilled around
    /// calls into Swift.
    static let budget: X86Register = .r10
    /// Scratch: region numbers, shift counts, the guest address on slow paths.
    static let scratch: X86Register = .rcx
    /// Scratch: the host address being accessed, divisors, values for slow paths.
    static let scratch2: X86Register = .r11

    /// BPF registers SysV does not preserve across a call: spilled and reloaded around
    /// calls into Swift.
    static let callerSaved: [Int] = [0, 1, 2, 3, 4, 5]
    /// BPF registers SysV preserves.
    static let calleeSaved: [Int] = [6, 7, 8, 9]
}

/// The JIT context: one page of data just before the code, read and written by the code
/// with RIP-relative operands (so no register is spent on it) and by Swift through a
/// pointer. It is never executable; the code after it is never writable.
enum ContextLayout {
    /// r0-r10 as Swift sees them during a call into Swift (8 bytes each).
    static let registers = 0
    /// The host frame pointer (rbp) at the last call into Swift.
    static let hostFrame = 88
    /// Instructions left in the budget (r10 while the code runs).
    static let budget = 96
    /// `may_goto`'s remaining allowance for this run.
    static let mayGoto = 104
    /// rsp right after the entry sequence's pushes: faults unwind to it.
    static let entryRSP = 112
    /// `machine.memory.table` and its capacity.
    static let table = 120
    static let capacity = 128
    /// The host address of the stack region's offset 0.
    static let hostStack = 136
    /// guest r10 - host frame pointer, the same for every frame (wrapping arithmetic).
    static let guestBias = 144
    /// The deepest host frame pointer from which a call may still go one frame deeper.
    static let frameCeiling = 152
    /// The deepest host frame pointer the run reached, so the next run clears those frames.
    static let deepest = 160
    /// 0 while running, `Status.fault` or `Status.aborted` once the code must stop.
    static let status = 168
    /// The instruction index a slow path or fault is for (32 bits), and a fault code (32 bits).
    static let slowPC = 176
    static let faultCode = 180
    /// The guest address of a slow memory access (also: a callx target, an LD_ABS offset).
    static let slowAddress = 184
    /// A value for the slow path: the value to store, a helper id for callx.
    static let slowValue = 192
    /// `Unmanaged<JIT>` of the engine running the code.
    static let owner = 200
    /// Entry points of the Swift slow paths, as C function pointers.
    static let memoryFunction = 208
    static let helperFunction = 216
    static let raiseFunction = 224
    /// The code address a successful `bpf_tail_call` continues at, set by the helper slow
    /// path and cleared by the helper thunk as it jumps there; 0 otherwise.
    static let tailTarget = 232
    static let size = 240

    enum Status {
        static let running: UInt64 = 0
        static let fault: UInt64 = 1
        /// An LD_ABS/LD_IND load outside the packet: the program ends with r0 = 0.
        static let aborted: UInt64 = 2
    }
}

/// Why generated code called the raise path (`ContextLayout.faultCode`).
enum RaiseCode: Int32 {
    case budget = 1
    case callDepth = 2
    case badCallTarget = 3
    case fellOffEnd = 4
    case kfunc = 5
}
