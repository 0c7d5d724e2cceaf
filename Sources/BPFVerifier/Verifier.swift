import BPFCore
import BPFRuntime

/// A map as the verifier needs to know it: its definition, and what BTF says about its
/// value (where a `struct bpf_spin_lock` is).
public struct VerifierMap: Sendable, Hashable {
    public var name: String
    public var type: MapType
    public var keySize: Int
    public var valueSize: Int
    public var maxEntries: Int
    public var flags: UInt32
    /// Whether the map's key and value have BTF types (`bpf_spin_lock` needs them).
    public var hasBTF: Bool
    /// The offset of the value's `struct bpf_spin_lock`, when it has one.
    public var spinLockOffset: Int?
    /// For read-only global data (`.rodata`, frozen by libbpf before loading): its bytes,
    /// which the kernel's verifier reads as known constants.
    public var frozenValue: [UInt8]?
    /// A map of maps: the definition of the maps it holds.
    public var inner: MapSpec?

    public init(
        name: String, type: MapType, keySize: Int, valueSize: Int, maxEntries: Int, flags: UInt32 = 0,
        hasBTF: Bool = false, spinLockOffset: Int? = nil, frozenValue: [UInt8]? = nil, inner: MapSpec? = nil
    ) {
        self.name = name
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.hasBTF = hasBTF
        self.spinLockOffset = spinLockOffset
        self.frozenValue = frozenValue
        self.inner = inner
    }

    /// A map from its spec. Read-only global data keeps its initial bytes, as libbpf
    /// freezes it before the program loads.
    public init(_ spec: MapSpec, spinLockOffset: Int? = nil) {
        let readOnly = spec.flags & MapFlags.rdonlyProg != 0 && spec.section != nil
        self.init(
            name: spec.name, type: spec.type, keySize: spec.keySize, valueSize: spec.valueSize,
            maxEntries: spec.maxEntries, flags: spec.flags, hasBTF: spec.btfValueTypeID != 0,
            spinLockOffset: spinLockOffset,
            frozenValue: readOnly ? (spec.initialEntries.first?.value ?? Array(repeating: 0, count: spec.valueSize)) : nil,
            inner: spec.inner?.spec)
    }
}

/// What the verifier checks a program as.
public struct VerifierOptions: Sendable, Hashable {
    /// The kernel's limit on instructions processed (`BPF_COMPLEXITY_LIMIT_INSNS`).
    public var complexityLimit: Int
    /// Whether the loader has CAP_BPF/CAP_PERFMON (uninitialised stack reads, pointer
    /// comparisons and arithmetic allowed). Unprivileged checks are partial.
    public var privileged: Bool
    /// `expected_attach_type` (`BPF_XDP_DEVMAP` = 38 lets XDP read `egress_ifindex`).
    public var expectedAttachType: UInt32
    /// Whether the program comes with BTF function info (needed for callbacks).
    public var hasFunctionInfo: Bool
    /// Whether the license is GPL-compatible (some helpers are GPL-only).
    public var gplCompatible: Bool
    /// The machine's CPU count (bpf_get_smp_processor_id's bound).
    public var cpuCount: Int
    /// How many path steps a refusal shows at most.
    public var pathSteps: Int

    public init(
        complexityLimit: Int = 1_000_000, privileged: Bool = true, expectedAttachType: UInt32 = 0,
        hasFunctionInfo: Bool = true, gplCompatible: Bool = true, cpuCount: Int = 2, pathSteps: Int = 8
    ) {
        self.complexityLimit = complexityLimit
        self.privileged = privileged
        self.expectedAttachType = expectedAttachType
        self.hasFunctionInfo = hasFunctionInfo
        self.gplCompatible = gplCompatible
        self.cpuCount = cpuCount
        self.pathSteps = pathSteps
    }
}

/// The verifier's counters, as the kernel's log ends with them.
public struct VerifierStatistics: Sendable, Hashable, Codable {
    /// Instructions processed over all paths (`processed N insns`).
    public var processedInstructions: Int
    /// States saved for pruning at the peak (`peak_states`).
    public var peakStates: Int
    /// States saved for pruning in all (`total_states`).
    public var totalStates: Int
    /// The most states saved at one instruction (`max_states_per_insn`).
    public var maxStatesPerInstruction: Int
    /// Paths cut short because an equivalent state had been verified.
    public var prunedPaths: Int

    public init() {
        processedInstructions = 0
        peakStates = 0
        totalStates = 0
        maxStatesPerInstruction = 0
        prunedPaths = 0
    }
}

/// One step of the path that led to a refusal.
public struct VerifierPathStep: Sendable, Hashable, Codable {
    /// The instruction index.
    public var index: Int
    /// The instruction, in bpfsim's assembly syntax.
    public var instruction: String
    /// The register it wrote and its state after (`R2=pkt(off=14,r=0)`), or for a
    /// conditional jump whether it was taken.
    public var note: String?
}

/// Why the verifier refuses a program: the kernel's first error line, a plain
/// explanation, and the path that led there.
public struct VerifierError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable identifier for the class of error (`packet_bounds`, `null_pointer`, ...).
    public let code: String
    /// The kernel's wording of its first error line, so it can be searched for.
    public let message: String
    /// The kernel's further lines, when it prints more than one.
    public let details: [String]
    /// The instruction the error is at, when it is at one.
    public let index: Int?
    /// What went wrong, in plain words, and what usually fixes it.
    public var explanation: String
    /// The instructions and register states that led here, oldest first.
    public var path: [VerifierPathStep]

    init(code: String, message: String, details: [String] = [], index: Int?, explanation: String) {
        self.code = code
        self.message = message
        self.details = details
        self.index = index
        self.explanation = explanation
        self.path = []
    }

    public var description: String { message }
}

/// The verdict on a program.
public struct VerifierResult: Sendable {
    public var accepted: Bool { error == nil }
    /// Why the program is refused; nil when it is accepted.
    public var error: VerifierError?
    public var statistics: VerifierStatistics
}

/// bpfsim's static verifier: predicts whether the Linux kernel's verifier accepts a
/// program, and explains a refusal. See docs/verifier.md.
public enum Verifier {
    /// Verifies a validated program whose map references are still pseudo `lddw`s by map
    /// index (`BPF_PSEUDO_MAP_IDX`, `BPF_PSEUDO_MAP_IDX_VALUE`, or fds taken as indices).
    public static func verify(
        program: Program, type: ProgramType, maps: [VerifierMap], options: VerifierOptions = .init()
    ) -> VerifierResult {
        let analysis = Analysis(program: program, type: type, maps: maps, options: options)
        do {
            try analysis.run()
            return VerifierResult(error: nil, statistics: analysis.statistics)
        } catch {
            var error = error
            error.path = analysis.describePath(for: error)
            return VerifierResult(error: error, statistics: analysis.statistics)
        }
    }

    /// Verifies raw instructions: what `Program` validation refuses is reported in the
    /// kernel's words.
    public static func verify(
        instructions: [Instruction], type: ProgramType, maps: [VerifierMap], options: VerifierOptions = .init()
    ) -> VerifierResult {
        if let error = ControlFlow.checkRaw(instructions) {
            return VerifierResult(error: error, statistics: VerifierStatistics())
        }
        do {
            let program = try Program(instructions: instructions, options: ValidationOptions(strictness: .conformance))
            return verify(program: program, type: type, maps: maps, options: options)
        } catch {
            return VerifierResult(error: Rejections.invalidProgram(error), statistics: VerifierStatistics())
        }
    }

    /// Verifies program `name`-less: maps given as specs.
    public static func verify(
        instructions: [Instruction], type: ProgramType, maps: [MapSpec], options: VerifierOptions = .init()
    ) -> VerifierResult {
        verify(instructions: instructions, type: type, maps: maps.map { VerifierMap($0) }, options: options)
    }
}
