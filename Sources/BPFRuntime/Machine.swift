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
    /// Gives the context region its fields; nil when the program has no context.
    public var context: (any ContextAccessor)?

    /// The stack: `maxCallDepth` frames of `stackFrameSize` bytes. Frame d occupies
    /// offsets [d * size, (d + 1) * size) and its r10 is (d + 1) * size, so the region's
    /// limit tracks the call depth and a deeper (dead) frame is never accessible.
    public let stack: UnsafeMutableRawPointer
    private var input: UnsafeMutableRawPointer?
    private var inputCapacity = 0
    public private(set) var inputSize = 0

    public init(
        helpers: HelperRegistry = HelperRegistry(WorldHelpers.all), world: World = World(),
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
        setInput([])
    }

    deinit {
        stack.deallocate()
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
        ExecutionFault(
            .outOfBounds(address: address, size: size, write: write, where: memory.describe(address, size: size)),
            pc: pc)
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
