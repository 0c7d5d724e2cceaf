import BPFCore

/// Limits that keep a run finite and bounded.
public struct ExecutionLimits: Sendable, Hashable {
    /// Instructions one run may execute before it faults (callbacks and tail calls count).
    public var instructionBudget: UInt64
    /// Stack frames: the kernel's `MAX_CALL_FRAMES` is 8.
    public var maxCallDepth: Int
    /// Bytes of stack per frame: the kernel's `MAX_BPF_STACK` is 512.
    public var stackFrameSize: Int

    public init(instructionBudget: UInt64 = 1_000_000, maxCallDepth: Int = 8, stackFrameSize: Int = 512) {
        self.instructionBudget = instructionBudget
        self.maxCallDepth = maxCallDepth
        self.stackFrameSize = stackFrameSize
    }
}

/// Gives the context region its meaning: program types translate context field
/// accesses the way the kernel rewrites them (`ctx->data` is a 32-bit field in C and a
/// pointer in the kernel).
public protocol ContextAccessor: AnyObject {
    /// The value of a load of `size` bytes at `offset`, or nil if the program may not read it.
    func load(offset: UInt32, size: Int, machine: Machine) -> UInt64?
    /// Performs a store; false if the program may not write there.
    func store(offset: UInt32, size: Int, value: UInt64, machine: Machine) -> Bool
    /// Why an access `load` or `store` refused is refused, for the fault; nil to describe
    /// the region as for any other address.
    func explainRefusal(offset: UInt32, size: Int, write: Bool) -> String?
}

extension ContextAccessor {
    public func explainRefusal(offset: UInt32, size: Int, write: Bool) -> String? { nil }
}

/// The emulated machine a program runs on: its address space, helpers, world and output.
/// Both engines run against the same `Machine`, so memory and helper semantics are
/// defined once. Not thread-safe: one run at a time.
public final class Machine {
    public let memory: AddressSpace
    public var helpers: HelperRegistry
    public var world: WorldState
    public var limits: ExecutionLimits
    /// Lines the program printed with `bpf_trace_printk` and friends, as the trace pipe shows them.
    public var printk: [String] = []
    /// The same lines as `cat /sys/kernel/tracing/trace_pipe` shows them, with the task,
    /// CPU and timestamp of the emulated world.
    public var tracePipe: [String] = []
    /// Gives the context region its fields; nil when the program has no context.
    public var context: (any ContextAccessor)?
    /// The maps, by index; a map's guest pointer names its index.
    public private(set) var maps: [BPFMap] = []
    /// The programs tail calls can reach, by index (prog array values are these indices).
    public var programs: [Program] = []
    /// Names of `programs`, for messages.
    public var programNames: [String] = []

    // MARK: Per-run output and state

    /// Where the program asked the packet to go, set by `bpf_redirect*`.
    public var redirect: RedirectTarget?
    /// A tail call the program asked for: the index into `programs`. Engines check it after
    /// `bpf_tail_call` returns, and jump.
    public var pendingTailCall: Int?
    /// Tail calls taken in this run (the kernel allows 33, `MAX_TAIL_CALL_CNT`).
    public var tailCallCount = 0
    public static let maxTailCalls = 33

    /// Records a `bpf_trace_printk` line, as the message and as its trace-pipe line.
    public func recordPrintk(_ message: String) {
        printk.append(message)
        let task = world.task
        let comm = String(repeating: " ", count: max(0, 16 - task.comm.count)) + task.comm
        let pid = String(task.pid) + String(repeating: " ", count: max(0, 7 - String(task.pid).count))
        let cpu = String(repeating: "0", count: max(0, 3 - String(world.cpu).count)) + String(world.cpu)
        let microseconds = world.now / 1000
        let fraction = String(microseconds % 1_000_000)
        let seconds = String(microseconds / 1_000_000)
        tracePipe.append(
            "\(comm)-\(pid) [\(cpu)] ..... \(String(repeating: " ", count: max(0, 5 - seconds.count)))\(seconds)."
                + "\(String(repeating: "0", count: 6 - fraction.count))\(fraction): bpf_trace_printk: \(message)")
    }

    /// Clears what one run leaves behind; called by the facade before each run.
    public func beginRun() {
        redirect = nil
        pendingTailCall = nil
        tailCallCount = 0
    }

    /// Records the submitted ring-buffer and perf-event records, and clears them.
    public func drainEvents() -> [EventRecord] {
        var records: [EventRecord] = []
        for map in maps {
            if let ring = map as? RingBufferMap {
                records += ring.drain().map { EventRecord(map: map.name, kind: .ringBuffer, cpu: nil, data: $0) }
            } else if let perf = map as? PerfEventArrayMap {
                records += perf.drain().map { EventRecord(map: map.name, kind: .perfEvent, cpu: $0.cpu, data: $0.data) }
            }
        }
        return records
    }

    /// The stack: `maxCallDepth` frames of `stackFrameSize` bytes. Frame d occupies
    /// offsets [d * size, (d + 1) * size) and its r10 is (d + 1) * size, so the region's
    /// limit tracks the call depth and a deeper (dead) frame is never accessible.
    public let stack: UnsafeMutableRawPointer
    /// Region 6: read-only bytes for callbacks, `scratchSlotSize` per nesting level.
    public let scratch: UnsafeMutableRawPointer
    public static let scratchSlotSize = 512
    /// How many helper callbacks are running inside each other.
    public var callbackNesting = 0
    private var input: UnsafeMutableRawPointer?
    private var inputCapacity = 0
    public private(set) var inputSize = 0

    public init(
        helpers: HelperRegistry = StandardHelpers.registry, world: World = World(),
        limits: ExecutionLimits = .init()
    ) {
        memory = AddressSpace()
        self.helpers = helpers
        self.world = WorldState(world)
        self.limits = limits
        let stackBytes = limits.maxCallDepth * limits.stackFrameSize
        stack = .allocate(byteCount: stackBytes, alignment: 16)
        stack.initializeMemory(as: UInt8.self, repeating: 0, count: stackBytes)
        memory.map(
            AddressSpace.Well.stack.rawValue, name: "the stack", kind: .stack, base: stack, size: stackBytes,
            writable: true)
        memory.map(
            AddressSpace.Well.code.rawValue, name: "program code", kind: .code, base: nil, size: 0, writable: false)
        let scratchBytes = Self.scratchSlotSize * limits.maxCallDepth
        scratch = .allocate(byteCount: scratchBytes, alignment: 16)
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: scratchBytes)
        memory.map(
            AddressSpace.Well.scratch.rawValue, name: "a callback's key", kind: .memory, base: scratch,
            size: scratchBytes,
            writable: false)
        setInput([])
    }

    deinit {
        stack.deallocate()
        scratch.deallocate()
        input?.deallocate()
    }

    /// The frame pointer of frame `depth` (0 = the entry function).
    @inline(__always)
    public func framePointer(depth: Int) -> UInt64 {
        AddressSpace.address(
            region: AddressSpace.Well.stack.rawValue, offset: UInt32((depth + 1) * limits.stackFrameSize))
    }

    /// Makes frames 0...depth accessible.
    @inline(__always)
    public func enterFrame(depth: Int) {
        memory.setLimit(AddressSpace.Well.stack.rawValue, size: UInt64((depth + 1) * limits.stackFrameSize))
    }

    /// Places `bytes` as the packet region (the flat memory of a conformance-style run) and
    /// returns its guest address.
    @discardableResult
    public func setInput(_ bytes: [UInt8]) -> UInt64 {
        if bytes.count > inputCapacity || input == nil {
            input?.deallocate()
            inputCapacity = max(bytes.count, 64)
            input = .allocate(byteCount: inputCapacity, alignment: 16)
        }
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { input!.copyMemory(from: base, byteCount: bytes.count) }
        }
        inputSize = bytes.count
        memory.map(
            AddressSpace.Well.packet.rawValue, name: "the input memory", kind: .memory, base: input, size: bytes.count,
            writable: true)
        return AddressSpace.address(region: AddressSpace.Well.packet.rawValue)
    }

    /// The input memory as it is now (programs may have written to it).
    public var inputBytes: [UInt8] {
        guard let input else { return [] }
        return Array(UnsafeRawBufferPointer(start: input, count: inputSize))
    }

    /// Clears the stack frames the last run used, so no run sees another's leftovers.
    public func resetStack() {
        stack.initializeMemory(as: UInt8.self, repeating: 0, count: dirtyFrames * limits.stackFrameSize)
        dirtyFrames = 1
        enterFrame(depth: 0)
    }

    /// Engines report how many frames a run used, so the next `resetStack` clears them.
    public func noteFramesUsed(_ frames: Int) {
        dirtyFrames = min(max(dirtyFrames, frames), limits.maxCallDepth)
    }

    private var dirtyFrames = 1

    /// Where `skb->data` starts in the packet region, for LD_ABS/LD_IND.
    public var legacyDataOffset: UInt32 = 0
    /// Reads for LD_ABS/LD_IND at negative offsets (`SKF_NET_OFF`, `SKF_LL_OFF`), given by
    /// program types that have link and network headers.
    public var legacyNegativeOffsetLoad: ((_ offset: Int64, _ size: Int) -> UInt64?)?

    /// LD_ABS / LD_IND: `size` bytes at `offset` from `skb->data`, big-endian, or nil when
    /// outside the packet (the program then ends with r0 = 0, as in the kernel).
    public func legacyPacketLoad(offset: Int64, size: Int) -> UInt64? {
        if offset < 0 { return legacyNegativeOffsetLoad?(offset, size) }
        guard offset <= Int64(UInt32.max) - Int64(legacyDataOffset) else { return nil }
        let address = AddressSpace.address(
            region: AddressSpace.Well.packet.rawValue, offset: legacyDataOffset + UInt32(offset))
        guard let p = memory.translate(address, size: size, write: false) else { return nil }
        var value: UInt64 = 0
        for index in 0..<size { value = value << 8 | UInt64(p.load(fromByteOffset: index, as: UInt8.self)) }
        return value
    }

    // MARK: Maps

    /// Creates a map from its definition, with its initial entries, and returns it.
    @discardableResult
    public func createMap(_ spec: MapSpec) throws(MapError) -> BPFMap {
        let kind: BPFMap.Type
        switch spec.type {
        case .array, .percpuArray: kind = ArrayMap.self
        case .hash, .percpuHash, .hashOfMaps, .devmapHash: kind = HashMap.self
        case .lruHash, .lruPercpuHash: kind = LRUHashMap.self
        case .progArray, .arrayOfMaps, .devmap, .cpumap, .xskmap, .cgroupArray: kind = ReferenceArrayMap.self
        case .perfEventArray: kind = PerfEventArrayMap.self
        case .lpmTrie: kind = LPMTrieMap.self
        case .queue, .stack: kind = QueueStackMap.self
        case .ringbuf: kind = RingBufferMap.self
        case .bloomFilter: kind = BloomFilterMap.self
        default: throw .notSupported("map '\(spec.name)': type \(spec.type.kernelName) is not emulated")
        }
        let map = try kind.init(spec: spec, index: maps.count, machine: self)
        for entry in spec.initialEntries {
            if spec.type == .queue || spec.type == .stack || spec.type == .bloomFilter {
                try map.update(key: [], value: entry.value, flags: UpdateFlags.any)
            } else {
                try map.update(key: entry.key, value: entry.value, flags: UpdateFlags.any)
            }
        }
        maps.append(map)
        return map
    }

    /// The map a register value points to, if it is a map pointer.
    @inline(__always)
    public func map(at pointer: UInt64) -> BPFMap? {
        guard pointer >> 32 == UInt64(AddressSpace.Well.maps.rawValue) else { return nil }
        let index = Int(pointer & 0xffff_ffff)
        return index < maps.count ? maps[index] : nil
    }

    public func map(named name: String) -> BPFMap? {
        maps.first { $0.name == name }
    }

    // MARK: Memory outside the fast path

    /// The host address of `size` bytes at `address`, for helpers; a fault when the
    /// range is not all inside one accessible region.
    public func hostPointer(_ address: UInt64, size: Int, write: Bool, pc: Int) throws(ExecutionFault)
        -> UnsafeMutableRawPointer
    {
        if let host = memory.translate(address, size: size, write: write) { return host }
        throw outOfBounds(address, size: size, write: write, pc: pc)
    }

    /// A load the inline check refused: the context, or a fault.
    public func slowLoad(_ address: UInt64, size: Int, pc: Int) throws(ExecutionFault) -> UInt64 {
        if address >> 32 == UInt64(AddressSpace.Well.context.rawValue), let context,
            let value = context.load(offset: UInt32(truncatingIfNeeded: address), size: size, machine: self)
        {
            return value
        }
        throw outOfBounds(address, size: size, write: false, pc: pc)
    }

    /// A store the inline check refused: the context, or a fault.
    public func slowStore(_ address: UInt64, size: Int, value: UInt64, pc: Int) throws(ExecutionFault) {
        if address >> 32 == UInt64(AddressSpace.Well.context.rawValue), let context,
            context.store(offset: UInt32(truncatingIfNeeded: address), size: size, value: value, machine: self)
        {
            return
        }
        throw outOfBounds(address, size: size, write: true, pc: pc)
    }

    public func outOfBounds(_ address: UInt64, size: Int, write: Bool, pc: Int) -> ExecutionFault {
        var place = memory.describe(address, size: size)
        if address >> 32 == UInt64(AddressSpace.Well.context.rawValue), let context,
            let reason = context.explainRefusal(offset: UInt32(truncatingIfNeeded: address), size: size, write: write)
        {
            place = reason
        }
        return ExecutionFault(.outOfBounds(address: address, size: size, write: write, where: place), pc: pc)
    }
}

/// A record a program sent to user space through a ring buffer or a perf event array.
public struct EventRecord: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        case ringBuffer = "ringbuf"
        case perfEvent = "perf_event"
    }

    public var map: String
    public var kind: Kind
    /// The perf buffer's CPU index; nil for ring buffers.
    public var cpu: Int?
    public var data: [UInt8]

    public init(map: String, kind: Kind, cpu: Int?, data: [UInt8]) {
        self.map = map
        self.kind = kind
        self.cpu = cpu
        self.data = data
    }
}

/// How a run ended.
public struct ExecutionResult: Sendable, Hashable {
    /// r0 at `exit` (0 after a fault).
    public var returnValue: UInt64
    /// Instructions executed, when the engine counts them exactly (the interpreter does).
    public var instructionCount: UInt64?
    public var fault: ExecutionFault?

    public init(returnValue: UInt64, instructionCount: UInt64?, fault: ExecutionFault?) {
        self.returnValue = returnValue
        self.instructionCount = instructionCount
        self.fault = fault
    }
}
