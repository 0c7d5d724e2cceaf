import BPFSession
import Foundation

/// A JSON value as a trace line holds it, integers kept exact (64-bit, signed or not).
enum TraceJSON: Decodable {
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case bool(Bool)
    case null
    case array([TraceJSON])
    case object([String: TraceJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([TraceJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: TraceJSON].self))
        }
    }

    /// A 64-bit register value: signed numbers as two's complement.
    var bits: UInt64? {
        switch self {
        case .integer(let value): UInt64(bitPattern: value)
        case .unsigned(let value): value
        default: nil
        }
    }

    var describe: String {
        switch self {
        case .integer(let value): String(value)
        case .unsigned(let value): String(value)
        case .number(let value): String(value)
        case .string(let value): "\"\(value)\""
        case .bool(let value): String(value)
        case .null: "null"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension SyscallTrace {
    static let knownKeys: Set<String> = [
        "time", "duration", "cpu", "pid", "tgid", "uid", "gid", "comm", "syscall", "args", "ret", "phase",
    ]

    /// Parses the JSON Lines trace format (docs/traces.md): one object per line; blank
    /// lines and lines starting with `#` are skipped. Errors name `source` and the line.
    public init(jsonLines text: String, source: String) throws(TraceError) {
        var events: [SyscallEvent] = []
        var previous: SyscallEvent?
        let decoder = JSONDecoder()
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ message: String) -> TraceError { TraceError(file: source, line: lineNumber, message: message) }
            let value: TraceJSON
            do {
                value = try decoder.decode(TraceJSON.self, from: Data(line.utf8))
            } catch {
                throw fail("not a JSON object")
            }
            guard case .object(let object) = value else { throw fail("not a JSON object, but \(value.describe)") }
            let event = try Self.event(object, line: lineNumber, previous: previous, fail: fail)
            events.append(event)
            previous = event
        }
        self.init(source: source, events: events)
    }

    private static func event(
        _ object: [String: TraceJSON], line: Int, previous: SyscallEvent?, fail: (String) -> TraceError
    ) throws(TraceError) -> SyscallEvent {
        for key in object.keys.sorted() where !knownKeys.contains(key) {
            throw fail("unknown key '\(key)' (keys: \(knownKeys.sorted().joined(separator: ", ")))")
        }
        func unsigned(_ key: String, max: UInt64) throws(TraceError) -> UInt64? {
            guard let value = object[key] else { return nil }
            switch value {
            case .integer(let number) where number >= 0 && UInt64(number) <= max: return UInt64(number)
            case .unsigned(let number) where number <= max: return number
            default: throw fail("'\(key)' must be an integer from 0 to \(max), not \(value.describe)")
            }
        }
        // The syscall, by name or number.
        let syscall: SyscallTable.Entry
        switch object["syscall"] {
        case .string(let name):
            guard let entry = Self.syscall(named: name) else {
                throw fail("unknown system call '\(name)' (x86-64 names as in /sys/kernel/tracing/events/syscalls)")
            }
            syscall = entry
        case .integer(let number):
            guard let entry = Int32(exactly: number).flatMap(SyscallTable.entry(number:)) else {
                throw fail("unknown x86-64 system call number \(number)")
            }
            syscall = entry
        case nil: throw fail("no 'syscall'")
        case let other?: throw fail("'syscall' must be a name or a number, not \(other.describe)")
        }
        // The time: nanoseconds, or strace's HH:MM:SS.ffffff / seconds.ffffff.
        var time = previous.map { $0.time &+ defaultStep } ?? firstTime
        switch object["time"] {
        case nil: break
        case .string(let text):
            guard let parsed = parseClock(text) else {
                throw fail("'time' \"\(text)\" is not HH:MM:SS.ffffff or SECONDS.ffffff")
            }
            time = parsed
        case let value?:
            guard let parsed = try unsigned("time", max: UInt64.max) else { throw fail("bad 'time' \(value.describe)") }
            time = parsed
        }
        var task = previous?.task ?? EmulatedTask()
        if let pid = try unsigned("pid", max: UInt64(UInt32.max)) {
            task.pid = UInt32(pid)
            task.tgid = UInt32(pid)
        }
        if let tgid = try unsigned("tgid", max: UInt64(UInt32.max)) { task.tgid = UInt32(tgid) }
        if let uid = try unsigned("uid", max: UInt64(UInt32.max)) { task.uid = UInt32(uid) }
        if let gid = try unsigned("gid", max: UInt64(UInt32.max)) { task.gid = UInt32(gid) }
        switch object["comm"] {
        case nil: break
        case .string(let comm):
            guard comm.utf8.count <= 15 else {
                throw fail("'comm' \"\(comm)\" is longer than 15 bytes (TASK_COMM_LEN is 16 with the NUL)")
            }
            task.comm = comm
        case let other?: throw fail("'comm' must be a string, not \(other.describe)")
        }
        let cpu = try unsigned("cpu", max: UInt64(UInt32.max)).map(UInt32.init) ?? previous?.cpu ?? 0
        let duration = try unsigned("duration", max: UInt64.max)
        // Arguments.
        var arguments: [SyscallArgument] = []
        switch object["args"] {
        case nil: break
        case .array(let list):
            guard list.count <= 6 else { throw fail("\(list.count) arguments: a system call takes at most 6") }
            for (index, item) in list.enumerated() {
                arguments.append(try argument(item, index: index, fail: fail))
            }
        case let other?: throw fail("'args' must be an array, not \(other.describe)")
        }
        var returnValue: Int64?
        switch object["ret"] {
        case nil, .null?: break
        case .integer(let value): returnValue = value
        case .unsigned(let value): returnValue = Int64(bitPattern: value)
        case let other?: throw fail("'ret' must be an integer, not \(other.describe)")
        }
        var phase: SyscallEvent.Phase?
        switch object["phase"] {
        case nil: break
        case .string(let name) where name == "enter" || name == "exit":
            phase = name == "enter" ? .enter : .exit
        case let other?: throw fail("'phase' must be \"enter\" or \"exit\", not \(other.describe)")
        }
        if phase == .exit && returnValue == nil { throw fail("\"phase\": \"exit\" needs 'ret'") }
        return SyscallEvent(
            line: line, time: time, duration: duration, cpu: cpu, task: task, syscall: syscall, arguments: arguments,
            returnValue: returnValue, phase: phase)
    }

    private static func argument(_ item: TraceJSON, index: Int, fail: (String) -> TraceError) throws(TraceError)
        -> SyscallArgument
    {
        if let bits = item.bits { return .value(bits) }
        guard case .object(let object) = item, object.count == 1, let (key, value) = object.first else {
            throw fail(
                "argument \(index + 1) must be an integer or one of {\"str\": ...}, {\"hex\": ...}, {\"size\": N}, {\"ptr\": N}, not \(item.describe)"
            )
        }
        switch (key, value) {
        case ("str", .string(let text)):
            return .string(text)
        case ("hex", .string(let text)):
            guard let bytes = Hex.bytes(text) else { throw fail("argument \(index + 1): \"\(text)\" is not hex") }
            return .bytes(bytes)
        case ("size", .integer(let count)) where count >= 0 && count <= 1 << 24:
            return .zeroed(Int(count))
        case ("ptr", let address) where address.bits != nil:
            return .pointer(address.bits!)
        default:
            throw fail(
                "argument \(index + 1): {\"\(key)\": \(value.describe)} is not {\"str\": TEXT}, {\"hex\": HEX}, {\"size\": 0...16777216} or {\"ptr\": ADDRESS}"
            )
        }
    }

    /// `HH:MM:SS.ffffff` (strace -tt) or `SECONDS.ffffff` (strace -ttt) as nanoseconds;
    /// the fraction may have up to 9 digits.
    static func parseClock(_ text: String) -> UInt64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty else { return nil }
        var seconds: UInt64 = 0
        let fields = whole.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 1 || fields.count == 3 else { return nil }
        for (index, field) in fields.enumerated() {
            guard !field.isEmpty, field.allSatisfy(\.isASCII), let value = UInt64(field) else { return nil }
            if index > 0 && value >= 60 { return nil }
            let (scaled, overflow) = seconds.multipliedReportingOverflow(by: fields.count == 1 ? 1 : 60)
            let (sum, carry) = scaled.addingReportingOverflow(value)
            if overflow || carry { return nil }
            seconds = sum
        }
        var nanoseconds: UInt64 = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.count <= 9, let value = UInt64(fraction) else { return nil }
            nanoseconds = value
            for _ in fraction.count..<9 { nanoseconds *= 10 }
        }
        let (total, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, carry) = total.addingReportingOverflow(nanoseconds)
        return overflow || carry ? nil : sum
    }
}
