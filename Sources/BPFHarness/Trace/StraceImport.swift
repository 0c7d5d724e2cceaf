import Foundation
import BPFSession

/// Reads what `strace -f` writes (docs/traces.md, "strace import"):
///
/// - a line per call, `[PID ][TIME ]NAME(ARGS) = RET[ ERRNO (text)][ <DURATION>]`, where
///   PID is `12345` (`-f -o FILE`) or `[pid 12345]` (`-f` to the terminal) and TIME is
///   `HH:MM:SS.ffffff` (`-tt`) or `SECONDS.ffffff` (`-ttt`); DURATION comes with `-T`;
/// - `NAME(ARGS <unfinished ...>` and, later, `<... NAME resumed>ARGS) = RET`: the first
///   becomes an enter-only event at its place, the second an exit-only one at its place,
///   so other tasks' calls in between keep their order;
/// - `+++ exited ...`, `--- SIGNAL ... ---` and strace's own messages are skipped.
///
/// Arguments: quoted strings (C escapes; a `...` after the quote marks strace's
/// truncation) become NUL-terminated strings in user memory; numbers (decimal, hex,
/// octal `0644`) and `NULL` are passed as they are; symbolic constants strace decodes
/// (`AT_FDCWD`, `O_RDONLY|O_CLOEXEC`, ...) are turned back into numbers from a table of
/// the common ones (x86-64 values; an unknown name counts as 0); structures, arrays and
/// anything else are not re-encoded: the program sees a pointer with no memory behind it.
/// `= -1 ENOENT (...)` returns -2 (the errno's negative), `= ?` no value.
///
/// strace does not print the task's name, uid, gid or CPU: a task's comm is its parent's
/// (a fork, vfork or clone that is under way when an unknown pid shows up) until a
/// successful `execve` names it after the program's file; uid, gid and CPU are 0.
struct StraceParser {
    let source: String
    var events: [SyscallEvent] = []
    private var previousTime: UInt64?
    private var comms: [UInt32: String] = [:]
    /// Arguments of calls under way, by pid.
    private var unfinished: [UInt32: (name: String, arguments: [SyscallArgument], text: String)] = [:]
    private var lastPID: UInt32 = EmulatedTask().pid

    init(source: String) {
        self.source = source
    }

    mutating func parse(_ text: String) throws(TraceError) {
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            try parseLine(Substring(line), number: lineNumber)
        }
    }

    private mutating func parseLine(_ full: Substring, number: Int) throws(TraceError) {
        let file = source
        func fail(_ message: String) -> TraceError { TraceError(file: file, line: number, message: message) }
        var rest = full
        // [pid N] or N
        var pid: UInt32?
        if rest.hasPrefix("[pid") {
            guard let close = rest.firstIndex(of: "]"),
                let value = UInt32(rest[rest.index(rest.startIndex, offsetBy: 4)..<close].trimmingCharacters(in: .whitespaces))
            else { throw fail("a '[pid N]' prefix without a number") }
            pid = value
            rest = rest[rest.index(after: close)...].drop(while: { $0 == " " })
        } else if let space = rest.firstIndex(of: " "), let value = UInt32(rest[..<space]) {
            pid = value
            rest = rest[space...].drop(while: { $0 == " " })
        }
        // The time stamp.
        var time: UInt64?
        if let first = rest.first, first.isNumber, let space = rest.firstIndex(of: " "),
            rest[..<space].contains(".") || rest[..<space].contains(":")
        {
            guard let parsed = SyscallTrace.parseClock(String(rest[..<space])) else {
                throw fail("'\(rest[..<space])' is not a time stamp (HH:MM:SS.ffffff or SECONDS.ffffff)")
            }
            time = parsed
            rest = rest[space...].drop(while: { $0 == " " })
        }
        if rest.hasPrefix("+++") || rest.hasPrefix("---") || rest.hasPrefix("strace:") {
            return
        }
        let pidValue = pid ?? lastPID
        lastPID = pidValue
        let eventTime = time ?? previousTime.map { $0 &+ SyscallTrace.defaultStep } ?? SyscallTrace.firstTime
        previousTime = eventTime

        // <... NAME resumed>ARGS) = RET
        if rest.hasPrefix("<...") {
            guard let marker = rest.range(of: " resumed>") else { throw fail("a '<...' line without 'resumed>'") }
            let name = rest[rest.index(rest.startIndex, offsetBy: 4)..<marker.lowerBound].trimmingCharacters(
                in: .whitespaces)
            let pending = unfinished.removeValue(forKey: pidValue)
            let body = rest[marker.upperBound...]
            let (argumentText, tail) = try splitArguments(body, fail: fail)
            var arguments = pending?.name == name ? pending!.arguments : []
            arguments += try parseArguments(argumentText, fail: fail)
            let (returnValue, duration) = try parseResult(tail, fail: fail)
            guard let returnValue else { return }
            try emit(
                name: name, pid: pidValue, time: eventTime, duration: duration, arguments: arguments,
                returnValue: returnValue, phase: .exit, line: number, fail: fail)
            return
        }
        // NAME(ARGS) = RET, or NAME(ARGS <unfinished ...>
        guard let open = rest.firstIndex(of: "("),
            rest[..<open].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), open > rest.startIndex
        else { throw fail("not a system call line: '\(full)'") }
        let name = String(rest[..<open])
        let afterOpen = rest[rest.index(after: open)...]
        if let marker = afterOpen.range(of: "<unfinished ...>") {
            let arguments = try parseArguments(afterOpen[..<marker.lowerBound], fail: fail)
            unfinished[pidValue] = (name, arguments, String(afterOpen[..<marker.lowerBound]))
            try emit(
                name: name, pid: pidValue, time: eventTime, duration: nil, arguments: arguments, returnValue: nil,
                phase: .enter, line: number, fail: fail)
            return
        }
        let (argumentText, tail) = try splitArguments(afterOpen, fail: fail)
        let arguments = try parseArguments(argumentText, fail: fail)
        let (returnValue, duration) = try parseResult(tail, fail: fail)
        try emit(
            name: name, pid: pidValue, time: eventTime, duration: duration, arguments: arguments,
            returnValue: returnValue, phase: returnValue == nil ? .enter : .both, line: number, fail: fail)
    }

    private mutating func emit(
        name: String, pid: UInt32, time: UInt64, duration: UInt64?, arguments: [SyscallArgument],
        returnValue: Int64?, phase: SyscallEvent.Phase, line: Int, fail: (String) -> TraceError
    ) throws(TraceError) {
        guard let entry = SyscallTrace.syscall(named: name) else {
            throw fail("unknown system call '\(name)'")
        }
        guard arguments.count <= 6 else { throw fail("\(arguments.count) arguments: a system call takes at most 6") }
        if comms[pid] == nil {
            // A task strace has not seen yet: the child of a fork under way.
            let parent = unfinished.first { ["fork", "vfork", "clone", "clone3"].contains($0.value.name) }?.key
            comms[pid] = parent.flatMap { comms[$0] } ?? events.last?.task.comm ?? EmulatedTask().comm
        }
        let task = EmulatedTask(pid: pid, tgid: pid, uid: 0, gid: 0, comm: comms[pid]!)
        events.append(
            SyscallEvent(
                line: line, time: time, duration: duration, cpu: 0, task: task, syscall: entry, arguments: arguments,
                returnValue: returnValue, phase: phase))
        guard let returnValue, returnValue >= 0 else { return }
        switch name {
        case "execve", "execveat":
            // The kernel renames the task in exec (`__set_task_comm` with the file's basename).
            let index = name == "execve" ? 0 : 1
            if index < arguments.count, case .string(let path) = arguments[index] {
                let base = path.split(separator: "/").last.map(String.init) ?? path
                comms[pid] = String(decoding: Array(base.utf8.prefix(15)), as: UTF8.self)
            }
        case "fork", "vfork", "clone", "clone3":
            if returnValue > 0, returnValue <= Int64(UInt32.max) { comms[UInt32(returnValue)] = comms[pid] }
        default: break
        }
    }

    /// Splits `ARGS) REST` at the parenthesis that closes the call.
    private func splitArguments(_ text: Substring, fail: (String) -> TraceError) throws(TraceError) -> (
        Substring, Substring
    ) {
        var depth = 0
        var quoted = false
        var escaped = false
        for index in text.indices {
            let character = text[index]
            if quoted {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { quoted = false }
                continue
            }
            switch character {
            case "\"": quoted = true
            case "(", "[", "{": depth += 1
            case "]", "}": depth -= 1
            case ")":
                if depth == 0 { return (text[..<index], text[text.index(after: index)...]) }
                depth -= 1
            default: break
            }
        }
        throw fail("no ')' closes the argument list")
    }

    /// Splits arguments at top-level commas and reads each.
    private func parseArguments(_ text: Substring, fail: (String) -> TraceError) throws(TraceError)
        -> [SyscallArgument]
    {
        var parts: [Substring] = []
        var depth = 0
        var quoted = false
        var escaped = false
        var start = text.startIndex
        for index in text.indices {
            let character = text[index]
            if quoted {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { quoted = false }
                continue
            }
            switch character {
            case "\"": quoted = true
            case "(", "[", "{": depth += 1
            case ")", "]", "}": depth -= 1
            case "," where depth == 0:
                parts.append(text[start..<index])
                start = text.index(after: index)
            default: break
            }
        }
        parts.append(text[start...])
        var arguments: [SyscallArgument] = []
        for (index, part) in parts.enumerated() {
            var item = part.trimmingCharacters(in: .whitespaces)
            if let comment = item.range(of: "/*") { item = item[..<comment.lowerBound].trimmingCharacters(in: .whitespaces) }
            if item.isEmpty {
                if index == parts.count - 1 { continue }  // "wait4(-1, " before <unfinished ...>
                throw fail("argument \(index + 1) is empty")
            }
            arguments.append(try Self.argument(item, fail: fail))
        }
        return arguments
    }

    static func argument(_ text: String, fail: (String) -> TraceError) throws(TraceError) -> SyscallArgument {
        if text.hasPrefix("\"") {
            return .string(try unescape(text, fail: fail))
        }
        if text == "NULL" { return .value(0) }
        if let number = integer(text) { return .value(number) }
        if let first = text.first, first.isLetter || first == "_" {
            // FLAG|FLAG|0x10 or a single constant.
            var value: UInt64 = 0
            for piece in text.split(separator: "|") {
                let name = piece.trimmingCharacters(in: .whitespaces)
                if let number = integer(name) {
                    value |= number
                } else if let known = constants[name] {
                    value |= UInt64(bitPattern: known)
                } else if !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                    return .pointer(unknownAddress)
                }
            }
            return .value(value)
        }
        return .pointer(unknownAddress)
    }

    /// The address strace's structures and arrays are passed at: no memory is there.
    static let unknownAddress: UInt64 = 0x7fff_0000_0000

    static func integer(_ text: String) -> UInt64? {
        var body = Substring(text)
        let negative = body.hasPrefix("-")
        if negative { body = body.dropFirst() }
        let magnitude: UInt64?
        if body.hasPrefix("0x") {
            magnitude = UInt64(body.dropFirst(2), radix: 16)
        } else if body.count > 1, body.hasPrefix("0") {
            magnitude = UInt64(body.dropFirst(), radix: 8)
        } else {
            magnitude = UInt64(body)
        }
        guard let magnitude else { return nil }
        return negative ? 0 &- magnitude : magnitude
    }

    /// A quoted C string as strace prints it (`\n`, `\t`, `\"`, `\\`, octal `\177`, `\x1f`),
    /// with a trailing `...` (truncation) dropped.
    static func unescape(_ text: String, fail: (String) -> TraceError) throws(TraceError) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 1
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "\"") {
                let rest = utf8[(index + 1)...]
                guard rest.isEmpty || rest.elementsEqual("...".utf8) else {
                    throw fail("text after the string \(text)")
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\"), index + 1 < utf8.count {
                index += 1
                let code = utf8[index]
                switch code {
                case UInt8(ascii: "n"): bytes.append(0x0a)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "r"): bytes.append(0x0d)
                case UInt8(ascii: "v"): bytes.append(0x0b)
                case UInt8(ascii: "f"): bytes.append(0x0c)
                case UInt8(ascii: "x"):
                    var value: UInt8 = 0
                    var digits = 0
                    while digits < 2, index + 1 < utf8.count, let digit = hexDigit(utf8[index + 1]) {
                        value = value << 4 | digit
                        index += 1
                        digits += 1
                    }
                    bytes.append(value)
                case UInt8(ascii: "0")...UInt8(ascii: "7"):
                    var value = UInt32(code - UInt8(ascii: "0"))
                    var digits = 1
                    while digits < 3, index + 1 < utf8.count, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(utf8[index + 1]) {
                        value = value * 8 + UInt32(utf8[index + 1] - UInt8(ascii: "0"))
                        index += 1
                        digits += 1
                    }
                    bytes.append(UInt8(truncatingIfNeeded: value))
                default: bytes.append(code)
                }
                index += 1
                continue
            }
            bytes.append(byte)
            index += 1
        }
        throw fail("an unterminated string \(text)")
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// ` = RET[ ERRNO (text)][ <DURATION>]`: the return value (nil for `?`) and duration.
    private func parseResult(_ tail: Substring, fail: (String) -> TraceError) throws(TraceError) -> (
        Int64?, UInt64?
    ) {
        var rest = tail.trimmingCharacters(in: .whitespaces)[...]
        guard rest.hasPrefix("=") else { throw fail("no ' = ' and return value after the arguments") }
        rest = rest.dropFirst().drop(while: { $0 == " " })
        var duration: UInt64?
        if rest.hasSuffix(">"), let open = rest.lastIndex(of: "<") {
            let text = rest[rest.index(after: open)..<rest.index(before: rest.endIndex)]
            if let value = SyscallTrace.parseClock(String(text)) {
                duration = value
                rest = rest[..<open].trimmingCharacters(in: .whitespaces)[...]
            }
        }
        let words = rest.split(separator: " ", maxSplits: 2)
        guard let first = words.first else { throw fail("no return value after ' = '") }
        if first == "?" { return (nil, duration) }
        // `= 3</etc/hostname>` (-y) decorates the number.
        let numberText = first.prefix { $0 != "<" }
        guard let value = Self.integer(String(numberText)) else {
            throw fail("'\(first)' is not a return value")
        }
        var result = Int64(bitPattern: value)
        if result == -1, words.count > 1, let errno = Self.errnos[String(words[1])] {
            result = -Int64(errno)
        }
        return (result, duration)
    }

    /// Linux errno values (include/uapi/asm-generic/errno-base.h and errno.h), and the
    /// kernel-internal restart codes strace shows (include/linux/errno.h).
    static let errnos: [String: Int] = [
        "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7, "ENOEXEC": 8, "EBADF": 9,
        "ECHILD": 10, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "ENOTBLK": 15, "EBUSY": 16,
        "EEXIST": 17, "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22, "ENFILE": 23,
        "EMFILE": 24, "ENOTTY": 25, "ETXTBSY": 26, "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29, "EROFS": 30,
        "EMLINK": 31, "EPIPE": 32, "EDOM": 33, "ERANGE": 34, "EDEADLK": 35, "ENAMETOOLONG": 36, "ENOLCK": 37,
        "ENOSYS": 38, "ENOTEMPTY": 39, "ELOOP": 40, "ENOMSG": 42, "EIDRM": 43, "ENODATA": 61, "ETIME": 62,
        "EOVERFLOW": 75, "EILSEQ": 84, "ENOTSOCK": 88, "EDESTADDRREQ": 89, "EMSGSIZE": 90, "EPROTOTYPE": 91,
        "ENOPROTOOPT": 92, "EPROTONOSUPPORT": 93, "EOPNOTSUPP": 95, "EAFNOSUPPORT": 97, "EADDRINUSE": 98,
        "EADDRNOTAVAIL": 99, "ENETDOWN": 100, "ENETUNREACH": 101, "ECONNABORTED": 103, "ECONNRESET": 104,
        "ENOBUFS": 105, "EISCONN": 106, "ENOTCONN": 107, "ETIMEDOUT": 110, "ECONNREFUSED": 111,
        "EHOSTUNREACH": 113, "EALREADY": 114, "EINPROGRESS": 115, "ESTALE": 116, "EDQUOT": 122, "ECANCELED": 125,
        "EOWNERDEAD": 130, "ENOTRECOVERABLE": 131, "ERESTARTSYS": 512, "ERESTARTNOINTR": 513,
        "ERESTARTNOHAND": 514, "ERESTART_RESTARTBLOCK": 516, "ENOTSUPP": 524,
    ]

    /// Symbolic constants strace prints for common arguments, with their x86-64 values
    /// (include/uapi/asm-generic/fcntl.h, linux/fcntl.h, asm-generic/mman-common.h,
    /// linux/wait.h, unistd.h).
    static let constants: [String: Int64] = [
        "AT_FDCWD": -100, "AT_SYMLINK_NOFOLLOW": 0x100, "AT_REMOVEDIR": 0x200, "AT_SYMLINK_FOLLOW": 0x400,
        "AT_NO_AUTOMOUNT": 0x800, "AT_EMPTY_PATH": 0x1000, "AT_EACCESS": 0x200,
        "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_CREAT": 0o100, "O_EXCL": 0o200, "O_NOCTTY": 0o400,
        "O_TRUNC": 0o1000, "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000, "O_DSYNC": 0o10000, "O_ASYNC": 0o20000,
        "O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000, "O_DIRECTORY": 0o200000, "O_NOFOLLOW": 0o400000,
        "O_NOATIME": 0o1000000, "O_CLOEXEC": 0o2000000, "O_SYNC": 0o4010000, "O_PATH": 0o10000000,
        "O_TMPFILE": 0o20200000,
        "F_OK": 0, "R_OK": 4, "W_OK": 2, "X_OK": 1, "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2,
        "PROT_NONE": 0, "PROT_READ": 1, "PROT_WRITE": 2, "PROT_EXEC": 4, "MAP_SHARED": 1, "MAP_PRIVATE": 2,
        "MAP_FIXED": 0x10, "MAP_ANONYMOUS": 0x20, "MAP_DENYWRITE": 0x800, "MAP_NORESERVE": 0x4000,
        "WNOHANG": 1, "WUNTRACED": 2, "__WALL": 0x4000_0000, "P_ALL": 0, "P_PID": 1,
        "STDIN_FILENO": 0, "STDOUT_FILENO": 1, "STDERR_FILENO": 2,
    ]
}

extension SyscallTrace {
    /// Reads strace output (see `StraceParser`); errors name `source` and the line.
    public init(strace text: String, source: String) throws(TraceError) {
        var parser = StraceParser(source: source)
        try parser.parse(text)
        self.init(source: source, events: parser.events)
    }
}
