import BPFSim
import Foundation
import Testing

@testable import BPFKernel

/// Where bpf() is refused, one sentence says why; everything that needs the kernel
/// reports that sentence instead of failing some other way.
struct AvailabilityTests {
    static let forced = ["BPFSIM_NO_KERNEL": "1"]

    @Test func theEnvironmentVariableForcesTheRefusedPath() throws {
        let refusal = try #require(Kernel.unavailability(environment: Self.forced))
        #expect(refusal.code == "unavailable")
        #expect(refusal.message.hasPrefix("the kernel's bpf() is not available here: "))
        #expect(
            Kernel.unavailability(environment: ["BPFSIM_NO_KERNEL": "0"]) == Kernel.unavailability(environment: [:]))
    }

    /// The errnos a refused bpf() gives, each as one sentence that says what to do.
    @Test func refusalsReadAsOneSentence() {
        #expect(
            KernelError.unavailable(errno: EPERM).message
                == "the kernel's bpf() is not available here: operation not permitted (run as root or with CAP_BPF to compare with the kernel)"
        )
        #expect(
            KernelError.unavailable(errno: EACCES).message.contains("permission denied (run as root or with CAP_BPF"))
        #expect(KernelError.unavailable(errno: ENOSYS).message.contains("the bpf system call does not exist"))
        for errno in [EPERM, EACCES, ENOSYS, EINVAL] {
            #expect(!KernelError.unavailable(errno: errno).message.contains("\n"))
        }
    }

    @Test func sessionsAndComparisonsReportTheSentence() throws {
        let object = try KernelTests.ownObject()
        try Kernel.$environmentOverride.withValue(Self.forced) {
            #expect(!Kernel.isAvailable)
            do {
                _ = try KernelSession(object: object, program: "packet_length")
                Issue.record("a kernel session opened where bpf() is refused")
            } catch let error as SessionError {
                #expect(error.code == "kernel_unavailable")
                #expect(error.message.hasPrefix("the kernel's bpf() is not available here: BPFSIM_NO_KERNEL is set"))
            }
            do {
                _ = try RunComparison.run(
                    object: object, program: "packet_length", inputs: [.packet(KernelTests.packets[0])],
                    backends: [.interpreter, .kernel])
                Issue.record("a comparison ran where bpf() is refused")
            } catch let error as SessionError {
                #expect(error.code == "kernel_unavailable")
            }
            #expect(throws: KernelError.self) { try KernelVerifier.verify(object, program: "packet_length") }
            // Nothing else needs the kernel.
            let outcome = try RunComparison.run(
                object: object, program: "packet_length", inputs: [.packet(KernelTests.packets[0])],
                backends: [.interpreter])
            #expect(outcome.results[0][0].run?.execution.returnValue == 64)
        }
    }

    /// The real refusal: an unprivileged user (nobody) runs bpfsim, and the kernel, which
    /// allows no unprivileged bpf() here (kernel.unprivileged_bpf_disabled), says EPERM.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func anUnprivilegedUserGetsTheSentence() throws {
        let executable = try #require(Self.bpfsimExecutable, "the bpfsim executable is not built")
        let object = try KernelTests.ownObject()
        // Copies nobody can read, outside directories it may not enter.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bpfsim-nobody-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let binary = directory.appendingPathComponent("bpfsim").path
        let objectCopy = directory.appendingPathComponent("kernel_compare.o").path
        try FileManager.default.copyItem(atPath: executable, toPath: binary)
        try FileManager.default.copyItem(atPath: object.path, toPath: objectCopy)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: objectCopy)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = [
            "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", binary, "verify", objectCopy, "--engine", "kernel",
        ]
        process.environment = [
            "PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"] ?? "",
        ]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let unprivileged = (try? String(contentsOfFile: "/proc/sys/kernel/unprivileged_bpf_disabled", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard unprivileged != "0" else { return }  // this kernel lets anyone load socket filters
        #expect(process.terminationStatus == 1)
        #expect(
            text.contains(
                "the kernel's bpf() is not available here: operation not permitted (run as root or with CAP_BPF to compare with the kernel)"
            ), "\(text)")
    }

    /// The debug build's executable beside this test bundle.
    static var bpfsimExecutable: String? {
        let candidates: [String?] = [
            Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent("bpfsim").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug/bpfsim").path,
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
