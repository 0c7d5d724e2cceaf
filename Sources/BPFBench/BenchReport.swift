/// What `bpfsim bench` measured, as `--json` prints it (docs/json.md, "bench"). Times are
/// medians of several samples, in nanoseconds per run of the program; ratios divide by
/// the native time of the same run. A peer that could not run has a nil time and says
/// why in `BenchReport.unavailable`.
public struct BenchReport: Codable, Sendable {
    /// The format of this report; bumped when a key changes meaning or goes away.
    public var version = 1
    public var machine: Machine
    public var method: Method
    /// Peers that did not run at all, with one sentence each ("kernel": why bpf() is refused).
    public var unavailable: [String: String]
    public var programs: [Program]

    public struct Machine: Codable, Sendable {
        /// Online CPUs (the benchmark itself runs on one).
        public var cpus: Int
        /// `uname -r`.
        public var kernel: String
        /// How bpfsim was built (`debug` or `release`): debug builds are far slower.
        public var build: String
    }

    public struct Method: Codable, Sendable {
        /// Samples per peer, after one warm-up sample that is thrown away.
        public var samples: Int
        /// Runs per sample, when fixed by `--iterations`; nil when calibrated per peer so a
        /// sample lasts at least `targetSampleMilliseconds`.
        public var iterations: Int?
        public var targetSampleMilliseconds: Double
        /// Always "median" (of the samples' ns per run).
        public var statistic: String
    }

    /// Times (or ratios) by peer.
    public struct Peers: Codable, Sendable, Equatable {
        public var native: Double?
        public var jit: Double?
        public var interpreter: Double?
        public var kernel: Double?

        public init(native: Double? = nil, jit: Double? = nil, interpreter: Double? = nil, kernel: Double? = nil) {
            self.native = native
            self.jit = jit
            self.interpreter = interpreter
            self.kernel = kernel
        }
    }

    public struct Program: Codable, Sendable {
        public var name: String
        /// The input file (from gen_inputs.c) and its size.
        public var input: String
        public var inputBytes: Int
        /// Instruction slots of the flat-memory (`VARIANT_MEM`) function.
        public var instructions: Int
        /// BPF instructions the interpreter executed in one run.
        public var executedInstructions: UInt64?
        /// Each peer's return value on a fresh state (the first run), as 32 bits: every
        /// variant returns a 32-bit fold and the kernel reports 32 bits.
        public var results: [String: UInt32]
        /// Whether every peer that ran returned native's value.
        public var agree: Bool
        public var nsPerRun: Peers
        /// nsPerRun / native's nsPerRun (native itself: 1).
        public var ratioToNative: Peers
        /// The interpreter's ns per executed BPF instruction.
        public var interpreterNsPerInstruction: Double?
        /// JIT compile time (the code, not the mapping) per instruction slot, and its inverse.
        public var compileNsPerInstruction: Double
        public var compileInstructionsPerSecond: Double
        /// Why a peer did not run for this program only (e.g. a fault), by peer name.
        public var notes: [String: String]
    }
}
