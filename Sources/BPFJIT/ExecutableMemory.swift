#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One mapping: a read-write context page, then the code. The code pages are written
/// while the whole mapping is read-write and not executable, then switched to
/// read-execute; no page is ever writable and executable at once. Unmapped on deinit.
///
/// This and `JIT`'s entry call are the only places host code is made and run.
final class ExecutableMemory {
    /// The start of the mapping: the context page.
    let context: UnsafeMutableRawPointer
    /// The start of the code, one page after `context`.
    let code: UnsafeRawPointer
    let codeSize: Int
    private let mappingSize: Int

    /// The distance from the context page to the code, which the compiler bakes into
    /// every RIP-relative operand.
    static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))

    init(code bytes: [UInt8]) throws(JITError) {
        let page = Self.pageSize
        precondition(ContextLayout.size <= page, "the context must fit in one page")
        let codePages = (bytes.count + page - 1) / page * page
        mappingSize = page + max(codePages, page)
        guard
            let mapping = mmap(nil, mappingSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapping != MAP_FAILED
        else { throw JITError.cannotMapMemory(errno: errno) }
        context = mapping
        let codeStart = mapping + page
        bytes.withUnsafeBytes { codeStart.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        guard mprotect(codeStart, mappingSize - page, PROT_READ | PROT_EXEC) == 0 else {
            let error = errno
            munmap(mapping, mappingSize)
            throw JITError.cannotProtectMemory(errno: error)
        }
        code = UnsafeRawPointer(codeStart)
        codeSize = bytes.count
    }

    deinit {
        munmap(context, mappingSize)
    }
}
