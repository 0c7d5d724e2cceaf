/// Why the JIT cannot run a program. The facade then runs it on the interpreter and says
/// so. Messages come from the factories below.
public struct JITError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A short stable identifier, such as `unsupported_host`.
    public let code: String
    public let description: String

    private init(_ code: String, _ description: String) {
        self.code = code
        self.description = description
    }

    public static let unsupportedHost = JITError(
        "unsupported_host", "the JIT emits x86-64 code and this host is not x86-64")

    public static func cannotMapMemory(errno: Int32) -> JITError {
        JITError("mmap_failed", "could not map memory for JIT code (errno \(errno))")
    }

    public static func cannotProtectMemory(errno: Int32) -> JITError {
        JITError("mprotect_failed", "could not make JIT code executable (errno \(errno))")
    }

    public static func codeTooLarge(bytes: Int) -> JITError {
        JITError("code_too_large", "the program compiles to \(bytes) bytes of x86-64, more than the JIT's 1 GiB limit")
    }
}
