import BPFHarness
import BPFSession
import BPFTestSupport
import Foundation
import Testing

/// Replays system-call events through TracePrograms/syscalls.bpf.c on both engines.
/// Expected values follow from the kernel's documented behaviour, not from bpfsim:
/// record layouts from /sys/kernel/tracing/events/syscalls/sys_{enter,exit}_openat/format
/// and raw_syscalls/sys_{enter,exit}/format; `bpf_probe_read_user_str` returns the length
/// with the NUL and `bpf_probe_read_user` -EFAULT (-14) for an unreadable address
/// (include/uapi/linux/bpf.h); `bpf_get_current_pid_tgid` is `tgid << 32 | pid`; the
/// x86-64 wrapper `__x64_sys_openat` takes `const struct pt_regs *` of the user registers
/// (arch/x86/include/asm/syscall_wrapper.h), its fourth argument in r10.
struct TraceReplayTests {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("TracePrograms/syscalls.bpf.c")

    static func replay(_ engine: Engine, programs: [String]? = nil) throws -> TraceReplay {
        let object = try BPFObject(path: try BPFCorpus.object(source: source))
        let session = try Session(object: object, configuration: RunConfiguration(engine: engine))
        return try TraceReplay(session: session, programs: programs)
    }

    static let trace = """
        {"time": 5000000000, "cpu": 0, "pid": 4242, "tgid": 4240, "uid": 1000, "gid": 1001, "comm": "cat", "syscall": "openat", "args": [-100, {"str": "/etc/shadow"}, 0, {"ptr": 16}], "ret": 3}
        {"syscall": "close", "args": [3], "ret": 0}
        {"pid": 99, "comm": "ls", "syscall": "openat", "args": [-100, {"str": "/nope"}, 524288, 0], "ret": -2}
        """

    static func slot(_ session: Session, _ index: UInt32) throws -> Int64 {
        let map = try #require(session.machine.map(named: "slots"))
        let value = try map.lookup(key: withUnsafeBytes(of: index.littleEndian, Array.init))
        return value.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
    }

    @Test(arguments: Engine.allCases)
    func everyAttachmentFires(engine: Engine) throws {
        let replay = try Self.replay(engine)
        let result = replay.replay(try SyscallTrace(jsonLines: Self.trace, source: "t.jsonl"))
        #expect(result.faultCount == 0)
        // Order (docs/traces.md): sys_enter_NAME, raw_syscalls/sys_enter, raw_tp/sys_enter,
        // kprobe/__x64_sys_NAME, then the exit side in the same order.
        #expect(
            result.events[0].firings.map(\.attachment.name) == [
                "tp_openat", "tp_raw_enter", "raw_enter", "kp_openat", "tp_openat_exit", "tp_raw_exit", "raw_exit",
                "kretp_openat",
            ])
        // close: only the programs that see every system call (raw_enter returns early).
        #expect(
            result.events[1].firings.map(\.attachment.name) == ["tp_raw_enter", "raw_enter", "tp_raw_exit", "raw_exit"])

        // The ring-buffer record of the first openat: struct open_event.
        let records = result.events[0].records
        #expect(records.count == 2)
        let record = try #require(records.first)
        #expect(record.map == "events" && record.kind == .ringBuffer && record.data.count == 88)
        func u32(_ offset: Int) -> UInt32 { record.data[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        #expect(record.data[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == 5_000_000_000)
        #expect(u32(8) == 4242)  // pid (the thread)
        #expect(u32(12) == 4240)  // tgid
        #expect(u32(16) == 1000 && u32(20) == 1001)  // uid, gid
        #expect(u32(24) == 0)  // cpu
        #expect(u32(28) == 12)  // "/etc/shadow" and its NUL
        #expect(u32(32) == 1)  // FROM_TRACEPOINT
        #expect(Array(record.data[40..<44]) == Array("cat\0".utf8))
        #expect(Array(record.data[56..<68]) == Array("/etc/shadow\0".utf8))
        #expect(result.events[0].printk == ["openat /etc/shadow"])
        // The kretprobe's perf-buffer record (BPF_F_CURRENT_CPU: CPU 0): pid, then ret.
        #expect(records[1] == EventRecord(map: "exits", kind: .perfEvent, cpu: 0, data: [0x92, 0x10, 0, 0, 3, 0, 0, 0]))

        // The second openat: the new task, the error return.
        let second = try #require(result.events[2].records.first)
        #expect(Array(second.data[8..<16]) == [99, 0, 0, 0, 99, 0, 0, 0])
        #expect(Array(second.data[56..<62]) == Array("/nope\0".utf8))
        #expect(Array(second.data[36..<40]) == [0, 0, 8, 0])  // flags O_CLOEXEC 0x80000

        let session = replay.session
        #expect(try Self.slot(session, 0) == -2)  // sys_exit_openat ret of the last openat
        #expect(try Self.slot(session, 1) == 257)  // raw_tp sys_enter id
        #expect(try Self.slot(session, 2) == -100)  // regs->di: AT_FDCWD
        #expect(try Self.slot(session, 3) == 6)  // "/nope" read through regs->si
        #expect(try Self.slot(session, 4) == -100)  // kprobe: PARM1 of the user registers
        #expect(try Self.slot(session, 5) == 524288)  // kprobe: PARM3 (flags)
        #expect(try Self.slot(session, 6) == 6)
        #expect(try Self.slot(session, 7) == -2)  // kretprobe: ax
        #expect(try Self.slot(session, 8) == -2)  // raw_tp sys_exit: args[1] is ret
        #expect(try Self.slot(session, 9) == -2)  // raw_syscalls/sys_exit ret
        // The first openat's mode was {"ptr": 16}; the last one's 0: both unreadable.
        #expect(try Self.slot(session, 10) == -14)

        // raw_syscalls/sys_enter counted two openat (257) and one close (3).
        let counts = try #require(session.machine.map(named: "counts"))
        func count(_ id: UInt64) -> UInt64? {
            (try? counts.lookup(key: withUnsafeBytes(of: id.littleEndian, Array.init)))?.withUnsafeBytes {
                $0.loadUnaligned(as: UInt64.self)
            }
        }
        #expect(count(257) == 2 && count(3) == 1)
    }

    @Test(arguments: Engine.allCases)
    func onlyNamedProgramsAndPhases(engine: Engine) throws {
        let replay = try Self.replay(engine, programs: ["kretp_openat", "tp_openat"])
        #expect(replay.attachments.map(\.name) == ["kretp_openat", "tp_openat"])
        let text = """
            {"syscall": "openat", "args": [1, {"str": "a"}], "ret": 9, "phase": "exit"}
            {"syscall": "openat", "args": [1, {"str": "b"}], "ret": 9, "phase": "enter"}
            """
        let result = replay.replay(try SyscallTrace(jsonLines: text, source: "t.jsonl"))
        #expect(result.events[0].firings.map(\.attachment.name) == ["kretp_openat"])
        #expect(result.events[1].firings.map(\.attachment.name) == ["tp_openat"])
        #expect(try Self.slot(replay.session, 7) == 9)
    }

    @Test func selectionErrors() throws {
        let object = try BPFObject(path: try BPFCorpus.object(source: Self.source))
        let session = try Session(object: object)
        #expect(throws: TraceReplayError.self) { try TraceReplay(session: session, programs: ["nosuch"]) }
        do {
            _ = try TraceReplay(session: session, programs: ["nosuch"])
        } catch {
            #expect(error.description.hasPrefix("no program named 'nosuch' (programs: "))
        }
    }

    /// An event on a CPU the machine lacks is reported with its line, and the replay goes on.
    @Test(arguments: Engine.allCases)
    func faultsAndBadCPUs(engine: Engine) throws {
        let replay = try Self.replay(engine)
        let text = """
            {"cpu": 3, "syscall": "close", "args": [3]}
            {"cpu": 0, "syscall": "close", "args": [3], "ret": 0}
            """
        let result = replay.replay(try SyscallTrace(jsonLines: text, source: "t.jsonl"))
        #expect(result.events[0].error == "line 1: CPU 3, but the emulated machine has 1 (--cpus)")
        #expect(result.events[0].firings.isEmpty)
        #expect(result.events[1].firings.count == 4)
        #expect(result.faultCount == 1)
    }

    /// Replaying many events that alternate tracepoint, raw tracepoint and kprobe programs
    /// reuses the same regions: the address space does not grow with the trace.
    @Test(arguments: Engine.allCases)
    func regionsDoNotGrow(engine: Engine) throws {
        let replay = try Self.replay(engine)
        let line = "{\"syscall\": \"openat\", \"args\": [-100, {\"str\": \"/etc/passwd\"}, 0, 0], \"ret\": 3}\n"
        let trace = try SyscallTrace(jsonLines: String(repeating: line, count: 3), source: "t.jsonl")
        _ = replay.replay(trace)
        let regions = replay.session.machine.memory.count
        let result = replay.replay(
            try SyscallTrace(jsonLines: String(repeating: line, count: 200), source: "t.jsonl"))
        #expect(result.faultCount == 0 && result.recordCount == 400)  // a ringbuf and a perf record each
        #expect(replay.session.machine.memory.count == regions)
    }

    /// The kernel's own record. TracePrograms/attach_run.c (built with `cc -lbpf`) loaded
    /// syscalls.bpf.c with libbpf, attached tp_openat to the real
    /// syscalls/sys_enter_openat tracepoint, ran `cat /etc/hostname` as a child and pinned
    /// `last`; `bpftool map lookup -j` on it gave TraceInputs/kernel-openat-last.bpftool.json.
    /// Replaying cat's last openat with the same task, CPU and time must leave the same
    /// entry: pid/tgid, uid/gid, comm, the CPU, the clock, the filename and its length.
    @Test(arguments: Engine.allCases)
    func matchesTheKernelsRecord(engine: Engine) throws {
        struct Lookup: Decodable {
            var key: [String]
            var value: [String]
            var formatted: BTFValue
        }
        let url = Self.source.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TraceInputs/kernel-openat-last.bpftool.json")
        let kernel = try JSONDecoder().decode(Lookup.self, from: Data(contentsOf: url))
        let value = try #require(kernel.formatted["value"])
        func number(_ name: String) throws -> UInt64 {
            switch try #require(value[name]) {
            case .unsigned(let number): return number
            case .signed(let number): return UInt64(bitPattern: number)
            default:
                Issue.record("\(name) is not a number")
                return 0
            }
        }
        let event = """
            {"time": \(try number("ts")), "cpu": \(try number("cpu")), "pid": \(try number("pid")), "tgid": \(try number("tgid")), \
            "uid": \(try number("uid")), "gid": \(try number("gid")), "comm": "cat", "syscall": "openat", \
            "args": [-100, {"str": "/etc/hostname"}, \(try number("flags")), 0], "ret": 3}
            """
        let object = try BPFObject(path: try BPFCorpus.object(source: Self.source))
        let session = try Session(object: object, configuration: RunConfiguration(engine: engine, world: World(cpuCount: 2)))
        let replay = try TraceReplay(session: session, programs: ["tp_openat"])
        let result = replay.replay(try SyscallTrace(jsonLines: event, source: "kernel"))
        #expect(result.faultCount == 0)
        let dump = try #require(MapDump.all(session.machine, btf: session.btf)["last"])
        #expect(dump.entries.count == 1)
        let entry = try #require(dump.entries.first)
        #expect(entry.key == kernel.key.map { String($0.dropFirst(2)) }.joined())
        #expect(entry.value == .single(kernel.value.map { String($0.dropFirst(2)) }.joined()))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(
            String(decoding: try encoder.encode(try #require(entry.formatted)), as: UTF8.self)
                == String(decoding: try encoder.encode(kernel.formatted), as: UTF8.self))
    }

    /// libbpf's BPF_KSYSCALL macro: its LINUX_HAS_SYSCALL_WRAPPER kconfig extern reads 1
    /// (x86-64 has syscall wrappers), so it takes the arguments from the user registers
    /// behind PARM1, as on the kernel; kretsyscall sees the return value.
    @Test(arguments: Engine.allCases)
    func ksyscallMacro(engine: Engine) throws {
        let source = Self.source.deletingLastPathComponent().appendingPathComponent("ksyscall.bpf.c")
        let object = try BPFObject(path: try BPFCorpus.object(source: source))
        let kconfig = try #require(object.maps.first { $0.name == ".kconfig" })
        #expect(kconfig.initialEntries.first?.value.first == 1)
        let session = try Session(object: object, configuration: RunConfiguration(engine: engine))
        let replay = try TraceReplay(session: session)
        try replay.verify()
        let trace = try SyscallTrace(
            jsonLines: "{\"syscall\": \"openat\", \"args\": [-100, {\"str\": \"/etc/shadow\"}, 524288, 0], \"ret\": -13}",
            source: "t.jsonl")
        let result = replay.replay(trace)
        #expect(result.faultCount == 0)
        #expect(
            result.events[0].printk == [
                "openat dfd=-100 flags=524288 len=12", "openat /etc/shadow", "openat returned -13",
            ])
    }
}
