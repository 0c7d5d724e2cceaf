import BPFKernel
import Foundation

/// Runs the same inputs through one program on several backends (bpfsim's engines, the
/// kernel) and reports the first way they differ: whether the run completed, the return
/// value, the packet after the run, ring buffer records, then every map, element by
/// element. Each backend keeps its maps from input to input, as a data path does, so a
/// sequence of packets is compared state by state.
///
/// The kernel reports a 32-bit return value (`BPF_PROG_TEST_RUN`'s `retval` is a u32),
/// so when the kernel is one side only the low 32 bits are compared. Instruction
/// counts, printk lines, perf events and redirect targets are not compared with the
/// kernel, which does not report them (docs/kernel.md); between bpfsim's engines they are.
public enum RunComparison {
    /// One backend's view of one input.
    public struct Result: Sendable {
        public var backend: Backend
        /// nil when the backend could not run the input (`error` says why).
        public var run: ProgramRun?
        public var error: String?
        /// Every map after the run, by name.
        public var maps: [String: MapDump]
    }

    /// The first difference found.
    public struct Divergence: Sendable, Hashable, CustomStringConvertible {
        /// Which input (0-based) of the list.
        public var input: Int
        /// What differs: `run`, `fault`, `retval`, `data_out`, `ring buffer records`, `printk`,
        /// `events`, `redirect`, or `map NAME key HEX`.
        public var field: String
        public var first: Backend
        public var firstValue: String
        public var second: Backend
        public var secondValue: String
        /// Why the field is compared as it is, when that matters (the kernel's 32-bit retval).
        public var note: String?

        public var description: String {
            "input \(input), \(field): \(first) \(firstValue), \(second) \(secondValue)"
                + (note.map { " (\($0))" } ?? "")
        }
    }

    public struct Outcome: Sendable {
        /// Per input, one result per backend, in the order asked for (up to and including
        /// the input that diverged).
        public var results: [[Result]]
        public var divergence: Divergence?
    }

    /// What runs: a program of an object (every backend, the kernel included), or
    /// programs and maps given directly, as for an assembly file (bpfsim's engines only).
    public enum Source: Sendable {
        case object(BPFObject, program: String)
        case programs([ProgramDefinition], maps: [MapSpec], index: Int)
    }

    /// Runs `inputs` in order through `program` of `object` on every backend. `state`,
    /// when given, is applied to each backend's maps before the first input (it receives
    /// bpfsim's machine; the kernel then copies that machine's elements). Throws when a
    /// backend cannot be set up (the kernel's `kernel_unavailable` where bpf() is refused).
    public static func run(
        object: BPFObject, program: String, inputs: [ProgramInput], backends: [Backend],
        configuration: RunConfiguration = .init(), state: ((Machine) throws -> Void)? = nil
    ) throws(SessionError) -> Outcome {
        try run(
            .object(object, program: program), inputs: inputs, backends: backends, configuration: configuration,
            state: state)
    }

    /// bpfsim's machine as it must be to be compared with the kernel's test runs: as many
    /// possible CPUs as the kernel has (per-CPU values and the LRU's per-CPU free lists are
    /// laid out per possible CPU), and no perf event reader (a test run attaches none, so
    /// `bpf_perf_event_output` returns -ENOENT there). Unchanged without the kernel.
    static func matchingTheKernel(_ configuration: RunConfiguration, backends: [Backend]) -> RunConfiguration {
        guard backends.contains(.kernel), KernelSession.unavailability == nil else { return configuration }
        var configuration = configuration
        configuration.world.cpuCount = max(configuration.world.cpuCount, KernelSession.possibleCPUs)
        configuration.world.perfEventReaders = false
        return configuration
    }

    /// Runs `inputs` in order through the program `source` names on every backend.
    public static func run(
        _ source: Source, inputs: [ProgramInput], backends: [Backend], configuration: RunConfiguration = .init(),
        state: ((Machine) throws -> Void)? = nil
    ) throws(SessionError) -> Outcome {
        let configuration = matchingTheKernel(configuration, backends: backends)
        var runners: [Runner] = []
        for backend in backends {
            runners.append(try Runner(backend: backend, source: source, configuration: configuration, state: state))
        }
        var outcome = Outcome(results: [], divergence: nil)
        for (number, input) in inputs.enumerated() {
            let results = runners.map { $0.run(input) }
            outcome.results.append(results)
            for other in results.dropFirst() {
                if let divergence = compare(results[0], other, input: number) {
                    outcome.divergence = divergence
                    return outcome
                }
            }
        }
        return outcome
    }

    /// Backends set up once and given inputs one at a time, for a stream too long to hold
    /// (a packet replay): each keeps its maps from input to input, and each input's
    /// results are compared as `run` compares them, then let go.
    public final class Stream {
        /// The backends, in the order asked for; the first is the reference.
        public let backends: [Backend]
        private let runners: [Runner]

        /// Sets up every backend (see `run(_:inputs:backends:configuration:state:)`).
        public init(
            _ source: Source, backends: [Backend], configuration: RunConfiguration = .init(),
            state: ((Machine) throws -> Void)? = nil
        ) throws(SessionError) {
            precondition(!backends.isEmpty, "a stream needs a backend")
            let configuration = RunComparison.matchingTheKernel(configuration, backends: backends)
            var runners: [Runner] = []
            for backend in backends {
                runners.append(try Runner(backend: backend, source: source, configuration: configuration, state: state))
            }
            self.backends = backends
            self.runners = runners
        }

        /// Runs one input on every backend, on CPU `cpu` with bpfsim's clock at `clock`
        /// when given, and compares the results; `number` names the input in a divergence.
        /// With one backend nothing is compared and maps are not dumped.
        public func run(_ input: ProgramInput, number: Int, cpu: UInt32? = nil, clock: UInt64? = nil) -> (
            results: [Result], divergence: Divergence?
        ) {
            let comparing = runners.count > 1
            let results = runners.map { $0.run(input, cpu: cpu, clock: clock, dumpMaps: comparing) }
            for other in results.dropFirst() {
                if let divergence = compare(results[0], other, input: number) { return (results, divergence) }
            }
            return (results, nil)
        }

        /// The maps of backend `index` (0 is the first asked for), as they are now.
        public func maps(of index: Int = 0) -> [String: MapDump] { runners[index].maps() }

        /// The machine of backend `index` when it is one of bpfsim's engines (for
        /// `MapState.save`); nil for the kernel.
        public func machine(of index: Int = 0) -> Machine? { runners[index].machine }
    }

    /// The first difference between two backends' results for input `number`, or nil.
    public static func compare(_ a: Result, _ b: Result, input number: Int) -> Divergence? {
        func divergence(_ field: String, _ first: String, _ second: String, note: String? = nil) -> Divergence {
            Divergence(
                input: number, field: field, first: a.backend, firstValue: first, second: b.backend,
                secondValue: second, note: note)
        }
        // bpfsim refuses an input (ProgramRun.refusal) where the kernel's test run would
        // fail; it agrees with a kernel run that failed with the same errno.
        if a.run?.refusal != nil || b.run?.refusal != nil {
            func outcome(_ result: Result) -> (errno: String?, text: String) {
                if let refusal = result.run?.refusal { return (refusal.errnoName, "refused it: \(refusal)") }
                if let error = result.error {
                    let name = error.range(of: #"\(E[A-Z0-9]+:"#, options: .regularExpression).map {
                        String(error[$0].dropFirst().dropLast())
                    }
                    return (name, "could not run it: \(error)")
                }
                return (nil, summary(result.run!))
            }
            let (x, y) = (outcome(a), outcome(b))
            guard let errno = x.errno, errno == y.errno else { return divergence("run", x.text, y.text) }
            return compareMaps(a, b, divergence)
        }
        guard let runA = a.run, let runB = b.run else {
            if a.run == nil && b.run == nil { return nil }
            return divergence(
                "run", a.error.map { "could not run it: \($0)" } ?? summary(a.run!),
                b.error.map { "could not run it: \($0)" } ?? summary(b.run!))
        }
        let faultA = runA.execution.fault
        let faultB = runB.execution.fault
        if (faultA == nil) != (faultB == nil) || (faultA != nil && faultA?.code != faultB?.code) {
            return divergence(
                "fault", faultA.map { "faulted: \($0)" } ?? summary(runA),
                faultB.map { "faulted: \($0)" } ?? summary(runB))
        }
        if faultA == nil {
            let kernelSide = a.backend == .kernel || b.backend == .kernel
            let mask: UInt64 = kernelSide ? 0xffff_ffff : .max
            if runA.execution.returnValue & mask != runB.execution.returnValue & mask {
                return divergence(
                    "retval", hex(runA.execution.returnValue & mask), hex(runB.execution.returnValue & mask),
                    note: kernelSide ? "low 32 bits: the kernel's test-run retval is 32 bits" : nil)
            }
        }
        if let dataA = runA.dataOut, let dataB = runB.dataOut, dataA != dataB {
            let offset =
                zip(dataA, dataB).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(dataA.count, dataB.count)
            func describe(_ bytes: [UInt8]) -> String {
                let byte = offset < bytes.count ? "0x" + String(bytes[offset], radix: 16) : "none"
                return "\(byte) (\(bytes.count) bytes)"
            }
            return divergence("data_out byte \(offset)", describe(dataA), describe(dataB))
        }
        let ringA = runA.events.filter { $0.kind == .ringBuffer }
        let ringB = runB.events.filter { $0.kind == .ringBuffer }
        if ringA.map(\.map) != ringB.map(\.map) || ringA.map(\.data) != ringB.map(\.data) {
            func list(_ events: [EventRecord]) -> String {
                "[" + events.map { "\($0.map): \(Hex.string($0.data))" }.joined(separator: ", ") + "]"
            }
            return divergence("ring buffer records", list(ringA), list(ringB))
        }
        // Between bpfsim's engines everything is compared: what the kernel does not
        // report (printk lines, perf events, redirect targets) too.
        if a.backend != .kernel && b.backend != .kernel {
            if runA.printk != runB.printk {
                return divergence("printk", runA.printk.description, runB.printk.description)
            }
            if runA.events != runB.events {
                func list(_ events: [EventRecord]) -> String {
                    "[" + events.map { "\($0.kind.rawValue) \($0.map): \(Hex.string($0.data))" }.joined(separator: ", ")
                        + "]"
                }
                return divergence("events", list(runA.events), list(runB.events))
            }
            if runA.redirect != runB.redirect {
                return divergence(
                    "redirect", runA.redirect.map { "\($0)" } ?? "none", runB.redirect.map { "\($0)" } ?? "none")
            }
        }
        return compareMaps(a, b, divergence)
    }

    /// The first element that differs between two results' maps.
    private static func compareMaps(
        _ a: Result, _ b: Result, _ divergence: (String, String, String, String?) -> Divergence
    ) -> Divergence? {
        for name in Set(a.maps.keys).union(b.maps.keys).sorted() {
            // Maps whose elements user space cannot read from the kernel (KernelSession.mapDumps).
            if (a.backend == .kernel && a.maps[name] == nil) || (b.backend == .kernel && b.maps[name] == nil) {
                continue
            }
            if let difference = compare(map: name, a.maps[name], b.maps[name]) {
                return divergence(difference.field, difference.first, difference.second, nil)
            }
        }
        return nil
    }

    /// Compares two dumps of one map as sets of elements (iteration orders differ).
    /// Per-CPU values are compared CPU by CPU; a CPU only one side has must be all zeros.
    static func compare(map name: String, _ a: MapDump?, _ b: MapDump?) -> (
        field: String, first: String, second: String
    )? {
        guard let a, let b else {
            return ("map \(name)", a == nil ? "has no such map" : "has it", b == nil ? "has no such map" : "has it")
        }
        var left: [String: MapDump.Value] = [:]
        var right: [String: MapDump.Value] = [:]
        for entry in a.entries { left[entry.key] = entry.value }
        for entry in b.entries { right[entry.key] = entry.value }
        for key in Set(left.keys).union(right.keys).sorted() {
            let field = "map \(name) key \(key.isEmpty ? "(none)" : key)"
            switch (left[key], right[key]) {
            case (nil, let value?): return (field, "no element", describe(value))
            case (let value?, nil): return (field, describe(value), "no element")
            case (let x?, let y?) where !same(x, y): return (field, describe(x), describe(y))
            default: continue
            }
        }
        // Queues and stacks have no keys: their values compare in order.
        if a.entries.first?.key == "" || b.entries.first?.key == "" {
            let x = a.entries.map { describe($0.value) }
            let y = b.entries.map { describe($0.value) }
            if x != y { return ("map \(name) values", x.description, y.description) }
        }
        return nil
    }

    static func same(_ a: MapDump.Value, _ b: MapDump.Value) -> Bool {
        switch (a, b) {
        case (.single(let x), .single(let y)): return x == y
        case (.perCPU(let x), .perCPU(let y)):
            for cpu in 0..<max(x.count, y.count) {
                let left = cpu < x.count ? x[cpu] : nil
                let right = cpu < y.count ? y[cpu] : nil
                switch (left, right) {
                case (let l?, let r?) where l != r: return false
                case (let l?, nil) where l.contains(where: { $0 != "0" }): return false
                case (nil, let r?) where r.contains(where: { $0 != "0" }): return false
                default: continue
                }
            }
            return true
        default: return false
        }
    }

    static func describe(_ value: MapDump.Value) -> String {
        switch value {
        case .single(let hex): hex
        case .perCPU(let values):
            "[" + values.enumerated().map { "cpu\($0.offset) \($0.element)" }.joined(separator: ", ") + "]"
        }
    }

    static func summary(_ run: ProgramRun) -> String { "ran, r0 = \(hex(run.execution.returnValue))" }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// One backend set up for the comparison.
    final class Runner {
        let backend: Backend
        private var session: Session?
        private var kernel: KernelSession?
        private let index: Int

        init(
            backend: Backend, source: Source, configuration: RunConfiguration, state: ((Machine) throws -> Void)?
        ) throws(SessionError) {
            self.backend = backend
            var configuration = configuration
            switch (backend, source) {
            case (.engine(let engine), .programs(let programs, let maps, let programIndex)):
                configuration.engine = engine
                let session = try Session(programs: programs, maps: maps, configuration: configuration)
                index = programIndex
                try Self.apply(state, to: session.machine)
                self.session = session
            case (.kernel, .programs):
                throw .unsupported("the kernel engine runs BPF object files (clang -target bpf -c)")
            case (.engine(let engine), .object(let object, let program)):
                configuration.engine = engine
                let session = try Session(object: object, configuration: configuration)
                index = try session.programIndex(named: program)
                try Self.apply(state, to: session.machine)
                self.session = session
            case (.kernel, .object(let object, let program)):
                let kernel = try KernelSession(object: object, program: program, configuration: configuration)
                index = try kernel.programIndex(named: program)
                if let state {
                    // The state is defined on bpfsim's machine; the kernel copies its elements.
                    let scratch = try Session(object: object, configuration: configuration)
                    try Self.apply(state, to: scratch.machine)
                    try kernel.copyState(from: scratch.machine)
                }
                self.kernel = kernel
            }
        }

        private static func apply(_ state: ((Machine) throws -> Void)?, to machine: Machine) throws(SessionError) {
            guard let state else { return }
            do {
                try state(machine)
            } catch {
                throw SessionError(code: "state", message: "\(error)")
            }
        }

        /// The machine of a bpfsim engine (nil for the kernel).
        var machine: Machine? { session?.machine }

        /// Runs one input. `cpu` and `clock`, when given, set the CPU the run is on and the
        /// clock `bpf_ktime_get_ns` starts from (the kernel's clock is its own). `dumpMaps`
        /// false leaves `maps` empty, for a single backend whose maps nobody compares.
        func run(_ input: ProgramInput, cpu: UInt32? = nil, clock: UInt64? = nil, dumpMaps: Bool = true) -> Result {
            if let session {
                if let cpu { session.machine.world.cpu = cpu }
                if let clock { session.machine.world.setClock(clock) }
                let run = session.run(index, input: input)
                return Result(
                    backend: backend, run: run, error: nil,
                    maps: dumpMaps ? MapDump.all(session.machine, btf: session.btf) : [:])
            }
            guard let kernel else { preconditionFailure("a runner has a session or a kernel") }
            do {
                let run = try kernel.run(index, input: input, cpu: cpu)
                return Result(backend: backend, run: run, error: nil, maps: dumpMaps ? try kernel.mapDumps() : [:])
            } catch {
                return Result(
                    backend: backend, run: nil, error: error.message,
                    maps: dumpMaps ? ((try? kernel.mapDumps()) ?? [:]) : [:])
            }
        }

        /// Every map now.
        func maps() -> [String: MapDump] {
            if let session { return MapDump.all(session.machine, btf: session.btf) }
            return (try? kernel?.mapDumps()) ?? [:]
        }
    }
}
