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
        throws(SessionError) -> Outcome
    {
        func on(_ engine: Engine) throws(SessionError) -> FlatRunResult {
            var configuration = configuration
            configuration.engine = engine
            return try FlatRunner.run(program, memory: memory, configuration: configuration)
        }
        let interpreter = try on(.interpreter)
        let jit = try on(.jit)
        return Outcome(interpreter: interpreter, jit: jit, divergence: compare(interpreter, jit))
    }

    /// The first difference between two flat results, or nil.
    public static func compare(_ a: FlatRunResult, _ b: FlatRunResult) -> Divergence? {
        compare(
            Observation(execution: a.execution, data: a.memoryAfter, printk: a.printk, fallback: a.fallback),
            Observation(execution: b.execution, data: b.memoryAfter, printk: b.printk, fallback: b.fallback))
    }

    /// The first difference between the same run on two sessions (one per engine): the
    /// run's results, then every map.
    public static func compare(_ a: ProgramRun, in first: Session, _ b: ProgramRun, in second: Session) -> Divergence? {
        func observe(_ run: ProgramRun, _ session: Session) -> Observation {
            Observation(
                execution: run.execution, data: run.dataOut ?? [], printk: run.printk, fallback: run.fallback,
                events: run.events, redirect: run.redirect, maps: MapDump.all(session.machine, btf: session.btf))
        }
        return compare(observe(a, first), observe(b, second))
    }

    /// Everything a run can be compared on.
    struct Observation {
        var execution: ExecutionResult
        var data: [UInt8]
        var printk: [String]
        var fallback: String?
        var events: [EventRecord] = []
        var redirect: RedirectTarget? = nil
        var maps: [String: MapDump] = [:]
    }

    static func compare(_ a: Observation, _ b: Observation) -> Divergence? {
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
        if a.data != b.data {
            let index =
                zip(a.data, b.data).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(a.data.count, b.data.count)
            func byte(_ bytes: [UInt8]) -> String {
                index < bytes.count ? "0x" + String(bytes[index], radix: 16) : "none"
            }
            return Divergence(what: "memory byte \(index)", pc: nil, interpreter: byte(a.data), jit: byte(b.data))
        }
        if a.printk != b.printk {
            return Divergence(what: "printk", pc: nil, interpreter: a.printk.description, jit: b.printk.description)
        }
        if a.events != b.events {
            return Divergence(
                what: "events", pc: nil, interpreter: "\(a.events.count) records", jit: "\(b.events.count) records")
        }
        if a.redirect != b.redirect {
            return Divergence(
                what: "redirect", pc: nil, interpreter: String(describing: a.redirect),
                jit: String(describing: b.redirect))
        }
        for name in Set(a.maps.keys).union(b.maps.keys).sorted() where a.maps[name] != b.maps[name] {
            let entriesA = Set(a.maps[name]?.entries ?? [])
            let entriesB = Set(b.maps[name]?.entries ?? [])
            let onlyA = entriesA.subtracting(entriesB).first
            let onlyB = entriesB.subtracting(entriesA).first
            func show(_ entry: MapDump.Entry?) -> String {
                guard let entry else { return "nothing" }
                switch entry.value {
                case .single(let value): return "\(entry.key) = \(value)"
                case .perCPU(let values): return "\(entry.key) = \(values.joined(separator: " "))"
                }
            }
            if onlyA == nil && onlyB == nil { continue }  // same entries in another order
            return Divergence(what: "map \(name)", pc: nil, interpreter: show(onlyA), jit: show(onlyB))
        }
        if let countA = a.execution.instructionCount, let countB = b.execution.instructionCount, countA != countB {
            return Divergence(what: "instruction count", pc: nil, interpreter: "\(countA)", jit: "\(countB)")
        }
        return nil
    }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
