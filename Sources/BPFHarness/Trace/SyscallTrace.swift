import Foundation
import BPFSession

/// A system-call trace: the events a tracing program sees, in order. Read from the JSON
/// Lines format of docs/traces.md (`init(jsonLines:source:)`) or from what `strace -f`
/// writes (`init(strace:source:)`).
public struct SyscallTrace: Sendable, Hashable {
    /// Where the trace came from (a file path), for messages.
    public var source: String
    public var events: [SyscallEvent]

    public init(source: String, events: [SyscallEvent]) {
        self.source = source
        self.events = events
    }
}

/// One system call as the trace records it: who made it, where and when, its arguments
/// and, when known, what it returned.
public struct SyscallEvent: Sendable, Hashable {
    /// Which sides of the call fire programs.
    public enum Phase: String, Sendable, Hashable, CaseIterable {
        /// `sys_enter` only.
        case enter
        /// `sys_exit` only.
        case exit
        /// `sys_enter`, then `sys_exit`.
        case both
    }

    /// The line of the trace file the event came from (1-based), for messages.
    public var line: Int
    /// Nanoseconds since boot at entry: what `bpf_ktime_get_ns` reads.
    public var time: UInt64
    /// How long the call took (strace `-T`); the exit side fires at `time + duration`.
    public var duration: UInt64?
    public var cpu: UInt32
    /// The task behind `bpf_get_current_pid_tgid`, `_uid_gid` and `_comm`.
    public var task: EmulatedTask
    /// The x86-64 system call: its number and its tracepoint name (`SyscallTable`).
    public var syscall: SyscallTable.Entry
    /// Up to six arguments.
    public var arguments: [SyscallArgument]
    /// What the call returned, when known.
    public var returnValue: Int64?
    public var phase: Phase

    public init(
        line: Int, time: UInt64, duration: UInt64? = nil, cpu: UInt32 = 0, task: EmulatedTask = EmulatedTask(),
        syscall: SyscallTable.Entry, arguments: [SyscallArgument] = [], returnValue: Int64? = nil, phase: Phase? = nil
    ) {
        self.line = line
        self.time = time
        self.duration = duration
        self.cpu = cpu
        self.task = task
        self.syscall = syscall
        self.arguments = arguments
        self.returnValue = returnValue
        self.phase = phase ?? (returnValue == nil ? .enter : .both)
    }

    public var firesEnter: Bool { phase != .exit }
    public var firesExit: Bool { phase != .enter }
}

/// A system call argument: a value passed as is, or user memory whose address is passed.
public enum SyscallArgument: Sendable, Hashable {
    /// A register value (negative numbers as two's complement).
    case value(UInt64)
    /// A NUL-terminated string in user memory (`{"str": ...}`).
    case string(String)
    /// A buffer in user memory (`{"hex": ...}`).
    case bytes([UInt8])
    /// `count` zero bytes in user memory, such as an output buffer (`{"size": N}`).
    case zeroed(Int)
    /// A raw address with no memory behind it (`{"ptr": N}`): reads of it fault.
    case pointer(UInt64)

    /// The bytes placed in user memory for this argument; nil when it is not a pointer
    /// to memory the trace provides.
    public var memory: [UInt8]? {
        switch self {
        case .value, .pointer: nil
        case .string(let text): Array(text.utf8) + [0]
        case .bytes(let bytes): bytes
        case .zeroed(let count): Array(repeating: 0, count: count)
        }
    }
}

/// Why a trace could not be read: names the file and line.
public struct TraceError: Error, CustomStringConvertible, Sendable, Hashable {
    public let file: String
    /// 1-based; 0 when the error is about the whole file.
    public let line: Int
    public let message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

extension SyscallTrace {
    /// The defaults of the first event (docs/traces.md): CPU 0, pid/tgid 1000, uid/gid 0,
    /// comm "bpfsim", at 1 s after boot (`World`'s clock).
    public static let firstTime: UInt64 = World().monotonicNanoseconds
    /// Time added to the previous event's when an event gives none.
    public static let defaultStep: UInt64 = 1_000
    /// strace's names where they differ from the kernel's tracepoint names, which
    /// `SyscallTable` uses (`SYSCALL_DEFINE2(newstat, ...)` is system call 4, `stat`).
    static let aliases: [String: String] = [
        "stat": "newstat", "fstat": "newfstat", "lstat": "newlstat", "sendfile": "sendfile64", "uname": "newuname",
        "umount2": "umount",
    ]

    /// The system call named `name` (kernel or strace spelling) or numbered `name`.
    public static func syscall(named name: String) -> SyscallTable.Entry? {
        if let number = Int32(name) { return SyscallTable.entry(number: number) }
        return SyscallTable.entry(named: aliases[name] ?? name)
    }

    /// Reads a trace file: JSON Lines, or strace output when `strace` is set.
    public init(contentsOf path: String, strace: Bool = false) throws(TraceError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TraceError(file: path, line: 0, message: "cannot read the file")
        }
        let text = String(decoding: data, as: UTF8.self)
        if strace {
            try self.init(strace: text, source: path)
        } else {
            try self.init(jsonLines: text, source: path)
        }
    }
}
