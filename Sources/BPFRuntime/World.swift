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
    /// The task `bpf_get_current_*` see.
    public var task: EmulatedTask
    /// Whether every perf event array starts with a reader at every index, as a tool that
    /// opened one perf event per CPU has; false leaves them empty, as under
    /// BPF_PROG_TEST_RUN, so output fails with -ENOENT until user space adds one.
    public var perfEventReaders: Bool = true
    /// The network devices a packet may arrive on or be redirected to, by ifindex. The
    /// default is the loopback device alone, which is where `BPF_PROG_TEST_RUN` puts a
    /// packet unless its context names another device.
    public var interfaces: [NetworkInterface]

    public init(
        monotonicNanoseconds: UInt64 = 1_000_000_000, clockStep: UInt64 = 1_000, randomSeed: UInt64 = 0x5eed,
        cpu: UInt32 = 0, cpuCount: Int = 1, numaNode: UInt32 = 0, task: EmulatedTask = EmulatedTask(),
        interfaces: [NetworkInterface] = [.loopback]
    ) {
        self.task = task
        self.interfaces = interfaces
        self.monotonicNanoseconds = monotonicNanoseconds
        self.clockStep = clockStep
        self.randomSeed = randomSeed
        self.cpu = cpu
        self.cpuCount = cpuCount
        self.numaNode = numaNode
    }
}

/// The process a program sees as `current`.
public struct EmulatedTask: Sendable, Hashable, Codable {
    /// The thread id (`pid` in the kernel's terms).
    public var pid: UInt32
    /// The process id (`tgid`).
    public var tgid: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Up to 15 bytes (`TASK_COMM_LEN` is 16 with the NUL).
    public var comm: String

    public init(pid: UInt32 = 1000, tgid: UInt32 = 1000, uid: UInt32 = 0, gid: UInt32 = 0, comm: String = "bpfsim") {
        self.pid = pid
        self.tgid = tgid
        self.uid = uid
        self.gid = gid
        self.comm = comm
    }
}

/// A network device of the emulated machine.
public struct NetworkInterface: Sendable, Hashable, Codable {
    public var ifindex: UInt32
    public var name: String
    /// `dev->dev_addr`: a frame to another unicast address is `PACKET_OTHERHOST`.
    public var address: [UInt8]
    /// `dev->broadcast`: a frame to it is `PACKET_BROADCAST`, to another multicast
    /// address `PACKET_MULTICAST`.
    public var broadcast: [UInt8]

    public init(ifindex: UInt32, name: String, address: [UInt8], broadcast: [UInt8]) {
        self.ifindex = ifindex
        self.name = name
        self.address = address
        self.broadcast = broadcast
    }

    /// `lo`, ifindex 1: all-zero address and broadcast address, as the kernel's loopback
    /// device has.
    public static let loopback = NetworkInterface(
        ifindex: 1, name: "lo", address: Array(repeating: 0, count: 6), broadcast: Array(repeating: 0, count: 6))
}

/// The changing part of the world during runs: the clock and the random stream.
public struct WorldState: Sendable {
    public private(set) var world: World
    private var clock: UInt64
    private var random: UInt64

    public init(_ world: World) {
        self.world = world
        clock = world.monotonicNanoseconds
        random = world.randomSeed
    }

    /// Reads the monotonic clock and advances it by the world's step.
    public mutating func readClock() -> UInt64 {
        let value = clock
        clock &+= world.clockStep
        return value
    }

    /// Sets the clock, for example to a packet's capture timestamp.
    public mutating func setClock(_ nanoseconds: UInt64) { clock = nanoseconds }

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

    public var task: EmulatedTask {
        get { world.task }
        set { world.task = newValue }
    }

    /// The clock's current value, without advancing it.
    public var now: UInt64 { clock }
}
