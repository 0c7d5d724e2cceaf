import BPFSession

/// Replays system-call events through the tracing programs of one `Session`: each event
/// sets the emulated task, CPU and clock, places its pointer arguments in user memory and
/// fires every selected program attached where the event passes, in the order of
/// docs/traces.md. Map state is the session's, shared by all programs and events.
/// Nothing is printed: results come back as values.
///
/// ```swift
/// let session = try Session(object: try BPFObject(path: "opensnoop.bpf.o"))
/// let replay = try TraceReplay(session: session)
/// let result = replay.replay(try SyscallTrace(contentsOf: "trace.jsonl"))
/// result.events[0].firings[0].run.events   // the ring-buffer records of the first program
/// ```
public final class TraceReplay {
    public let session: Session
    /// The programs that may fire, by index in the session, with where they attach.
    public let attachments: [TraceAttachment]
    private let userMemory: UserMemory

    /// Selects the tracing programs of `session`: all of them attached to a system-call
    /// event (see `TraceAttachment`), or only those named in `programs`. A named program
    /// that is not a tracing program of a known attachment is an error.
    public init(session: Session, programs: [String]? = nil) throws(TraceReplayError) {
        self.session = session
        var attachments: [TraceAttachment] = []
        if let programs {
            for name in programs {
                guard let index = session.definitions.firstIndex(where: { $0.name == name }) else {
                    throw .unknownProgram(name, known: session.programNames)
                }
                let definition = session.definitions[index]
                guard let attachment = TraceAttachment(definition, index: index) else {
                    throw .notAttachable(name, section: definition.section)
                }
                if !attachments.contains(where: { $0.program == index }) { attachments.append(attachment) }
            }
        } else {
            for (index, definition) in session.definitions.enumerated() {
                if let attachment = TraceAttachment(definition, index: index) { attachments.append(attachment) }
            }
            guard !attachments.isEmpty else { throw .noTracingPrograms(session.programNames) }
        }
        self.attachments = attachments
        userMemory = UserMemory(machine: session.machine)
    }

    /// Checks every selected program as the kernel's verifier would at load
    /// (`Session.verify`), as `bpfsim trace` does unless `--no-verify`; throws the first
    /// refusal.
    public func verify() throws(SessionError) {
        for attachment in attachments { try session.verify(attachment.program) }
    }

    /// Replays every event of `trace`, in order.
    public func replay(_ trace: SyscallTrace) -> TraceReplayResult {
        TraceReplayResult(events: trace.events.map(replay))
    }

    /// Replays one event: its enter side, then its exit side, as its phase says.
    public func replay(_ event: SyscallEvent) -> TraceEventResult {
        var result = TraceEventResult(event: event, firings: [])
        let machine = session.machine
        guard Int(event.cpu) < machine.world.world.cpuCount else {
            result.error =
                "line \(event.line): CPU \(event.cpu), but the emulated machine has \(machine.world.world.cpuCount) (--cpus)"
            return result
        }
        machine.world.task = event.task
        machine.world.cpu = event.cpu
        machine.world.setClock(event.time)
        let values = userMemory.place(event.arguments)
        let number = event.syscall.number
        if event.firesEnter {
            for point in TraceAttachment.Point.enterOrder {
                for attachment in attachments where attachment.point == point && attachment.matches(event.syscall) {
                    let input: ProgramInput
                    switch point {
                    case .syscallKprobe:
                        // The wrapper __x64_sys_NAME(const struct pt_regs *regs): di points to the
                        // user registers saved at entry (arch/x86/entry/syscall_64.c).
                        let pointer = userMemory.placeKernel(
                            PtRegs.syscallEntry(number: number, arguments: values).bytes)
                        input = .event(.registers(PtRegs.functionEntry(arguments: [pointer])))
                    default:
                        input = .event(.syscallEnter(number: number, arguments: values))
                    }
                    result.firings.append(fire(attachment, input: input))
                }
            }
        }
        if event.firesExit {
            let returnValue = event.returnValue ?? 0
            if let duration = event.duration {
                machine.world.setClock(max(machine.world.now, event.time &+ duration))
            }
            for point in TraceAttachment.Point.exitOrder {
                for attachment in attachments where attachment.point == point && attachment.matches(event.syscall) {
                    let input: ProgramInput =
                        point == .syscallKretprobe
                        ? .event(.functionReturn(UInt64(bitPattern: returnValue)))
                        : .event(.syscallExit(number: number, returnValue: returnValue))
                    result.firings.append(fire(attachment, input: input))
                }
            }
        }
        return result
    }

    private func fire(_ attachment: TraceAttachment, input: ProgramInput) -> TraceFiring {
        TraceFiring(attachment: attachment, run: session.run(attachment.program, input: input))
    }
}

/// Where a tracing program attaches, as far as system-call events go: its section
/// (`tracepoint/syscalls/sys_enter_openat`, `kprobe/__x64_sys_openat`, `ksyscall/openat`,
/// `raw_tp/sys_exit`, ...) read as libbpf reads it.
public struct TraceAttachment: Sendable, Hashable {
    public enum Point: String, Sendable, Hashable, CaseIterable {
        /// `tracepoint/syscalls/sys_enter_NAME`
        case syscallEnter = "sys_enter"
        /// `tracepoint/raw_syscalls/sys_enter`
        case rawSyscallsEnter = "raw_syscalls:sys_enter"
        /// `raw_tracepoint/sys_enter`
        case rawTracepointEnter = "raw_tp:sys_enter"
        /// `kprobe/__x64_sys_NAME`, `ksyscall/NAME`
        case syscallKprobe = "kprobe"
        /// `tracepoint/syscalls/sys_exit_NAME`
        case syscallExit = "sys_exit"
        /// `tracepoint/raw_syscalls/sys_exit`
        case rawSyscallsExit = "raw_syscalls:sys_exit"
        /// `raw_tracepoint/sys_exit`
        case rawTracepointExit = "raw_tp:sys_exit"
        /// `kretprobe/__x64_sys_NAME`, `kretsyscall/NAME`
        case syscallKretprobe = "kretprobe"

        /// The order programs fire in on entry, then on exit (docs/traces.md).
        public static let enterOrder: [Point] = [.syscallEnter, .rawSyscallsEnter, .rawTracepointEnter, .syscallKprobe]
        public static let exitOrder: [Point] = [
            .syscallExit, .rawSyscallsExit, .rawTracepointExit, .syscallKretprobe,
        ]

        public var isExit: Bool { Self.exitOrder.contains(self) }
    }

    /// The program's index in the session.
    public let program: Int
    public let name: String
    public let section: String
    public let point: Point
    /// The system call, for points that name one (tracepoint name: `openat`,
    /// `newstat`); nil for the raw points, which see every call.
    public let syscall: String?

    /// Reads `definition`'s section; nil when it is not a system-call attachment.
    public init?(_ definition: ProgramDefinition, index: Int) {
        let parts = definition.section.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        let (prefix, target) = (parts[0], parts[1])
        var syscall: String?
        let point: Point
        switch prefix {
        case "tracepoint", "tp":
            switch target {
            case "raw_syscalls/sys_enter": point = .rawSyscallsEnter
            case "raw_syscalls/sys_exit": point = .rawSyscallsExit
            case _ where target.hasPrefix("syscalls/sys_enter_"):
                point = .syscallEnter
                syscall = String(target.dropFirst("syscalls/sys_enter_".count))
            case _ where target.hasPrefix("syscalls/sys_exit_"):
                point = .syscallExit
                syscall = String(target.dropFirst("syscalls/sys_exit_".count))
            default: return nil
            }
        case "raw_tracepoint", "raw_tp":
            switch target {
            case "sys_enter": point = .rawTracepointEnter
            case "sys_exit": point = .rawTracepointExit
            default: return nil
            }
        case "kprobe", "kretprobe":
            guard target.hasPrefix("__x64_sys_") else { return nil }
            point = prefix == "kprobe" ? .syscallKprobe : .syscallKretprobe
            syscall = String(target.dropFirst("__x64_sys_".count))
        case "ksyscall", "kretsyscall":
            point = prefix == "ksyscall" ? .syscallKprobe : .syscallKretprobe
            syscall = SyscallTrace.aliases[target] ?? target
        default:
            return nil
        }
        if let syscall, SyscallTable.entry(named: syscall) == nil { return nil }
        self.program = index
        self.name = definition.name
        self.section = definition.section
        self.point = point
        self.syscall = syscall
    }

    public func matches(_ entry: SyscallTable.Entry) -> Bool { syscall == nil || syscall == entry.name }
}

/// One program run for one event.
public struct TraceFiring: Sendable {
    public var attachment: TraceAttachment
    public var run: ProgramRun

    /// Whether the program stopped on a fault (or its input was refused).
    public var failed: Bool { run.execution.fault != nil || run.refusal != nil }
}

/// What one event did.
public struct TraceEventResult: Sendable {
    public var event: SyscallEvent
    /// The programs that ran, in order.
    public var firings: [TraceFiring]
    /// Why the event could not be replayed (nothing ran), naming its line.
    public var error: String?

    /// Every ring-buffer and perf-buffer record the event's programs sent, in order.
    public var records: [EventRecord] { firings.flatMap(\.run.events) }
    public var printk: [String] { firings.flatMap(\.run.printk) }
}

/// What a whole trace did.
public struct TraceReplayResult: Sendable {
    public var events: [TraceEventResult]

    public var firingCount: Int { events.reduce(0) { $0 + $1.firings.count } }
    public var recordCount: Int { events.reduce(0) { $0 + $1.records.count } }
    public var faultCount: Int {
        events.reduce(0) { $0 + $1.firings.filter(\.failed).count + ($1.error == nil ? 0 : 1) }
    }
}

/// Why a replay could not start.
public struct TraceReplayError: Error, CustomStringConvertible, Sendable {
    public let description: String

    static func unknownProgram(_ name: String, known: [String]) -> TraceReplayError {
        TraceReplayError(description: "no program named '\(name)' (programs: \(known.joined(separator: ", ")))")
    }

    static func notAttachable(_ name: String, section: String) -> TraceReplayError {
        TraceReplayError(
            description:
                "program '\(name)' (section '\(section)') is not attached to a system-call event: tracepoint/syscalls/sys_enter_NAME, sys_exit_NAME, tracepoint/raw_syscalls/*, raw_tracepoint/sys_enter or sys_exit, kprobe/__x64_sys_NAME, kretprobe/__x64_sys_NAME, ksyscall/NAME or kretsyscall/NAME"
        )
    }

    static func noTracingPrograms(_ names: [String]) -> TraceReplayError {
        TraceReplayError(
            description:
                "no program is attached to a system-call event (programs: \(names.isEmpty ? "none" : names.joined(separator: ", ")))"
        )
    }
}
