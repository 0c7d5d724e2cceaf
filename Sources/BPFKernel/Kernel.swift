import CLibBPF
import Foundation
import Glibc

/// The running kernel, as far as bpfsim uses it: whether `bpf(2)` may be called here,
/// and how many CPUs per-CPU maps hold values for.
public enum Kernel {
    /// Set to any non-empty value to behave as if `bpf(2)` were refused (tests use it to
    /// check the path taken where it is).
    public static let disableVariable = "BPFSIM_NO_KERNEL"

    /// Replaces the process environment for `unavailability()` within a task (tests use
    /// it to take the refused path without touching the process's environment).
    @TaskLocal public static var environmentOverride: [String: String]?

    /// Why the kernel cannot be used here, as one sentence; nil when it can.
    /// `BPFSIM_NO_KERNEL` in the environment answers without asking the kernel.
    public static func unavailability(environment: [String: String]? = nil) -> KernelError? {
        let environment = environment ?? environmentOverride ?? ProcessInfo.processInfo.environment
        if let value = environment[disableVariable], !value.isEmpty, value != "0" {
            return .disabledByEnvironment
        }
        return probe
    }

    /// Whether programs can be loaded and run in the kernel here.
    public static var isAvailable: Bool { unavailability() == nil }

    /// Loads `r0 = 0; exit` as a socket filter, the most widely allowed program type, and
    /// closes it again: the only way to learn whether `bpf(2)` is allowed is to call it.
    /// Asked once per process.
    private static let probe: KernelError? = {
        let instructions: [bpf_insn] = [
            bpf_insn(code: 0xb7, dst_reg: 0, src_reg: 0, off: 0, imm: 0),  // mov %r0, 0
            bpf_insn(code: 0x95, dst_reg: 0, src_reg: 0, off: 0, imm: 0),  // exit
        ]
        let fd = instructions.withUnsafeBufferPointer { insns in
            bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "bpfsim_probe", "GPL", insns.baseAddress, 2, nil)
        }
        if fd >= 0 {
            close(fd)
            return nil
        }
        return .unavailable(errno: -fd)
    }()

    /// The kernel's possible CPUs (`/sys/devices/system/cpu/possible`): every per-CPU map
    /// value read from the kernel has one slot for each.
    public static var possibleCPUs: Int {
        let count = libbpf_num_possible_cpus()
        return count > 0 ? Int(count) : 1
    }
}
