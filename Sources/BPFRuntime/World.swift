/// Everything a program can observe that does not come from its input: the time, random
/// numbers, which CPU it runs on. All of it is injected, so a run is reproducible: the
/// same program, input and world give the same result on every engine and every machine.
public struct World: Sendable, Hashable {
    /// The value `bpf_ktime_get_ns` returns first (monotonic time since boot, in ns).
    public var monotonicNanoseconds: UInt64
    /// Added to the clock after every read, so consecutive reads differ as on real
    /// hardware. 0 freezes the clock.
    public var clockStep: UInt64
    /// Seed of `bpf_get_prandom_u32`.
    public var randomSeed: UInt64
    /// The CPU a run executes on (`bpf_get_smp_processor_id`); also which slot of a
    /// per-CPU map it sees.
    public var cpu: UInt32
    /// How many CPUs the emulated machine has (per-CPU maps hold this many values).
    public var cpuCount: Int
    /// `bpf_get_numa_node_id`.
    public var numaNode: UInt32

    public init(
        monotonicNanoseconds: UInt64 = 1_000_000_000, clockStep: UInt64 = 1_000, randomSeed: UInt64 = 0x5eed,
        cpu: UInt32 = 0, cpuCount: Int = 1, numaNode: UInt32 = 0
    ) {
        self.monotonicNanoseconds = monotonicNanoseconds
        self.clockStep = clockStep
        self.randomSeed = randomSeed
        self.cpu = cpu
        self.cpuCount = cpuCount
        self.numaNode = numaNode
    }
}

/// The changing part of the world during runs: the clock and the random stream.
public struct WorldState: Sendable {
    public private(set) var world: World
    private var now: UInt64
    private var random: UInt64

    public init(_ world: World) {
        self.world = world
        now = world.monotonicNanoseconds
        random = world.randomSeed
    }

    /// Reads the monotonic clock and advances it by the world's step.
    public mutating func readClock() -> UInt64 {
        let value = now
        now &+= world.clockStep
        return value
    }

    /// Sets the clock, for example to a packet's capture timestamp.
    public mutating func setClock(_ nanoseconds: UInt64) { now = nanoseconds }

    /// The next value of the random stream (splitmix64, then the upper 32 bits).
    public mutating func nextRandom32() -> UInt32 {
        random &+= 0x9e37_79b9_7f4a_7c15
        var z = random
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        z ^= z >> 31
        return UInt32(truncatingIfNeeded: z >> 32)
    }

    public var cpu: UInt32 {
        get { world.cpu }
        set { world.cpu = newValue }
    }
}
