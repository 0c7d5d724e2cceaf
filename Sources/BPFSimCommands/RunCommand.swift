import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim run`: run a program once.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program once.",
        discussion: """
            PROGRAM is a BPF object file, or assembly text (.s), raw 8-byte instructions (.bin) or \
            a conformance test (.data, whose memory is used unless --mem or --mem-hex is given). \
            An object's program has the type its section gives it: XDP, tc (sched_cls, \
            sched_act), socket filter and cgroup_skb programs run on the packet given with --data \
            or --data-hex, as BPF_PROG_TEST_RUN runs them, with --ctx or --ctx-hex as the \
            __sk_buff it takes as ctx_in (mark, priority, cb, ifindex, tstamp, wire_len, ...); \
            tracepoint, raw_tracepoint and kprobe programs run on the context given with --ctx or \
            --ctx-hex (a tracepoint record, raw tracepoint arguments, a struct pt_regs), or on a \
            zeroed context of the size the kernel would give (a syscall tracepoint's record \
            carries the syscall's number); a function in .text runs on flat memory. Flat memory \
            runs as the conformance suite does: r1 = the memory, r2 = its length; with --data an \
            assembly program runs as XDP, or as the type given with --type. Maps given with --map are available to `lddw map_idx N` (N counts \
            --map options from 0). A fault or a program that does not load exits with status 1. \
            --json output is described in docs/json.md.
            """
    )

    @Argument(help: "The program: a BPF object (.o from clang -target bpf), or .s, .bin or .data.")
    var program: String

    @Option(name: .customLong("program"), help: "Which program of an object to run, by function name.")
    var programName: String?

    @Option(help: "A file whose bytes are the input memory.")
    var mem: String?

    @Option(name: .customLong("mem-hex"), help: "The input memory as hex bytes.")
    var memHex: String?

    @Option(help: "A packet file: run the program as XDP on it.")
    var data: String?

    @Option(name: .customLong("data-hex"), help: "The packet as hex bytes: run the program as XDP on it.")
    var dataHex: String?

    @Option(help: "The context: an __sk_buff for packet programs (ctx_in), the whole context for tracing programs.")
    var ctx: String?

    @Option(name: .customLong("ctx-hex"), help: "The context as hex bytes.")
    var ctxHex: String?

    @Option(
        help: ArgumentHelp(
            "The type of an assembly program that runs on --data: xdp, sched_cls, sched_act, socket_filter, cgroup_skb.",
            valueName: "type"))
    var type: String?

    @Option(
        name: .customLong("map"),
        help: ArgumentHelp(
            "A map: NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS], TYPE as bpftool names it.", valueName: "spec"))
    var maps: [String] = []

    @Option(
        help: "A directory of map state: maps found there are loaded first, and every map is saved back after the run.")
    var state: String?

    @Option(help: "Instructions a run may execute before it faults.")
    var budget: UInt64 = ExecutionLimits().instructionBudget

    @Option(help: "Emulated CPUs (per-CPU maps hold one value for each).")
    var cpus: Int = 1

    @Flag(help: "Refuse at load what the kernel refuses (out-of-range shifts, division by an immediate 0, callx).")
    var kernelStrict = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    mutating func validate() throws {
        if [mem, memHex, data, dataHex].compactMap({ $0 }).count > 1 {
            throw ValidationError("give one of --mem, --mem-hex, --data, --data-hex")
        }
        if cpus < 1 || cpus > 1024 { throw ValidationError("--cpus must be between 1 and 1024") }
        if ctx != nil && ctxHex != nil { throw ValidationError("give one of --ctx, --ctx-hex") }
        if (ctx != nil || ctxHex != nil) && (mem != nil || memHex != nil) {
            throw ValidationError("--ctx is for packet and tracing programs, not flat memory")
        }
        if let type {
            guard let known = ProgramType.allCases.first(where: { $0.kernelName == type }),
                [.xdp, .schedCls, .schedAct, .socketFilter, .cgroupSkb].contains(known)
            else {
                throw ValidationError("--type takes xdp, sched_cls, sched_act, socket_filter or cgroup_skb")
            }
        }
        for spec in maps where MapSpec(commandLine: spec) == nil {
            throw ValidationError("'\(spec)' is not NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS]")
        }
    }

    func run() throws {
        let report = makeReport()
        if json {
            printJSON(report)
        } else {
            report.printText()
        }
        if report.error != nil { throw ExitCode(1) }
    }

    func makeReport() -> RunReport {
        var report = RunReport()
        let configuration = RunConfiguration(
            limits: ExecutionLimits(instructionBudget: budget), world: World(cpuCount: cpus),
            validation: ValidationOptions(strictness: kernelStrict ? .kernel : .conformance))
        let session: Session
        let index: Int
        let input: ProgramInput
        do {
            let context: [UInt8]? =
                if let ctx { Array(try readFile(ctx)) } else if let ctxHex { try parseHex(ctxHex) } else { nil }
            let packet: [UInt8]? =
                if let data { Array(try readFile(data)) } else if let dataHex { try parseHex(dataHex) } else { nil }
            let memory: [UInt8]? =
                if let mem { Array(try readFile(mem)) } else if let memHex { try parseHex(memHex) } else { nil }
            if BPFObject.isELF(try readFile(program)) {
                let object = try BPFObject(path: program)
                guard maps.isEmpty else {
                    throw CommandFailure("--map is for assembly programs; an object brings its own maps")
                }
                guard type == nil else {
                    throw CommandFailure("--type is for assembly programs; an object's sections give types")
                }
                session = try Session(object: object, configuration: configuration)
                index = try Self.choose(programName, in: session)
                input = try Self.input(
                    for: session, index: index, packet: packet, context: context, memory: memory,
                    memoryGiven: mem != nil || memHex != nil)
            } else {
                let file = try ProgramFile(path: program)
                let packetType = type.flatMap { name in ProgramType.allCases.first { $0.kernelName == name } } ?? .xdp
                if let packet {
                    input = .frame(Packet(packet, context: context))
                } else if context != nil {
                    throw CommandFailure("--ctx needs a packet (--data or --data-hex) for an assembly program")
                } else {
                    input = .memory(memory ?? file.memory)
                }
                let definition = ProgramDefinition(
                    name: URL(fileURLWithPath: program).lastPathComponent, type: packet != nil ? packetType : .unspec,
                    instructions: file.instructions)
                session = try Session(
                    programs: [definition], maps: maps.compactMap(MapSpec.init(commandLine:)),
                    configuration: configuration)
                index = 0
            }
        } catch let error as ProgramError {
            report.error = .init(loadError: error, path: program)
            return report
        } catch let error as SessionError {
            if let programError = error.programError {
                report.error = .init(loadError: programError, path: program)
            } else {
                report.error = .init(kind: "load", code: error.code, message: "\(program): \(error.message)")
            }
            return report
        } catch let error as LoaderError {
            report.error = .init(kind: "load", code: error.code, message: error.description)
            return report
        } catch {
            report.error = .init(kind: "load", code: "input", message: "\(error)")
            return report
        }
        if let state {
            do {
                try MapState.load(session.machine, from: URL(fileURLWithPath: state))
            } catch {
                report.error = .init(kind: "load", code: "state", message: error.description)
                return report
            }
        }
        let result = session.run(index, input: input)
        if let state {
            do {
                try MapState.save(session.machine, to: URL(fileURLWithPath: state))
            } catch {
                report.error = .init(kind: "load", code: "state", message: error.description)
            }
        }
        if let refusal = result.refusal {
            report.error = .init(
                kind: "input", code: "refused", message: "\(program): the kernel would refuse this input: \(refusal)")
            return report
        }
        report.insns = result.execution.instructionCount
        if case .memory(let bytes) = input {
            if bytes != nil { report.memory = result.dataOut.map(Hex.string) }
        } else {
            report.dataOut = result.dataOut.map(Hex.string)
        }
        report.ctxOut = result.contextOut.map(Hex.string)
        if !result.clones.isEmpty {
            report.clones = result.clones.map {
                RunReport.Clone(ifindex: $0.target.index, flags: $0.target.flags, data: Hex.string($0.packet))
            }
        }
        if !result.printk.isEmpty { report.printk = result.printk }
        if !session.machine.maps.isEmpty { report.maps = MapDump.all(session.machine) }
        if !result.events.isEmpty { report.events = result.events.map(RunReport.Event.init) }
        report.redirect = result.redirect
        if let fault = result.execution.fault {
            report.error = .init(
                kind: "fault", code: fault.code, message: fault.message, pc: fault.pc, instruction: fault.instruction)
        } else {
            report.retval = result.execution.returnValue
            report.verdict = result.verdict?.description
        }
        return report
    }
}

extension Run {
    /// The program to run: the one named, or the only one.
    static func choose(_ name: String?, in session: Session) throws -> Int {
        if let name { return try session.programIndex(named: name) }
        guard session.definitions.count == 1 else {
            throw CommandFailure(
                "the object has \(session.definitions.count) programs; choose one with --program (\(session.programNames.joined(separator: ", ")))"
            )
        }
        return 0
    }
}

extension Run {
    /// The input for an object's program: a packet for packet types, a context (given or
    /// a zeroed default) for tracing types, flat memory for plain functions.
    static func input(
        for session: Session, index: Int, packet: [UInt8]?, context: [UInt8]?, memory: [UInt8]?, memoryGiven: Bool
    ) throws -> ProgramInput {
        let definition = session.definitions[index]
        let name = definition.name
        let type = definition.type
        switch type {
        case .xdp, .schedCls, .schedAct, .socketFilter, .cgroupSkb:
            guard let packet, !memoryGiven else {
                throw CommandFailure(
                    "'\(name)' is a \(type.kernelName) program: give a packet with --data or --data-hex")
            }
            if type == .xdp && context != nil {
                throw CommandFailure("--ctx for XDP programs (an xdp_md) is not supported; give the packet alone")
            }
            return .frame(Packet(packet, context: context))
        case .tracepoint, .rawTracepoint, .rawTracepointWritable, .kprobe:
            guard packet == nil, !memoryGiven else {
                throw CommandFailure(
                    "'\(name)' is a \(type.kernelName) program: it runs on a context (--ctx or --ctx-hex), not a packet or memory"
                )
            }
            if let context { return .context(context) }
            guard let input = session.defaultInput(for: index) else {
                throw CommandFailure(
                    "'\(name)' is attached to tracepoint '\(definition.attachTarget ?? "")', whose record layout bpfsim does not know: give the record with --ctx or --ctx-hex (its layout is in /sys/kernel/tracing/events/\(definition.attachTarget ?? "...")/format)"
                )
            }
            return input
        case .unspec:
            guard packet == nil, context == nil else {
                throw CommandFailure("'\(name)' is a plain function: give memory with --mem or --mem-hex")
            }
            return .memory(memory)
        default:
            throw CommandFailure(
                "'\(name)' is a \(type.kernelName) program; bpfsim runs XDP, tc, socket filter, cgroup_skb, tracepoint, raw_tracepoint and kprobe programs and plain functions"
            )
        }
    }
}

/// The result of `bpfsim run`, as printed with `--json` (see docs/json.md).
struct RunReport: Encodable {
    /// The version of this JSON layout.
    var version = 1
    /// r0 as an unsigned 64-bit integer.
    var retval: UInt64?
    /// Instructions executed.
    var insns: UInt64?
    /// The input memory after the run, as hex, when there was memory.
    var memory: String?
    /// The packet after the run, as BPF_PROG_TEST_RUN returns it, as hex.
    var dataOut: String?
    /// The __sk_buff BPF_PROG_TEST_RUN returns, when one was passed in.
    var ctxOut: String?
    /// What the return value means for the program's type (`XDP_PASS`, `TC_ACT_SHOT`, ...).
    var verdict: String?
    var clones: [Clone]?
    var printk: [String]?
    var maps: [String: MapDump]?
    var events: [Event]?
    var redirect: RedirectTarget?
    var error: ErrorReport?

    enum CodingKeys: String, CodingKey {
        case version, retval, insns, memory, dataOut = "data_out", ctxOut = "ctx_out", verdict, clones, printk, maps,
            events, redirect, error
    }

    struct Clone: Encodable {
        var ifindex: UInt32
        var flags: UInt64
        var data: String
    }

    struct Event: Encodable {
        var map: String
        var kind: String
        var cpu: Int?
        var data: String

        init(_ record: EventRecord) {
            map = record.map
            kind = record.kind.rawValue
            cpu = record.cpu
            data = Hex.string(record.data)
        }
    }

    struct ErrorReport: Encodable {
        /// `load` (the program could not be read or validated), `input` (the kernel would
        /// refuse the input) or `fault` (it stopped while running).
        var kind: String
        var code: String
        var message: String
        /// The instruction index, when known.
        var pc: Int?
        var instruction: String?
        var line: Int?
        /// `file.c:LINE` of the faulting instruction, when the object has line info.
        var source: String?
    }

    func printText() {
        for line in printk ?? [] { print("printk: \(line)") }
        if let error {
            var text = "error: "
            if error.kind != "fault" {
                text += error.message
            } else {
                text += "instruction \(error.pc ?? 0)"
                if let instruction = error.instruction { text += " (\(instruction))" }
                if let source = error.source { text += " at \(source)" }
                text += ": " + error.message
            }
            printError(text)
            if let insns { printError("after \(insns) instructions") }
            return
        }
        guard let retval else { return }
        print(
            String(format: "r0 = 0x%016llx (%llu)", retval, retval)
                + (Int64(bitPattern: retval) < 0 ? " (\(Int64(bitPattern: retval)) signed)" : ""))
        if let verdict { print("verdict: \(verdict)") }
        if let insns { print("\(insns) instructions") }
        if let redirect {
            print(
                "redirect: \(redirect.kind.rawValue) \(redirect.index)" + (redirect.map.map { " via map \($0)" } ?? ""))
        }
        if let dataOut { print("data_out: \(dataOut)") }
        if let ctxOut { print("ctx_out: \(ctxOut)") }
        for clone in clones ?? [] { print("clone to ifindex \(clone.ifindex): \(clone.data)") }
        for event in events ?? [] { print("\(event.kind) \(event.map): \(event.data)") }
        for (name, dump) in (maps ?? [:]).sorted(by: { $0.key < $1.key }) {
            print("map \(name): \(dump.entries.count) entr\(dump.entries.count == 1 ? "y" : "ies")")
            for entry in dump.entries.prefix(32) {
                switch entry.value {
                case .single(let value): print("  \(entry.key): \(value)")
                case .perCPU(let values): print("  \(entry.key): \(values.joined(separator: " "))")
                }
            }
            if dump.entries.count > 32 { print("  ... \(dump.entries.count - 32) more (use --json)") }
        }
    }
}

extension RunReport.ErrorReport {
    init(loadError error: ProgramError, path: String) {
        kind = "load"
        code = error.code
        message = "\(path): \(error)"
        pc = error.instructionIndex
        if case .line(let number) = error.location { line = number }
    }
}
