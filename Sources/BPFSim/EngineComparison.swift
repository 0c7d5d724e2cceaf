/// Runs a program on the interpreter and on the JIT, each with its own machine, and
/// reports the first way their results differ: the fault, r0, the memory after the run,
/// the printk lines, then the instruction count.
///
/// A budget fault is compared by kind only: the engines count the budget at different
/// granularity (docs/jit.md), so where exactly each stops, and what it wrote before,
/// may differ.
public enum EngineComparison {
    public struct Outcome: Sendable {
        public var interpreter: FlatRunResult
        public var jit: FlatRunResult
        /// nil when the engines agree.
        public var divergence: Divergence?
    }

    public struct Divergence: Sendable, Hashable, CustomStringConvertible {
        /// What differs: `fault`, `r0`, `memory`, `printk` or `instruction count`.
        public var what: String
        /// The instruction it concerns, when one is known (a fault's).
        public var pc: Int?
        public var interpreter: String
        public var jit: String

        public var description: String {
            var text = what
            if let pc { text += " at instruction \(pc)" }
            return text + ": interpreter \(interpreter), jit \(jit)"
        }
    }

    public static func run(_ program: Program, memory: [UInt8]?, configuration: RunConfiguration = .init())
        throws(ProgramError) -> Outcome
    {
        func onMachine(_ engine: Engine) throws(ProgramError) -> FlatRunResult {
            let machine = Machine(world: configuration.world, limits: configuration.limits)
            return try FlatRunner.run(program, memory: memory, machine: machine, engine: engine)
        }
        let interpreter = try onMachine(.interpreter)
        let jit = try onMachine(.jit)
        return Outcome(interpreter: interpreter, jit: jit, divergence: compare(interpreter, jit))
    }

    /// The first difference between two results, or nil.
    public static func compare(_ a: FlatRunResult, _ b: FlatRunResult) -> Divergence? {
        if let fallback = b.fallback {
            return Divergence(what: "engine", pc: nil, interpreter: "ran", jit: fallback)
        }
        let faultA = a.execution.fault
        let faultB = b.execution.fault
        if case .budgetExhausted = faultA?.kind, case .budgetExhausted = faultB?.kind { return nil }
        if faultA != faultB {
            return Divergence(
                what: "fault", pc: faultA?.pc ?? faultB?.pc, interpreter: faultA?.description ?? "no fault",
                jit: faultB?.description ?? "no fault")
        }
        if a.execution.returnValue != b.execution.returnValue {
            return Divergence(
                what: "r0", pc: nil, interpreter: hex(a.execution.returnValue), jit: hex(b.execution.returnValue))
        }
        if a.memoryAfter != b.memoryAfter {
            let index =
                zip(a.memoryAfter, b.memoryAfter).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(a.memoryAfter.count, b.memoryAfter.count)
            func byte(_ bytes: [UInt8]) -> String {
                index < bytes.count ? "0x" + String(bytes[index], radix: 16) : "none"
            }
            return Divergence(
                what: "memory byte \(index)", pc: nil, interpreter: byte(a.memoryAfter), jit: byte(b.memoryAfter))
        }
        if a.printk != b.printk {
            return Divergence(
                what: "printk", pc: nil, interpreter: a.printk.description, jit: b.printk.description)
        }
        if let countA = a.execution.instructionCount, let countB = b.execution.instructionCount, countA != countB {
            return Divergence(what: "instruction count", pc: nil, interpreter: "\(countA)", jit: "\(countB)")
        }
        return nil
    }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
