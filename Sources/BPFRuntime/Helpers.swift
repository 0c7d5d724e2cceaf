import BPFCore

/// A helper function, by its kernel id (`enum bpf_func_id` in linux/bpf.h).
public struct Helper: Sendable {
    public typealias Function = @Sendable (inout HelperCall) throws(ExecutionFault) -> UInt64

    public let id: Int32
    /// The kernel's name, `bpf_map_lookup_elem`.
    public let name: String
    public let function: Function

    public init(id: Int32, name: String? = nil, _ function: @escaping Function) {
        self.id = id
        self.name = name ?? HelperNames.name(of: id) ?? "helper_\(id)"
        self.function = function
    }
}

/// The helpers a machine offers, keyed by kernel id. Adding a helper never touches the
/// engines: both look helpers up here and call them through `HelperCall`.
public struct HelperRegistry: Sendable {
    private var helpers: [Helper?] = Array(repeating: nil, count: 256)

    public init() {}

    public init(_ helpers: [Helper]) {
        for helper in helpers { register(helper) }
    }

    public mutating func register(_ helper: Helper) {
        precondition(helper.id >= 0, "helper ids are non-negative")
        if Int(helper.id) >= helpers.count {
            helpers += Array(repeating: nil, count: Int(helper.id) + 1 - helpers.count)
        }
        helpers[Int(helper.id)] = helper
    }

    public mutating func register(contentsOf other: HelperRegistry) {
        for case let helper? in other.helpers { register(helper) }
    }

    @inline(__always)
    public subscript(id: Int64) -> Helper? {
        guard id >= 0 && id < Int64(helpers.count) else { return nil }
        return helpers[Int(id)]
    }

    public var all: [Helper] { helpers.compactMap { $0 } }
}

/// One helper invocation: the argument registers, and access to the machine the program
/// runs on (memory, maps, world, output).
public struct HelperCall {
    public let machine: Machine
    /// The instruction index of the `call`.
    public let pc: Int
    public let name: String
    public var r1: UInt64
    public var r2: UInt64
    public var r3: UInt64
    public var r4: UInt64
    public var r5: UInt64
    /// The engine running the caller, for helpers that call back into the program.
    public unowned let engine: any CallbackInvoker

    public init(
        machine: Machine, pc: Int, name: String, registers: (UInt64, UInt64, UInt64, UInt64, UInt64),
        engine: any CallbackInvoker
    ) {
        self.machine = machine
        self.pc = pc
        self.name = name
        (r1, r2, r3, r4, r5) = registers
        self.engine = engine
    }

    /// Runs the BPF function starting at instruction `function` of the calling program (a
    /// callback of `bpf_loop` and friends) with r1-r5 = `arguments`, and returns its r0.
    public func invoke(function: Int, arguments: (UInt64, UInt64, UInt64, UInt64, UInt64)) throws(ExecutionFault)
        -> UInt64
    {
        try engine.invoke(function: function, arguments: arguments, pc: pc)
    }

    /// A fault of this helper, at the calling instruction.
    public func fault(_ message: String) -> ExecutionFault {
        ExecutionFault(.helper(name: name, message: message), pc: pc)
    }

    /// Copies `count` bytes of guest memory at `address`.
    public func read(_ address: UInt64, count: Int) throws(ExecutionFault) -> [UInt8] {
        guard count > 0 else { return [] }
        let host = try machine.hostPointer(address, size: count, write: false, pc: pc)
        return Array(UnsafeRawBufferPointer(start: host, count: count))
    }

    /// Writes `bytes` to guest memory at `address`.
    public func write(_ bytes: [UInt8], to address: UInt64) throws(ExecutionFault) {
        guard !bytes.isEmpty else { return }
        let host = try machine.hostPointer(address, size: bytes.count, write: true, pc: pc)
        bytes.withUnsafeBytes { host.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
}

/// An engine that can run a function of the current program on behalf of a helper.
public protocol CallbackInvoker: AnyObject {
    func invoke(function: Int, arguments: (UInt64, UInt64, UInt64, UInt64, UInt64), pc: Int) throws(ExecutionFault)
        -> UInt64
}

/// Helpers that need nothing but the world: time, randomness, CPU.
public enum WorldHelpers {
    /// jiffies_64 at boot: INITIAL_JIFFIES, `(unsigned long)(unsigned int)(-300 * HZ)`
    /// (include/linux/jiffies.h: the 32-bit jiffies wrap five minutes after boot), at HZ=1000.
    public static let initialJiffies: UInt64 = (1 << 32) - 300 * 1000

    public static var all: [Helper] {
        [
            // bpf_ktime_get_ns (5): monotonic ns since boot.
            Helper(id: 5) { call throws(ExecutionFault) in call.machine.world.readClock() },
            // bpf_get_prandom_u32 (7).
            Helper(id: 7) { call throws(ExecutionFault) in UInt64(call.machine.world.nextRandom32()) },
            // bpf_get_smp_processor_id (8).
            Helper(id: 8) { call throws(ExecutionFault) in UInt64(call.machine.world.cpu) },
            // bpf_get_numa_node_id (42).
            Helper(id: 42) { call throws(ExecutionFault) in UInt64(call.machine.world.world.numaNode) },
            // bpf_jiffies64 (118): jiffies at HZ=1000 (the common CONFIG_HZ for servers is 250
            // or 1000; bpfsim uses 1000 so one jiffy is one millisecond of the emulated clock),
            // counted from the kernel's INITIAL_JIFFIES, so never 0 (see `initialJiffies`).
            Helper(id: 118) { call throws(ExecutionFault) in
                initialJiffies &+ call.machine.world.readClock() / 1_000_000
            },
            // bpf_ktime_get_boot_ns (125): the emulated machine never suspends, so it equals ktime_get_ns.
            Helper(id: 125) { call throws(ExecutionFault) in call.machine.world.readClock() },
            // bpf_ktime_get_coarse_ns (160): the same clock, at full resolution.
            Helper(id: 160) { call throws(ExecutionFault) in call.machine.world.readClock() },
            // bpf_ktime_get_tai_ns (208): TAI is 37 s ahead of UTC; bpfsim's clock has no epoch,
            // so it returns the monotonic clock.
            Helper(id: 208) { call throws(ExecutionFault) in call.machine.world.readClock() },
        ]
    }
}
