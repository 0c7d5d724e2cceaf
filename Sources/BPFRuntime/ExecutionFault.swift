import BPFCore

/// Why a run of guest code stopped early. A fault is a value, not a crash: the run ends,
/// the fault names the instruction, and nothing done before it (map updates, printk
/// lines, earlier packets) is lost.
public struct ExecutionFault: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// A load, store or atomic outside every region the program may touch.
        case outOfBounds(address: UInt64, size: Int, write: Bool, where: String)
        /// The instruction budget ran out: the program does not end, or runs too long.
        case budgetExhausted(budget: UInt64)
        /// More nested bpf-to-bpf calls than the kernel allows (8 frames).
        case callDepthExceeded(limit: Int)
        /// `call N` with an id no helper in this run has.
        case unknownHelper(id: Int64, name: String?)
        /// A helper refused its arguments or could not do its work.
        case helper(name: String, message: String)
        /// `callx` to a value that is neither a helper id nor a function address.
        case badCallTarget(value: UInt64)
        /// Execution reached the end of the program without `exit`.
        case fellOffEnd
        /// A kfunc call (`call runtime N`): kernel functions are not emulated.
        case unsupported(String)
        /// More tail calls in one run than the kernel allows (33).
        case tailCallLimit(limit: Int)
    }

    public let kind: Kind
    /// The instruction index (slot) that faulted.
    public let pc: Int
    /// The instruction's assembly text, filled in by `describing(program:)`.
    public var instruction: String?
    /// `file.c:LINE`, when the program carries line info.
    public var sourceLine: String?

    public init(_ kind: Kind, pc: Int, instruction: String? = nil) {
        self.kind = kind
        self.pc = pc
        self.instruction = instruction
    }

    /// A stable identifier for `--json`.
    public var code: String {
        switch kind {
        case .outOfBounds: "out_of_bounds"
        case .budgetExhausted: "budget_exhausted"
        case .callDepthExceeded: "call_depth"
        case .unknownHelper: "unknown_helper"
        case .helper: "helper_error"
        case .badCallTarget: "bad_call_target"
        case .fellOffEnd: "fell_off_end"
        case .unsupported: "unsupported"
        case .tailCallLimit: "tail_call_limit"
        }
    }

    /// The sentence without the location.
    public var message: String {
        switch kind {
        case let .outOfBounds(address, size, write, place):
            "out-of-bounds \(write ? "write" : "read") of \(size) byte\(size == 1 ? "" : "s") at 0x\(String(address, radix: 16)): \(place)"
        case .budgetExhausted(let budget):
            "instruction budget of \(budget) exhausted (the program may never end; raise it with --budget)"
        case .callDepthExceeded(let limit):
            "call depth exceeds \(limit) frames"
        case let .unknownHelper(id, name):
            if let name { "helper \(id) (\(name)) is not emulated" } else { "unknown helper \(id)" }
        case let .helper(name, message):
            "\(name): \(message)"
        case .badCallTarget(let value):
            "callx to 0x\(String(value, radix: 16)), which is neither a helper id nor a function"
        case .fellOffEnd:
            "execution ran past the last instruction without exit"
        case .unsupported(let what):
            "\(what) is not supported"
        case .tailCallLimit(let limit):
            "more than \(limit) tail calls in one run"
        }
    }

    public var description: String {
        var text = "instruction \(pc)"
        if let instruction { text += " (\(instruction))" }
        if let sourceLine { text += " at \(sourceLine)" }
        return text + ": " + message
    }

    /// The same fault, with the instruction's text filled in from `program`.
    public func describing(_ program: Program) -> ExecutionFault {
        var copy = self
        if pc >= 0 && pc < program.count {
            let line = Disassembler.lines(Array(program.instructions[pc..<min(pc + 2, program.count)])).first
            copy.instruction = line?.text
        }
        return copy
    }
}
