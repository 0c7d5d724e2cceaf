import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// Tracing contexts. The kernel cannot test-run tracepoint and kprobe programs, so their
/// layouts are pinned against this machine's tracefs format files and BTF, copied to
/// corpus/contexts/tracefs by corpus/contexts/syscalls.py; raw tracepoints, which the
/// kernel can test-run, are among the kernel cases.
@Suite("tracing contexts")
struct TracingContextTests {
    struct Field: Equatable {
        let name: String
        let offset: Int
        let size: Int
    }

    /// The fields of a tracefs `format` file.
    static func format(_ event: String) throws -> [Field] {
        let url = BPFCorpus.contextsDirectory.appendingPathComponent("tracefs/\(event).format")
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard line.contains("field:") else { return nil }
            let parts = line.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            let declaration = parts[0].dropFirst("field:".count)
            let name = declaration.split(whereSeparator: { $0 == " " || $0 == "*" }).last!.split(separator: "[").first!
            func number(_ key: String) -> Int { Int(parts.first { $0.hasPrefix(key) }!.dropFirst(key.count))! }
            return Field(name: String(name), offset: number("offset:"), size: number("size:"))
        }
    }

    /// Reads `size` bytes at `offset` of a record, little-endian.
    static func read(_ record: [UInt8], _ field: Field) -> UInt64 {
        (0..<field.size).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(record[field.offset + $1]) }
    }

    @Test("syscalls/sys_enter_openat records are laid out as tracefs says")
    func sysEnterLayout() throws {
        let fields = try Self.format("syscalls__sys_enter_openat")
        let arguments: [UInt64] = [0xffff_ff9c, 0x1000, 0x241, 0o644]
        let record = TracepointRecord.syscallEnter(number: 257, arguments: arguments, pid: 4242, type: 782)
        let values = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, Self.read(record, $0)) })
        #expect(record.count == fields.map { $0.offset + $0.size }.max())
        #expect(values["common_type"] == 782)
        #expect(values["common_pid"] == 4242)
        #expect(values["__syscall_nr"] == 257)
        #expect(values["dfd"] == arguments[0])
        #expect(values["filename"] == arguments[1])
        #expect(values["flags"] == arguments[2])
        #expect(values["mode"] == arguments[3])
        let entry = try #require(SyscallTable.entry(named: "openat"))
        #expect(entry.number == 257)
        #expect(entry.arguments == ["dfd", "filename", "flags", "mode"])
    }

    @Test("sys_exit and raw_syscalls records are laid out as tracefs says")
    func exitAndRawLayouts() throws {
        let exit = try Self.format("syscalls__sys_exit_openat")
        let record = TracepointRecord.syscallExit(number: 257, returnValue: -2, pid: 7)
        #expect(
            exit.map(\.name) == [
                "common_type", "common_flags", "common_preempt_count", "common_pid", "__syscall_nr", "ret",
            ])
        #expect(Self.read(record, exit[4]) == 257)
        #expect(Int64(bitPattern: Self.read(record, exit[5])) == -2)
        #expect(record.count == 24)

        let enter = try Self.format("raw_syscalls__sys_enter")
        let raw = TracepointRecord.rawSyscallEnter(number: 59, arguments: [1, 2, 3, 4, 5, 6])
        #expect(enter.map(\.name).suffix(2) == ["id", "args"])
        #expect(Self.read(raw, enter[4]) == 59)
        #expect(enter[5].size == 48)
        for index in 0..<6 {
            let slot = Field(name: "args", offset: enter[5].offset + 8 * index, size: 8)
            #expect(Self.read(raw, slot) == UInt64(index + 1))
        }
        let rawExit = try Self.format("raw_syscalls__sys_exit")
        let out = TracepointRecord.rawSyscallExit(number: 59, returnValue: -14)
        #expect(Int64(bitPattern: Self.read(out, rawExit[5])) == -14)
    }

    @Test("struct pt_regs has the layout of this kernel's BTF")
    func ptRegsLayout() throws {
        let url = BPFCorpus.contextsDirectory.appendingPathComponent("tracefs/pt_regs.h")
        let text = try String(contentsOf: url, encoding: .utf8)
        // Members in order: plain `long unsigned int NAME;` lines and each union's u16 member.
        var names: [String] = []
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("long unsigned int ") || trimmed.hasPrefix("u16 ") {
                names.append(String(trimmed.split(separator: " ").last!.dropLast()))
            }
        }
        #expect(names == PtRegs.names)
        #expect(PtRegs.size == 8 * names.count)
        var regs = PtRegs.functionEntry(arguments: [1, 2, 3, 4, 5, 6])
        #expect([regs["di"], regs["si"], regs["dx"], regs["cx"], regs["r8"], regs["r9"]] == [1, 2, 3, 4, 5, 6])
        regs = PtRegs.syscallEntry(number: 0, arguments: [1, 2, 3, 4])
        #expect(regs["r10"] == 4)
    }

    static func session(_ engine: Engine) throws -> Session {
        let object = try BPFObject(path: try BPFCorpus.contextObject("tracing.c"))
        return try Session(object: object, configuration: RunConfiguration(engine: engine))
    }

    static func out(_ session: Session, _ index: Int) -> UInt64 {
        let map = session.machine.map(named: "out")!
        let entry = map.entries().first { $0.key == [UInt8(index), 0, 0, 0] }!
        return entry.value.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
    }

    @Test("a syscall tracepoint program reads its record", arguments: Engine.allCases)
    func tracepoint(engine: Engine) throws {
        let session = try Self.session(engine)
        let enter = session.run(
            try session.programIndex(named: "openat_enter"),
            input: .event(.syscallEnter(number: 257, arguments: [0xffff_ffff_ffff_ff9c, 0x7000, 0x241, 0o644])))
        #expect(enter.execution.fault == nil)
        #expect(enter.verdict == .tracing(keepsEvent: true, value: 1))
        #expect((0..<5).map { Self.out(session, $0) } == [257, 0xffff_ffff_ffff_ff9c, 0x7000, 0x241, 0o644])

        let exit = session.run(
            try session.programIndex(named: "openat_exit"), input: .event(.syscallExit(number: 257, returnValue: -2)))
        #expect(exit.execution.fault == nil)
        #expect(Int64(bitPattern: Self.out(session, 1)) == -2)

        let raw = session.run(
            try session.programIndex(named: "any_enter"),
            input: .event(.syscallEnter(number: 59, arguments: [10, 20, 30, 40, 50, 60])))
        #expect(raw.execution.fault == nil)
        #expect([Self.out(session, 0), Self.out(session, 1), Self.out(session, 2)] == [59, 10, 60])

        // The common header is not readable.
        let header = session.run(
            try session.programIndex(named: "reads_header"), input: .event(.syscallExit(number: 257, returnValue: 0)))
        #expect(header.execution.fault?.message.contains("common header") == true)
    }

    @Test("a kprobe reads struct pt_regs, read-only", arguments: Engine.allCases)
    func kprobe(engine: Engine) throws {
        let session = try Self.session(engine)
        let entry = session.run(
            try session.programIndex(named: "kprobe_args"),
            input: .event(.functionEntry(arguments: [1, 2, 3, 4, 5, 6])))
        #expect(entry.execution.fault == nil)
        #expect((0..<6).map { Self.out(session, $0) } == [1, 2, 3, 4, 5, 6])
        let ret = session.run(
            try session.programIndex(named: "kretprobe_ret"), input: .event(.functionReturn(UInt64(bitPattern: -5))))
        #expect(ret.execution.fault == nil)
        #expect(Int64(bitPattern: Self.out(session, 0)) == -5)
        let write = session.run(try session.programIndex(named: "kprobe_write"), input: .context(PtRegs().bytes))
        #expect(write.execution.fault?.message.contains("read-only") == true)
    }

    @Test("a sys_enter raw tracepoint reads the task's registers through its pointer", arguments: Engine.allCases)
    func rawSysEnter(engine: Engine) throws {
        let session = try Self.session(engine)
        let run = session.run(
            try session.programIndex(named: "raw_sys_enter"),
            input: .event(.syscallEnter(number: 1, arguments: [3, 0x5000, 12, 99])))
        #expect(run.execution.fault == nil)
        #expect((0..<6).map { Self.out(session, $0) } == [0, 1, 1, 3, 0x5000, 99])
    }

    @Test("default contexts have the kernel's sizes")
    func defaults() throws {
        let session = try Self.session(.interpreter)
        guard
            case .event(.syscallEnter(let number, let arguments)) = session.defaultInput(
                for: try session.programIndex(named: "openat_enter"))
        else {
            Issue.record("no default event for a syscall tracepoint")
            return
        }
        #expect(number == 257)
        #expect(arguments.count == 4)
        guard case .context(let regs) = session.defaultInput(for: try session.programIndex(named: "kprobe_args")) else {
            Issue.record("no default context for a kprobe")
            return
        }
        #expect(regs.count == 168)
        let run = session.run(
            try session.programIndex(named: "openat_exit"),
            input: session.defaultInput(for: try session.programIndex(named: "openat_exit"))!)
        #expect(run.execution.fault == nil)
        #expect(Self.out(session, 0) == 257)
    }
}
