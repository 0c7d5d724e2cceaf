import BPFLoader
import BPFRuntime
import CLibBPF
import Foundation
import Glibc

/// The kernel verifier's verdict on one program of an object.
public struct VerifierVerdict: Sendable, Hashable, Codable {
    public var program: String
    public var section: String
    /// bpftool's name of the program type (`xdp`, `sched_cls`).
    public var type: String
    public var accepted: Bool
    /// The errno of a refused load (`EACCES` for most verifier refusals, `EINVAL` for
    /// malformed programs, `E2BIG` for too many instructions).
    public var errno: Int32?
    /// The line of the log that says why the program was refused.
    public var firstError: String?
    /// The verifier's log (level 1: the instructions it walked, then its statistics).
    public var log: String
    /// True when the log did not fit in the buffer and only its end is kept (the verdict
    /// then comes from a second load that asks only for statistics).
    public var logTruncated: Bool
    /// "processed N insns" from the log: how many instructions the verifier walked.
    public var processedInstructions: Int?
    /// Why no verdict could be had, when a program of the object failed to load first.
    public var note: String?
}

/// Asks the running kernel's verifier about the programs of an object, through libbpf.
public enum KernelVerifier {
    /// Loads `program` (and the programs its prog arrays name, which libbpf must load to
    /// fill them) and reports the verifier's verdict and log. Throws when the kernel is
    /// unavailable, the object cannot be opened, or libbpf fails before the verifier runs.
    public static func verify(_ object: BPFObject, program name: String, logSize: Int = 16 << 20)
        throws(KernelError) -> VerifierVerdict
    {
        if let refused = Kernel.unavailability() { throw refused }
        guard let program = object.programs.first(where: { $0.name == name }) else {
            throw .noSuchProgram(name, path: object.path)
        }
        var verdict = VerifierVerdict(
            program: name, section: program.section, type: program.type.kernelName, accepted: false, errno: nil,
            firstError: nil, log: "", logTruncated: false, processedInstructions: nil, note: nil)
        if program.type == .unspec {
            verdict.firstError = "missing BPF prog type: libbpf knows no program type for section '\(program.section)'"
            verdict.errno = EINVAL
            verdict.note = KernelError.plainFunction(name).message
            return verdict
        }
        let first = try attempt(object, program: name, logLevel: 1, logSize: logSize)
        verdict.log = first.log
        verdict.accepted = first.accepted
        verdict.errno = first.errno
        verdict.note = first.note
        if first.errno == ENOSPC {
            // The log ran out of room, and the kernel then refuses the load whatever the
            // verdict: ask again for statistics only.
            let second = try attempt(object, program: name, logLevel: 4, logSize: 1 << 20)
            verdict.accepted = second.accepted
            verdict.errno = second.errno
            verdict.logTruncated = true
            verdict.note = second.note
            verdict.processedInstructions = KernelVerifierLog.processedInstructions(in: second.log)
            if !second.accepted { verdict.firstError = KernelVerifierLog.firstError(in: second.log) }
        } else {
            verdict.processedInstructions = KernelVerifierLog.processedInstructions(in: first.log)
            if !first.accepted {
                verdict.firstError = KernelVerifierLog.firstError(in: first.log) ?? first.messages.last
            }
        }
        return verdict
    }

    private struct Attempt {
        var accepted: Bool
        var errno: Int32?
        var log: String
        var messages: [String]
        var note: String?
    }

    private static func attempt(_ object: BPFObject, program name: String, logLevel: UInt32, logSize: Int)
        throws(KernelError) -> Attempt
    {
        // Programs a prog array of the object names must load too, or libbpf cannot fill it.
        var loading: Set<String> = [name]
        for map in object.maps where map.type == .progArray {
            for entry in map.initialEntries where entry.value.count >= 4 {
                let index = Int(entry.value[0]) | Int(entry.value[1]) << 8 | Int(entry.value[2]) << 16
                if index < object.programs.count { loading.insert(object.programs[index].name) }
            }
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: object.path))
        } catch {
            throw .open(object.path, errno: ENOENT, messages: ["cannot read the file"])
        }
        let logBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: logSize)
        logBuffer.initialize(repeating: 0, count: logSize)
        defer { logBuffer.deallocate() }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 8)
        defer { bytes.deallocate() }
        data.withUnsafeBytes { bytes.copyMemory(from: $0) }
        let size = data.count
        let (outcome, messages) = LibBPF.exclusive { () throws(KernelError) -> (Bool, Int32?, String?) in
            do {
                let opened = try LibBPF.open(
                    object, bytes: UnsafeRawBufferPointer(start: bytes.baseAddress, count: size), loading: loading)
                defer { bpf_object__close(opened) }
                var target: OpaquePointer?
                var program = bpf_object__next_program(opened, nil)
                while let current = program {
                    if String(cString: bpf_program__name(current)) == name {
                        target = current
                        bpf_program__set_log_buf(current, logBuffer, logSize)
                        bpf_program__set_log_level(current, logLevel)
                    }
                    program = bpf_object__next_program(opened, current)
                }
                guard let target else { throw .noSuchProgram(name, path: object.path) }
                let result = bpf_object__load(opened)
                let fd = bpf_program__fd(target)
                if fd >= 0 {
                    return (true, nil, nil)
                }
                let attempted = logBuffer.pointee != 0
                let note =
                    attempted || result == 0
                    ? nil : "libbpf stopped before this program reached the verifier"
                return (false, LibBPF.errnoOf(result), note)
            }
        }
        switch outcome {
        case .success(let (accepted, errno, note)):
            let log = String(cString: logBuffer)
            if !accepted, note != nil {
                // Nothing of ours was verified: the failure belongs to another program or a map.
                throw .load(object.path, program: nil, errno: errno ?? EINVAL, log: nil, messages: messages)
            }
            return Attempt(accepted: accepted, errno: errno, log: log, messages: messages, note: note)
        case .failure(let error):
            if error.code == "open" { throw .open(object.path, errno: error.errno ?? EINVAL, messages: messages) }
            throw error
        }
    }
}

/// Reading the verifier's log.
public enum KernelVerifierLog {
    /// N of "processed N insns" (or "Processed N insn" when the program was too large).
    public static func processedInstructions(in log: String) -> Int? {
        for line in log.split(separator: "\n").reversed() {
            let words = line.split(separator: " ")
            if words.count >= 3, words[0].lowercased() == "processed", words[2].hasPrefix("insn"),
                let count = Int(words[1])
            {
                return count
            }
            if let range = line.range(of: "Processed "),
                let count = Int(line[range.upperBound...].prefix { $0.isNumber })
            {
                return count
            }
        }
        return nil
    }

    /// The line that says why a program was refused: the first line after the last
    /// instruction the verifier printed (`12: (61) r1 = ...`), where its complaint
    /// starts; without instruction lines, the last line that is not a statistic.
    public static func firstError(in log: String) -> String? {
        let lines = log.split(separator: "\n", omittingEmptySubsequences: true).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        func isStatistic(_ line: String) -> Bool {
            line.isEmpty || line.hasPrefix("processed ") || line.hasPrefix("verification time")
                || line.hasPrefix("stack depth") || line.hasPrefix("-- ")
        }
        func isInstruction(_ line: String) -> Bool {
            let digits = line.prefix { $0.isNumber }
            return !digits.isEmpty && line.dropFirst(digits.count).hasPrefix(": (")
        }
        if let last = lines.lastIndex(where: isInstruction) {
            // Skip the register states the verifier prints between instructions.
            if let line = lines[(last + 1)...].first(where: { !isStatistic($0) && !$0.hasPrefix(";") }) {
                return line
            }
        }
        return lines.last { !isStatistic($0) }
    }

    /// The verifier log libbpf printed between its BEGIN and END PROG LOAD LOG markers.
    static func extract(from messages: [String]) -> String? {
        for message in messages {
            guard let begin = message.range(of: "-- BEGIN PROG LOAD LOG --\n"),
                let end = message.range(of: "-- END PROG LOAD LOG --", range: begin.upperBound..<message.endIndex)
            else { continue }
            return String(message[begin.upperBound..<end.lowerBound])
        }
        return nil
    }
}
