import BPFHarness
import BPFSession
import Foundation
import Testing

/// strace import. TraceInputs/sh-cat.strace.txt was recorded on this machine with
/// `strace -f -tt -T -e trace=execve,openat,read,close,vfork,clone,clone3,wait4,exit_group
/// -o sh-cat.strace.txt sh -c 'cat /etc/hostname; cat /nonexistent; true'`; the other
/// lines are in the forms strace(1) documents for `-ttt`, `[pid N]` and no prefix.
/// errno values from include/uapi/asm-generic/errno-base.h, flag values from
/// include/uapi/asm-generic/fcntl.h.
struct TraceStraceTests {
    static let recorded = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("TraceInputs/sh-cat.strace.txt").path

    @Test func recordedTrace() throws {
        let trace = try SyscallTrace(contentsOf: Self.recorded, strace: true)
        // 140 lines, less 5 "+++"/"---" lines.
        #expect(trace.events.count == 135)
        let first = trace.events[0]
        #expect(first.line == 1 && first.syscall.name == "execve")
        #expect(first.time == (2 * 3600 + 53 * 60 + 39) * 1_000_000_000 + 534_220_000)
        #expect(first.duration == 376_000)
        #expect(first.task.pid == 25318 && first.task.tgid == 25318)
        #expect(first.arguments.first == .string("/usr/bin/sh"))
        // The truncated argv string is an array: a pointer with nothing behind it.
        #expect(first.returnValue == 0 && first.phase == .both)

        // openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
        let open = trace.events[1]
        #expect(open.syscall.number == 257)
        #expect(
            open.arguments == [.value(UInt64(bitPattern: -100)), .string("/etc/ld.so.cache"), .value(0o2000000)])
        #expect(open.returnValue == 3)
        // After execve the task is named after the program's file.
        #expect(open.task.comm == "sh")

        // vfork( <unfinished ...> is an enter; the child's execve, under way, is the child's.
        let vfork = try #require(trace.events.first { $0.line == 7 })
        #expect(vfork.syscall.name == "vfork" && vfork.phase == .enter && vfork.returnValue == nil)
        let childExec = try #require(trace.events.first { $0.line == 8 })
        #expect(childExec.task.pid == 25319 && childExec.task.comm == "sh" && childExec.phase == .enter)
        #expect(childExec.arguments.first == .string("/usr/bin/cat"))
        let resumed = try #require(trace.events.first { $0.line == 9 })
        #expect(resumed.syscall.name == "vfork" && resumed.phase == .exit && resumed.returnValue == 25319)
        let execResumed = try #require(trace.events.first { $0.line == 11 })
        #expect(execResumed.phase == .exit && execResumed.returnValue == 0)
        #expect(execResumed.arguments.first == .string("/usr/bin/cat"))
        // Then the child is "cat".
        let hostname = try #require(trace.events.first { $0.arguments.count > 1 && $0.arguments[1] == .string("/etc/hostname") })
        #expect(hostname.task.comm == "cat" && hostname.returnValue == 3 && hostname.arguments[2] == .value(0))
        // read(3, "vm\n", 131072) = 3: the buffer's bytes, NUL-terminated.
        let read = try #require(trace.events.first { $0.line == hostname.line + 1 })
        #expect(read.arguments[1].memory == Array("vm\n\0".utf8))
        // = -1 ENOENT (No such file or directory) is -2.
        let missing = try #require(trace.events.first { $0.arguments.count > 1 && $0.arguments[1] == .string("/nonexistent") })
        #expect(missing.returnValue == -2 && missing.task.pid == 25320 && missing.task.comm == "cat")
        // exit_group(0) = ? has no return: enter only.
        let exit = try #require(trace.events.first { $0.syscall.name == "exit_group" })
        #expect(exit.phase == .enter && exit.returnValue == nil)
        // wait4(-1, 0x7ffc2bf081dc, WNOHANG, NULL) = -1 ECHILD (...)
        let wait = try #require(trace.events.first { $0.syscall.name == "wait4" && $0.phase == .both })
        #expect(wait.arguments == [.value(UInt64.max), .value(0x7ffc_2bf0_81dc), .value(1), .value(0)])
        #expect(wait.returnValue == -10)
    }

    @Test func otherForms() throws {
        let text = #"""
            [pid  4242] 1700000000.250000 openat(AT_FDCWD, "/etc/sha\"dow\x41\101", O_RDONLY) = -1 EACCES (Permission denied)
            [pid  4243] 1700000000.500000 write(1, "hi\n", 3 <unfinished ...>
            [pid  4242] 1700000000.600000 close(3) = -1 EBADF (Bad file descriptor)
            [pid  4243] 1700000000.700000 <... write resumed>) = 3
            getpid() = 4244
            """#
        let events = try SyscallTrace(strace: text, source: "s.txt").events
        #expect(events.count == 5)
        #expect(events[0].task.pid == 4242 && events[0].time == 1_700_000_000_250_000_000)
        #expect(events[0].arguments[1] == .string("/etc/sha\"dowAA"))
        #expect(events[0].returnValue == -13)
        #expect(events[1].phase == .enter && events[1].arguments.count == 3)
        #expect(events[3].phase == .exit && events[3].returnValue == 3 && events[3].arguments.count == 3)
        #expect(events[3].time == 1_700_000_000_700_000_000)
        // No prefix: the previous pid, 1 µs later.
        #expect(events[4].task.pid == 4243 && events[4].time == 1_700_000_000_700_001_000)
        #expect(events[4].returnValue == 4244)
    }

    @Test(arguments: [
        ("123 12:00:00.000001 nosuch(1) = 0", "unknown system call 'nosuch'"),
        ("123 12:00:00.000001 close(3", "no ')' closes the argument list"),
        ("123 12:00:00.000001 close(3) 0", "no ' = ' and return value"),
        ("123 12:00:00.000001 this is not strace", "not a system call line"),
        ("123 12:00:00.000001 openat(AT_FDCWD, \"/x) = 3", "no ')' closes"),
    ])
    func badLines(line: String, message: String) {
        do {
            _ = try SyscallTrace(strace: "1 close(1) = 0\n" + line, source: "s.txt")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.file == "s.txt" && error.line == 2)
            #expect(error.message.contains(message), "\(error)")
        }
    }
}
