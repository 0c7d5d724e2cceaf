import BPFKernel

/// Where a program runs: one of bpfsim's engines, or the running kernel.
///
/// The kernel is not an `Engine`: engines run against bpfsim's `Machine`, and every
/// behavioural test iterates `Engine.allCases`. The kernel is what they are compared with,
/// through `KernelSession` and `RunComparison`, where `bpf(2)` is allowed.
public enum Backend: Hashable, Sendable, CustomStringConvertible {
    case engine(Engine)
    /// The running kernel, through libbpf and `BPF_PROG_TEST_RUN`.
    case kernel

    public static let interpreter = Backend.engine(.interpreter)

    /// Every backend: bpfsim's engines, then the kernel.
    public static var all: [Backend] { Engine.allCases.map(Backend.engine) + [.kernel] }

    /// `interp` (and every other engine by its raw value), or `kernel`.
    public init?(name: String) {
        if name == "kernel" {
            self = .kernel
        } else if let engine = Engine(rawValue: name) {
            self = .engine(engine)
        } else {
            return nil
        }
    }

    /// The name the command line uses.
    public var name: String {
        switch self {
        case .engine(let engine): engine.rawValue
        case .kernel: "kernel"
        }
    }

    public var description: String { name }
}
