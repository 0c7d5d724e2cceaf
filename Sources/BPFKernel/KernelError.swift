import Glibc

/// Why the kernel could not load, run or read something. One error type for the layer:
/// a stable `code`, the sentence for people, the errno behind it when there is one, and
/// the verifier's log when a program was refused. Every wording is in this file.
public struct KernelError: Error, CustomStringConvertible, Sendable, Hashable {
    /// `unavailable`, `open`, `load`, `unsupported`, `input`, `run`, `map`.
    public let code: String
    public let message: String
    /// The positive errno behind the error, when there is one.
    public let errno: Int32?
    /// The verifier log of a refused program; libbpf's own warnings otherwise.
    public var log: String?

    public var description: String { message }

    init(code: String, message: String, errno: Int32? = nil, log: String? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
        self.log = log
    }

    // MARK: Availability

    /// The one sentence that says why the kernel cannot be compared with here.
    static func unavailable(errno: Int32) -> KernelError {
        let reason: String
        switch errno {
        case EPERM:
            reason = "operation not permitted (run as root or with CAP_BPF to compare with the kernel)"
        case EACCES:
            reason = "permission denied (run as root or with CAP_BPF to compare with the kernel)"
        case ENOSYS:
            reason =
                "the bpf system call does not exist (a kernel without CONFIG_BPF_SYSCALL, or a sandbox that hides it)"
        default:
            reason = "\(Self.errnoText(errno)) when loading a two-instruction socket filter"
        }
        return KernelError(
            code: "unavailable", message: "the kernel's bpf() is not available here: " + reason, errno: errno)
    }

    static let disabledByEnvironment = KernelError(
        code: "unavailable",
        message:
            "the kernel's bpf() is not available here: BPFSIM_NO_KERNEL is set (unset it to compare with the kernel)")

    // MARK: Objects and programs

    static func open(_ path: String, errno: Int32, messages: [String]) -> KernelError {
        let reason = LibBPF.reason(in: messages).map { ": " + $0 } ?? ""
        return KernelError(
            code: "open", message: "libbpf cannot open \(path)\(reason) (\(errnoText(errno)))", errno: errno,
            log: messages.isEmpty ? nil : messages.joined(separator: "\n"))
    }

    /// `log` is the verifier's log when there is one; `messages` what libbpf said.
    static func load(_ path: String, program: String?, errno: Int32, log: String?, messages: [String]) -> KernelError {
        let what = program.map { "the kernel refused program '\($0)'" } ?? "libbpf cannot load \(path)"
        let reason =
            log.flatMap { KernelVerifierLog.firstError(in: $0) }
            ?? LibBPF.reason(in: messages)
        return KernelError(
            code: "load", message: what + (reason.map { ": " + $0 } ?? "") + " (\(errnoText(errno)))", errno: errno,
            log: log ?? (messages.isEmpty ? nil : messages.joined(separator: "\n")))
    }

    static func noSuchMap(_ name: String, path: String) -> KernelError {
        KernelError(code: "map", message: "libbpf made no map '\(name)' from \(path), though bpfsim reads one there")
    }

    static func noSuchProgram(_ name: String, path: String) -> KernelError {
        KernelError(
            code: "unsupported",
            message: "libbpf sees no program '\(name)' in \(path) (a .text function is a subprogram to libbpf)")
    }

    static func notLoaded(_ name: String) -> KernelError {
        KernelError(code: "unsupported", message: "program '\(name)' was not loaded into the kernel")
    }

    static func cannotTestRun(_ name: String, type: String) -> KernelError {
        KernelError(
            code: "unsupported",
            message:
                "program '\(name)' is a \(type) program, which the kernel cannot run on an input (BPF_PROG_TEST_RUN does not support it)"
        )
    }

    static func plainFunction(_ name: String) -> KernelError {
        KernelError(
            code: "unsupported",
            message:
                "'\(name)' is a plain function (no program type): the kernel runs only typed programs; build it as XDP to compare"
        )
    }

    // MARK: Runs and maps

    static func input(_ message: String) -> KernelError { KernelError(code: "input", message: message) }

    static func testRun(_ name: String, errno: Int32) -> KernelError {
        let hint: String
        switch errno {
        case EINVAL: hint = ": the kernel refused the input (too short, too long, or a context it does not accept)"
        case ENOTSUPP, EOPNOTSUPP: hint = ": not supported for this program type"
        default: hint = ""
        }
        return KernelError(
            code: "run", message: "BPF_PROG_TEST_RUN of '\(name)' failed\(hint) (\(errnoText(errno)))", errno: errno)
    }

    static func map(_ name: String, _ operation: String, errno: Int32) -> KernelError {
        KernelError(code: "map", message: "map '\(name)': \(operation) failed (\(errnoText(errno)))", errno: errno)
    }

    static func pinning(cpu: Int, errno: Int32) -> KernelError {
        KernelError(
            code: "run", message: "cannot run on CPU \(cpu): sched_setaffinity failed (\(errnoText(errno)))",
            errno: errno)
    }

    /// The kernel's private errno for "not supported" (`ENOTSUPP`, 524), which
    /// BPF_PROG_TEST_RUN returns for program types it cannot run.
    static let ENOTSUPP: Int32 = 524

    /// `EPERM (Operation not permitted)`.
    static func errnoText(_ errno: Int32) -> String {
        if errno == ENOTSUPP { return "ENOTSUPP (not supported)" }
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", E2BIG: "E2BIG", EBADF: "EBADF", ENOMEM: "ENOMEM", EACCES: "EACCES",
            EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", EINVAL: "EINVAL", ENOSPC: "ENOSPC", ENOSYS: "ENOSYS",
            EOPNOTSUPP: "EOPNOTSUPP", ESRCH: "ESRCH",
        ]
        let name = names[errno] ?? "errno \(errno)"
        return "\(name): \(String(cString: strerror(errno)).lowercased())"
    }
}
