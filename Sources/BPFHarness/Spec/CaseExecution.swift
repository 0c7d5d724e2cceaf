import BPFSession
import Foundation

/// Why a backend could not be set up for a case.
struct SetupFailure: Error {
    let message: String
}

/// One case run on one backend, checked against its expectations.
struct CaseExecution {
    let prepared: PreparedSpec
    let specCase: TestSpec.Case
    let backend: Backend

    private var file: String { prepared.spec.file }
    private var type: ProgramType { prepared.program?.type ?? .unspec }

    /// A backend set up with the spec's initial maps.
    private enum Runner {
        case engine(Session)
        /// The kernel, reached through `RunComparison.Stream`: the harness does not touch
        /// `KernelSession` itself (libpcap's `struct bpf_insn` clashes with the kernel's).
        case kernel(RunComparison.Stream)
    }

    func run() -> SpecCaseResult {
        var result = SpecCaseResult(
            name: specCase.name, backend: backend.name, status: .passed, seconds: 0, failures: [], reason: nil,
            notes: [])
        func skip(_ reason: String) -> SpecCaseResult {
            result.status = .skipped
            result.reason = reason
            return result
        }
        let inputs: [TestSpec.PacketInput]
        switch specCase.kind {
        case .packets(let list):
            inputs = list
        case .pcap(let source):
            guard let path = source.path else { return skip(source.missing ?? "the capture is absent") }
            return runCapture(path, result)
        case .events(let source), .strace(let source):
            if backend == .kernel {
                return skip("tracing cases do not run on the kernel (BPF_PROG_TEST_RUN cannot run them)")
            }
            guard let path = source.path else { return skip(source.missing ?? "the trace is absent") }
            var strace = false
            if case .strace = specCase.kind { strace = true }
            return runTrace(path, strace: strace, result)
        }
        guard let programIndex = prepared.programIndex else {
            result.status = .failed
            result.failures = ["no program named for packets to run through ('program:')"]
            return result
        }
        if backend == .kernel, let unavailable = KernelSession.unavailability { return skip(unavailable) }
        let runner: Runner
        do {
            runner = try makeRunner()
        } catch {
            result.status = .failed
            result.failures = ["cannot set up \(backend.name): \(error.message)"]
            return result
        }
        var failures: [String] = []
        var notes: Set<String> = []
        var allPrintk: [String] = []
        var allRecords: [[UInt8]] = []
        var last: ProgramRun?
        for (number, input) in inputs.enumerated() {
            let label = inputs.count > 1 ? "packet \(number): " : ""
            let run: ProgramRun
            switch runner {
            case .engine(let session):
                run = session.run(programIndex, input: .packet(input.bytes))
            case .kernel(let stream):
                let outcome = stream.run(.packet(input.bytes), number: number).results[0]
                guard let kernelRun = outcome.run else {
                    failures.append("\(label)the kernel could not run it: \(outcome.error ?? "no reason given")")
                    last = nil
                    continue
                }
                run = kernelRun
            }
            if let refusal = run.refusal {
                failures.append("\(label)refused before running (\(refusal))")
            }
            let records = run.events.filter { $0.kind == .ringBuffer }.map(\.data)
            allPrintk += run.printk
            allRecords += records
            last = run
            var checks = input.expect
            if number == inputs.count - 1 {
                // The case's own expectations about a run apply to its last input; printk
                // and ring buffer records are checked over the whole case below.
                let caseLevel = specCase.expect.last
                if checks.verdict == nil { checks.verdict = caseLevel.verdict }
                if checks.retval == nil { checks.retval = caseLevel.retval }
                if checks.output == nil { checks.output = caseLevel.output }
                if checks.redirect == nil { checks.redirect = caseLevel.redirect }
                if checks.fault == nil { checks.fault = caseLevel.fault }
            }
            let found = check(run, checks, printk: run.printk, records: records, notes: &notes)
            failures += found.map { label + $0 }
            if found.contains(where: { $0.contains("verdict: expected") }), run.execution.fault == nil {
                if let diagnosis = Diagnosis.lastBranch(
                    prepared: prepared, inputs: inputs.prefix(number).map(\.bytes), packet: input.bytes)
                {
                    failures.append("  \(diagnosis)")
                }
            }
        }
        // Whole-case expectations.
        var caseChecks = TestSpec.PacketExpectation()
        caseChecks.printk = specCase.expect.last.printk
        caseChecks.ringbuf = specCase.expect.last.ringbuf
        caseChecks.ringbufCount = specCase.expect.last.ringbufCount
        if last != nil {
            failures += checkOutputs(caseChecks, printk: allPrintk, records: allRecords, notes: &notes)
        }
        if !specCase.expect.maps.isEmpty {
            let dumps: [String: MapDump]
            switch runner {
            case .engine(let session): dumps = MapDump.all(session.machine)
            case .kernel(let stream): dumps = stream.maps(of: 0)
            }
            for expectation in specCase.expect.maps {
                failures += checkMap(expectation, dumps[expectation.map])
            }
        }
        result.failures = failures
        result.notes = notes.sorted()
        result.status = failures.isEmpty ? .passed : .failed
        return result
    }

    /// A capture, streamed through `PacketReplay` (libpcap), counted by verdict.
    private func runCapture(_ path: URL, _ start: SpecCaseResult) -> SpecCaseResult {
        var result = start
        func fail(_ message: String) -> SpecCaseResult {
            result.status = .failed
            result.failures = [message]
            return result
        }
        guard prepared.programIndex != nil else {
            return fail("no program named for the capture to run through ('program:')")
        }
        let prepared = self.prepared
        let replay: PacketReplay
        do {
            replay = try PacketReplay(
                object: prepared.object, program: prepared.programName, backends: [backend],
                configuration: RunConfiguration(world: World(cpuCount: prepared.spec.cpus)),
                // The spec runner verified the program already (or was told not to).
                options: ReplayOptions(cpus: prepared.spec.cpus, verify: false),
                state: { machine in try CaseExecution.apply(prepared, to: machine) })
        } catch {
            if error.code == "kernel_unavailable" {
                result.status = .skipped
                result.reason = error.message
                return result
            }
            return fail("cannot replay \(path.lastPathComponent) on \(backend.name): \(error.message)")
        }
        let reader: CaptureReader
        do {
            reader = try CaptureReader(path: path.path)
        } catch {
            return fail("\(path.lastPathComponent): \(error)")
        }
        let wanted = Set((specCase.expect.perPacket ?? []).map(\.index))
        var counts: [String: Int] = [:]
        var byIndex: [Int: String] = [:]
        var faults = 0
        var printk: [String] = []
        var records: [[UInt8]] = []
        let summary = replay.replay(reader) { packet in
            let index = packet.number - 1
            let name: String
            if let run = packet.run {
                name = run.refusal != nil ? "refused" : Self.verdictName(type: type, run: run)
                if run.execution.fault != nil { faults += 1 }
                printk += run.printk
                records += run.events.filter { $0.kind == .ringBuffer }.map(\.data)
            } else {
                name = "error"
            }
            counts[name, default: 0] += 1
            if wanted.contains(index) { byIndex[index] = name }
        }
        var failures: [String] = []
        if let error = summary.captureError { failures.append("\(path.lastPathComponent): \(error)") }
        for (name, count, line) in specCase.expect.verdictCounts ?? [] {
            let actual = counts[normalized(name)] ?? 0
            if actual != count {
                let all = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                failures.append("\(at(line))verdicts: expected \(count) \(name), got \(actual) (all: \(all))")
            }
        }
        for (index, name, line) in specCase.expect.perPacket ?? [] {
            let actual = byIndex[index] ?? "no packet \(index) (the capture has \(summary.packets))"
            if actual != normalized(name) {
                failures.append("\(at(line))packet \(index): expected \(name), got \(actual)")
            }
        }
        if let expected = specCase.expect.faults, expected.count != faults {
            failures.append("\(at(expected.line))faults: expected \(expected.count), got \(faults)")
        }
        var notes: Set<String> = []
        failures += checkOutputs(specCase.expect.last, printk: printk, records: records, notes: &notes)
        let dumps = replay.maps(of: 0)
        for expectation in specCase.expect.maps { failures += checkMap(expectation, dumps[expectation.map]) }
        result.failures = failures
        result.notes = notes.sorted()
        result.status = failures.isEmpty ? .passed : .failed
        return result
    }

    /// A syscall trace (JSON Lines or strace output), fired through `TraceReplay`.
    private func runTrace(_ path: URL, strace: Bool, _ start: SpecCaseResult) -> SpecCaseResult {
        var result = start
        func fail(_ message: String) -> SpecCaseResult {
            result.status = .failed
            result.failures = [message]
            return result
        }
        let session: Session
        let replay: TraceReplay
        let trace: SyscallTrace
        do {
            trace = try SyscallTrace(contentsOf: path.path, strace: strace)
        } catch {
            return fail(error.description)
        }
        // The trace names the CPUs its events ran on: the machine has at least that many.
        let cpus = max(prepared.spec.cpus, Int(trace.events.map(\.cpu).max() ?? 0) + 1)
        do {
            session = try CaseExecution.session(prepared: prepared, engine: engineOf(backend), cpus: cpus)
            replay = try TraceReplay(session: session, programs: prepared.program.map { [$0.name] })
        } catch let error as SetupFailure {
            return fail("cannot set up \(backend.name): \(error.message)")
        } catch {
            return fail("\(error)")
        }
        let outcome = replay.replay(trace)
        var failures: [String] = outcome.events.compactMap(\.error)
        var faults = 0
        for event in outcome.events {
            for firing in event.firings where firing.failed {
                faults += 1
                if specCase.expect.faults == nil {
                    let why = firing.run.execution.fault.map { "\($0)" } ?? firing.run.refusal.map { "\($0)" } ?? ""
                    failures.append(
                        "\(path.lastPathComponent):\(event.event.line): \(firing.attachment.name) failed: \(why)")
                }
            }
        }
        if let expected = specCase.expect.faults, expected.count != faults {
            failures.append("\(at(expected.line))faults: expected \(expected.count), got \(faults)")
        }
        let printk = outcome.events.flatMap(\.printk)
        let records = outcome.events.flatMap(\.records).filter { $0.kind == .ringBuffer }.map(\.data)
        var notes: Set<String> = []
        failures += checkOutputs(specCase.expect.last, printk: printk, records: records, notes: &notes)
        let dumps = MapDump.all(session.machine)
        for expectation in specCase.expect.maps { failures += checkMap(expectation, dumps[expectation.map]) }
        result.failures = failures
        result.status = failures.isEmpty ? .passed : .failed
        return result
    }

    private func makeRunner() throws(SetupFailure) -> Runner {
        if backend == .kernel {
            let prepared = self.prepared
            do {
                let stream = try RunComparison.Stream(
                    .object(prepared.object, program: prepared.programName), backends: [.kernel],
                    configuration: RunConfiguration(world: World(cpuCount: prepared.spec.cpus)),
                    state: { machine in try CaseExecution.apply(prepared, to: machine) })
                return .kernel(stream)
            } catch {
                throw SetupFailure(message: error.message)
            }
        }
        return .engine(try freshSession(engine: engineOf(backend)))
    }

    private func engineOf(_ backend: Backend) -> Engine {
        if case .engine(let engine) = backend { return engine }
        return .interpreter
    }

    /// A machine with the object's maps and the spec's initial elements.
    func freshSession(engine: Engine) throws(SetupFailure) -> Session {
        try CaseExecution.session(prepared: prepared, engine: engine)
    }

    static func session(prepared: PreparedSpec, engine: Engine, budget: UInt64? = nil, cpus: Int? = nil)
        throws(SetupFailure) -> Session
    {
        var configuration = RunConfiguration(engine: engine, world: World(cpuCount: cpus ?? prepared.spec.cpus))
        if let budget { configuration.limits.instructionBudget = budget }
        let session: Session
        do {
            session = try Session(object: prepared.object, configuration: configuration)
        } catch {
            throw SetupFailure(message: error.message)
        }
        try apply(prepared, to: session.machine)
        return session
    }

    /// Adds the spec's initial map elements to `machine`.
    static func apply(_ prepared: PreparedSpec, to machine: Machine) throws(SetupFailure) {
        for element in prepared.initial {
            guard let map = machine.map(named: element.map) else { continue }
            var value = element.value
            if map.type.isPerCPU {
                // More CPUs than the spec's (a trace that names them): the others start at zero.
                value += [UInt8](repeating: 0, count: max(0, map.valueStride * map.cpuCount - value.count))
            }
            do {
                if map.type == .queue || map.type == .stack {
                    try map.update(key: [], value: value, flags: UpdateFlags.any)
                } else {
                    try map.update(key: element.key, value: value, flags: UpdateFlags.any)
                }
            } catch {
                throw SetupFailure(
                    message:
                        "\(prepared.spec.file):\(element.line.map(String.init) ?? "?"): cannot add an element to \(element.map): \(error)"
                )
            }
        }
    }

    // MARK: - Checks

    /// The name a verdict goes by in specs: `XDP_DROP`, `TC_ACT_SHOT`, a socket filter's
    /// byte count, `allow`/`deny`; `fault` for a faulted run.
    static func verdictName(type: ProgramType, run: ProgramRun) -> String {
        if run.execution.fault != nil { return "fault" }
        let value = run.execution.returnValue
        let low = UInt32(truncatingIfNeeded: value)
        switch type {
        case .xdp: return XDPAction(rawValue: low)?.kernelName ?? "XDP action \(low)"
        case .schedCls, .schedAct:
            let action = Int32(bitPattern: low)
            return TCAction(rawValue: action)?.kernelName ?? "tc action \(action)"
        case .socketFilter: return String(low)
        case .cgroupSkb: return low & 1 != 0 ? "allow" : "deny"
        default: return String(value)
        }
    }

    /// Spec spellings that mean the same verdict (`drop` for a socket filter's 0, for cgroup_skb's deny).
    private func normalized(_ name: String) -> String {
        switch (type, name) {
        case (.socketFilter, "drop"): return "0"
        case (.socketFilter, _): return YAMLNode.integer(name).map { String(UInt32(truncatingIfNeeded: $0)) } ?? name
        case (.cgroupSkb, "drop"): return "deny"
        default: return name
        }
    }

    private func at(_ line: Int?) -> String { line.map { "line \($0): " } ?? "" }

    private func check(
        _ run: ProgramRun, _ e: TestSpec.PacketExpectation, printk: [String], records: [[UInt8]],
        notes: inout Set<String>
    ) -> [String] {
        var failures: [String] = []
        let fault = run.execution.fault
        if let expected = e.fault {
            if expected.expected && fault == nil {
                failures.append(
                    "\(at(expected.line))fault: expected a fault, got \(Self.verdictName(type: type, run: run))")
            } else if !expected.expected, let fault {
                failures.append("\(at(expected.line))fault: expected none, got \(fault)")
            } else if let message = expected.message, let fault, !fault.description.contains(message) {
                failures.append("\(at(expected.line))fault: expected one containing '\(message)', got \(fault)")
            }
        } else if let fault {
            failures.append("faulted: \(fault)\(run.faultSourceLine.map { " (\($0))" } ?? "")")
            return failures
        }
        if let verdict = e.verdict {
            let actual = Self.verdictName(type: type, run: run)
            if normalized(verdict.name) != actual {
                failures.append("\(at(verdict.line))verdict: expected \(verdict.name), got \(actual)")
            }
        }
        if let retval = e.retval {
            let mask: UInt64 = backend == .kernel ? 0xffff_ffff : .max
            if run.execution.returnValue & mask != retval.value & mask {
                failures.append(
                    "\(at(retval.line))retval: expected \(Int64(bitPattern: retval.value)), got \(Int64(bitPattern: run.execution.returnValue & mask))"
                )
            }
        }
        if let output = e.output {
            let actual = run.dataOut ?? []
            if actual != output.bytes {
                let offset =
                    zip(actual, output.bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(actual.count, output.bytes.count)
                failures.append(
                    "\(at(output.line))output: differs at byte \(offset): expected \(output.bytes.count) bytes \(Hex.string(output.bytes)), got \(actual.count) bytes \(Hex.string(actual))"
                )
            }
        }
        if let redirect = e.redirect {
            if backend == .kernel {
                notes.insert("redirect is not reported by the kernel")
            } else {
                let kind: RedirectTarget.Kind =
                    redirect.kind == "cpu" ? .cpu : redirect.kind == "socket" ? .socket : .interface
                let actual = run.redirect
                if actual?.kind != kind || actual?.index != redirect.index {
                    let got = actual.map { "\($0.kind.rawValue) \($0.index)" } ?? "no redirect"
                    failures.append(
                        "\(at(redirect.line))redirect: expected \(redirect.kind) \(redirect.index), got \(got)")
                }
            }
        }
        failures += checkOutputs(e, printk: printk, records: records, notes: &notes)
        return failures
    }

    /// printk lines and ring buffer records against what a run (or a whole case) produced.
    private func checkOutputs(
        _ e: TestSpec.PacketExpectation, printk: [String], records: [[UInt8]], notes: inout Set<String>
    ) -> [String] {
        var failures: [String] = []
        if !e.printk.isEmpty {
            if backend == .kernel {
                notes.insert("printk is not reported by the kernel")
            } else {
                // Each expected text must appear, in order, within successive lines.
                var remaining = printk[...]
                for expected in e.printk {
                    guard let index = remaining.firstIndex(where: { $0.contains(expected) }) else {
                        failures.append(
                            "printk: expected a line containing '\(expected)' (in order), got \(printk.isEmpty ? "none" : printk.map { "'\($0)'" }.joined(separator: ", "))"
                        )
                        break
                    }
                    remaining = remaining[(index + 1)...]
                }
            }
        }
        if let count = e.ringbufCount, records.count != count.count {
            failures.append("\(at(count.line))ringbuf_count: expected \(count.count), got \(records.count)")
        }
        if let expected = e.ringbuf {
            if expected.count != records.count {
                failures.append("ringbuf: expected \(expected.count) records, got \(records.count)")
            }
            for (index, item) in expected.enumerated() where index < records.count {
                if let fields = item.fields {
                    failures += checkFields(
                        fields, type: item.type, record: records[index], index: index, line: item.line)
                    continue
                }
                guard let typed = item.record,
                    let bytes = try? typed.resolve(width: nil, file: file, place: "ringbuf record")
                else {
                    failures.append(
                        "\(at(item.line))ringbuf record \(index): a bare integer has no width; write {u32: N}")
                    continue
                }
                if records[index] != bytes {
                    failures.append(
                        "\(at(item.line))ringbuf record \(index): expected \(Hex.string(bytes)), got \(Hex.string(records[index]))"
                    )
                }
            }
        }
        return failures
    }

    /// A ring buffer record decoded with the object's BTF (the struct named `type`, or the
    /// first struct of the record's size with every named member), field by field.
    private func checkFields(
        _ fields: [(String, TestSpec.YAMLValue)], type name: String?, record: [UInt8], index: Int, line: Int?
    ) -> [String] {
        let label = "\(at(line))ringbuf record \(index)"
        guard let btf = prepared.object.btf else { return ["\(label): the object has no BTF to decode fields with"] }
        let wanted = fields.map(\.0)
        let candidates = btf.types.filter { entry in
            guard entry.kind == .structure, name == nil || entry.name == name,
                btf.size(of: entry.id) == record.count, case .members(let members) = entry.detail
            else { return false }
            return wanted.allSatisfy { field in members.contains { $0.name == field } }
        }
        guard let entry = candidates.first, let value = btf.format(record, as: entry.id) else {
            return [
                "\(label): no struct\(name.map { " named '\($0)'" } ?? "") of \(record.count) bytes with members \(wanted.joined(separator: ", ")) in the object's BTF"
            ]
        }
        var failures: [String] = []
        for (field, expected) in fields {
            guard let actual = value[field] else { continue }
            let text = Self.text(actual)
            var same = text == expected.text
            if !same, let number = YAMLNode.integer(expected.text) {
                switch actual {
                case .unsigned(let v): same = v == number
                case .signed(let v): same = v == Int64(bitPattern: number)
                default: break
                }
            }
            if !same {
                failures.append(
                    "\(at(expected.line ?? line))ringbuf record \(index) \(entry.name).\(field): expected \(expected.text), got \(text)"
                )
            }
        }
        return failures
    }

    /// A decoded value as text: numbers in decimal, strings as they are, the rest as JSON.
    static func text(_ value: BTFValue) -> String {
        switch value {
        case .unsigned(let v): return String(v)
        case .signed(let v): return String(v)
        case .bool(let v): return v ? "true" : "false"
        case .float(let v): return String(v)
        case .string(let v): return v
        case .array, .object:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        }
    }

    private func checkMap(_ expectation: TestSpec.MapExpectation, _ dump: MapDump?) -> [String] {
        let name = expectation.map
        guard let dump else { return ["\(at(expectation.line))map \(name): not found"] }
        guard let spec = prepared.object.maps.first(where: { $0.name == name }) else { return [] }
        var failures: [String] = []
        var actual: [String: MapDump.Value] = [:]
        for entry in dump.entries { actual[entry.key] = entry.value }
        var matched: Set<String> = []
        for element in expectation.entries {
            let key: [UInt8]
            do {
                key = try element.key?.resolve(width: spec.keySize, file: file, place: "key of \(name)") ?? []
            } catch {
                failures.append(error.description)
                continue
            }
            let keyHex = Hex.string(key)
            matched.insert(keyHex)
            let label = "\(at(element.line))map \(name) key \(keyHex.isEmpty ? "(none)" : keyHex)"
            guard let value = actual[keyHex] else {
                failures.append("\(label): expected an element, got none")
                continue
            }
            func bytes(_ typed: TypedBytes, width: Int) -> [UInt8]? {
                try? typed.resolve(width: width, file: file, place: "value of \(name)")
            }
            switch value {
            case .single(let hex):
                guard let typed = element.value else {
                    failures.append("\(label): not a per-CPU map; expect 'value'")
                    continue
                }
                guard let want = bytes(typed, width: spec.valueSize) else {
                    failures.append("\(label): the expected value does not fit \(spec.valueSize) bytes")
                    continue
                }
                if Hex.string(want) != hex { failures.append("\(label): expected \(Hex.string(want)), got \(hex)") }
            case .perCPU(let values):
                let got = values.map { Hex.bytes($0) ?? [] }
                if let list = element.values {
                    for cpu in 0..<max(list.count, got.count) {
                        let want = cpu < list.count ? bytes(list[cpu], width: spec.valueSize) : nil
                        let have = cpu < got.count ? got[cpu] : nil
                        let zero = [UInt8](repeating: 0, count: spec.valueSize)
                        if (want ?? zero) != (have ?? zero) {
                            failures.append(
                                "\(label) cpu \(cpu): expected \(Hex.string(want ?? zero)), got \(Hex.string(have ?? zero))"
                            )
                        }
                    }
                } else if let typed = element.sum ?? element.value {
                    // Sums add the values as little-endian integers of the value's size (up to 8 bytes).
                    guard spec.valueSize <= 8, let want = bytes(typed, width: spec.valueSize) else {
                        failures.append("\(label): sum needs a value of at most 8 bytes")
                        continue
                    }
                    func number(_ bytes: [UInt8]) -> UInt64 {
                        bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
                    }
                    let mask: UInt64 = spec.valueSize == 8 ? .max : (1 << UInt64(spec.valueSize * 8)) - 1
                    let total = got.reduce(UInt64(0)) { $0 &+ number($1) } & mask
                    if element.sum != nil {
                        if total != number(want) {
                            failures.append("\(label): expected sum \(number(want)), got \(total)")
                        }
                    } else if got.contains(where: { $0 != want }) {
                        failures.append(
                            "\(label): expected \(Hex.string(want)) on every CPU, got \(values.joined(separator: ", "))"
                        )
                    }
                }
            }
        }
        if expectation.exact {
            let extra = dump.entries.map(\.key).filter { !matched.contains($0) }.sorted()
            if !extra.isEmpty {
                failures.append(
                    "\(at(expectation.line))map \(name): match exact, but it also holds keys \(extra.prefix(8).joined(separator: ", "))\(extra.count > 8 ? ", ..." : "")"
                )
            }
        }
        return failures
    }
}

/// Which instruction decided a verdict: the last conditional jump before the exit.
///
/// It is found without a hook in the interpreter, so normal runs pay nothing: the
/// interpreter counts executed instructions exactly and stops with a budget fault at
/// the pc it would run next, so a re-run with a budget of k reports the k-th instruction
/// of the path. Walking k back from the end finds the last conditional jump, and the
/// instruction after it tells whether it was taken. Each re-run starts from the spec's
/// initial maps and replays the case's earlier inputs.
enum Diagnosis {
    static func lastBranch(prepared: PreparedSpec, inputs: [[UInt8]], packet: [UInt8], window: Int = 64) -> String? {
        guard let index = prepared.programIndex, let program = prepared.program else { return nil }
        func pc(budget: UInt64?) -> (Int?, ProgramRun)? {
            guard let session = try? CaseExecution.session(prepared: prepared, engine: .interpreter) else { return nil }
            for input in inputs { _ = session.run(index, input: .packet(input)) }
            if let budget { session.machine.limits.instructionBudget = budget }
            let run = session.run(index, input: .packet(packet))
            return (run.execution.fault?.pc, run)
        }
        guard let (_, full) = pc(budget: nil), full.execution.fault == nil,
            let count = full.execution.instructionCount, count >= 2
        else { return nil }
        let instructions = program.instructions
        guard var later = pc(budget: count - 1)?.0 else { return nil }
        var k = Int(count) - 2
        while k >= 0 && k >= Int(count) - window {
            guard let here = pc(budget: UInt64(k))?.0, here < instructions.count else { return nil }
            let instruction = instructions[here]
            let op = instruction.opcode >> 4
            let isJumpClass = instruction.instructionClass == .jmp || instruction.instructionClass == .jmp32
            if isJumpClass && op != 0x0 && op != 0x8 && op != 0x9 {
                let taken = later != here + 1
                let text =
                    Disassembler.lines(instructions).first { $0.index == here }?.text
                    ?? "opcode 0x\(String(instruction.opcode, radix: 16))"
                var line = "decided at pc \(here): \(text) (\(taken ? "taken" : "not taken"))"
                if let source = program.line(at: here) {
                    line += " at \(source.location)"
                    let code = source.source.trimmingCharacters(in: .whitespaces)
                    if !code.isEmpty { line += ": \(code)" }
                }
                return line
            }
            later = here
            k -= 1
        }
        return nil
    }
}
