/// Tracing events turned into the context bytes a program of each tracing type reads,
/// chosen by the program's attach target (the section name after its prefix).
enum TraceContexts {
    /// The context for `event`, for a program of `kind` attached to `attachTarget`.
    static func bytes(
        for event: TraceEvent, kind: TracingContext.Kind, attachTarget: String?, context: TracingContext,
        machine: Machine
    ) throws(InputRefusal) -> [UInt8] {
        let pid = machine.world.task.pid
        let target = attachTarget ?? ""
        switch (kind, event) {
        case (.tracepoint, .syscallEnter(let number, let arguments)):
            if target == "raw_syscalls/sys_enter" {
                return TracepointRecord.rawSyscallEnter(number: Int64(number), arguments: arguments, pid: pid)
            }
            let entry = try syscall(target, prefix: "syscalls/sys_enter_")
            let slots = Array(
                (arguments + Array(repeating: 0, count: entry.arguments.count)).prefix(entry.arguments.count))
            return TracepointRecord.syscallEnter(number: number, arguments: slots, pid: pid)
        case (.tracepoint, .syscallExit(let number, let returnValue)):
            if target == "raw_syscalls/sys_exit" {
                return TracepointRecord.rawSyscallExit(number: Int64(number), returnValue: returnValue, pid: pid)
            }
            _ = try syscall(target, prefix: "syscalls/sys_exit_")
            return TracepointRecord.syscallExit(number: number, returnValue: returnValue, pid: pid)
        case (.rawTracepoint, .syscallEnter(let number, let arguments)):
            // raw_tp/sys_enter: (struct pt_regs *regs, long id).
            let regs = PtRegs.syscallEntry(number: number, arguments: arguments)
            let pointer = context.placeKernelMemory(regs.bytes, in: machine)
            return littleEndianBytes(pointer) + littleEndianBytes(UInt64(bitPattern: Int64(number)))
        case (.rawTracepoint, .syscallExit(let number, let returnValue)):
            // raw_tp/sys_exit: (struct pt_regs *regs, long ret).
            var regs = PtRegs()
            regs["orig_ax"] = UInt64(bitPattern: Int64(number))
            regs["ax"] = UInt64(bitPattern: returnValue)
            let pointer = context.placeKernelMemory(regs.bytes, in: machine)
            return littleEndianBytes(pointer) + littleEndianBytes(UInt64(bitPattern: returnValue))
        case (.rawTracepoint, .rawArguments(let arguments)):
            return arguments.flatMap(littleEndianBytes)
        case (.kprobe, .functionEntry(let arguments)):
            return PtRegs.functionEntry(arguments: arguments).bytes
        case (.kprobe, .functionReturn(let value)):
            return PtRegs.functionReturn(value).bytes
        case (.kprobe, .registers(let regs)):
            return regs.bytes
        default:
            throw InputRefusal(
                errno: 22, reason: "a \(kind.rawValue) program attached to '\(target)' cannot take \(event)")
        }
    }

    private static func syscall(_ target: String, prefix: String) throws(InputRefusal) -> SyscallTable.Entry {
        guard target.hasPrefix(prefix), let entry = SyscallTable.entry(named: String(target.dropFirst(prefix.count)))
        else {
            throw InputRefusal(
                errno: 22, reason: "tracepoint '\(target)' is not a \(prefix)NAME tracepoint bpfsim knows")
        }
        return entry
    }

    /// A zeroed context of the size the kernel would give, or nil when unknown.
    static func defaultInput(kind: TracingContext.Kind, attachTarget: String?) -> ProgramInput? {
        let target = attachTarget ?? ""
        switch kind {
        case .tracepoint:
            if target == "raw_syscalls/sys_enter" { return .event(.syscallEnter(number: 0, arguments: [])) }
            if target == "raw_syscalls/sys_exit" { return .event(.syscallExit(number: 0, returnValue: 0)) }
            if target.hasPrefix("syscalls/sys_enter_"),
                let entry = SyscallTable.entry(named: String(target.dropFirst("syscalls/sys_enter_".count)))
            {
                return .event(
                    .syscallEnter(
                        number: entry.number, arguments: Array(repeating: 0, count: entry.arguments.count)))
            }
            if target.hasPrefix("syscalls/sys_exit_"),
                let entry = SyscallTable.entry(named: String(target.dropFirst("syscalls/sys_exit_".count)))
            {
                return .event(.syscallExit(number: entry.number, returnValue: 0))
            }
            return nil
        case .rawTracepoint:
            if target == "sys_enter" { return .event(.syscallEnter(number: 0, arguments: [])) }
            if target == "sys_exit" { return .event(.syscallExit(number: 0, returnValue: 0)) }
            return .context(Array(repeating: 0, count: 96))
        case .kprobe:
            return .context(Array(repeating: 0, count: PtRegs.size))
        }
    }

    static func littleEndianBytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
    }
}
