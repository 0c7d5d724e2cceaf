/// The guest address space: every address a program can hold is a region index in the
/// upper 32 bits and a byte offset in the lower 32 bits. Region 0 is never mapped, so
/// NULL and small integers are never valid pointers.
///
/// Guest addresses never equal host addresses. The same program sees the same pointer
/// values on every run and on every engine, and a guest address can only reach host
/// memory through `translate`, which checks it against its region's limits.
///
/// The table is a flat array of 32-byte `RegionEntry` values that the interpreter reads
/// and the JIT reads with inline code, so its layout is part of the JIT's contract.
public final class AddressSpace {
    /// Fixed region numbers. Maps, global data and ring buffers get numbers from
    /// `firstDynamic` on.
    public enum Well: UInt32 {
        /// Never mapped: address 0 and every small integer fall here.
        case null = 0
        /// The program's stack frames (see `Stack`).
        case stack = 1
        /// The program's context (`struct xdp_md`, `struct __sk_buff`, ...). Reads and
        /// writes always take the slow path, which translates fields as the kernel does.
        case context = 2
        /// The packet, or the flat input memory of a conformance-style run.
        case packet = 3
        /// Function addresses (`BPF_PSEUDO_FUNC`): offset = instruction index. Not readable.
        case code = 4
        /// Map pointers (what `lddw map_fd` loads): offset = the map's index. Not readable.
        case maps = 5
        /// Read-only bytes helpers hand to callbacks (the key `bpf_for_each_map_elem` passes).
        case scratch = 6
    }

    public static let firstDynamic: UInt32 = 8
    /// Offsets are 32 bits; a region can hold at most this many bytes.
    public static let maximumRegionSize = UInt64(UInt32.max)

    /// Region table; `capacity` entries, all zero (unmapped) beyond `count`.
    public private(set) var table: UnsafeMutablePointer<RegionEntry>
    public private(set) var capacity: Int
    /// One past the highest region number in use.
    public private(set) var count: Int
    private var descriptors: [RegionDescriptor?]

    public init(capacity: Int = 64) {
        self.capacity = max(capacity, Int(Self.firstDynamic))
        table = .allocate(capacity: self.capacity)
        table.initialize(repeating: RegionEntry(), count: self.capacity)
        count = Int(Self.firstDynamic)
        descriptors = Array(repeating: nil, count: self.capacity)
    }

    deinit {
        table.deallocate()
    }

    /// The guest address of `offset` in `region`.
    @inline(__always)
    public static func address(region: UInt32, offset: UInt32 = 0) -> UInt64 {
        UInt64(region) << 32 | UInt64(offset)
    }

    /// Maps host memory as a region. The caller keeps `base` alive and unmoved until the
    /// region is unmapped or remapped.
    public func map(
        _ region: UInt32, name: String, kind: RegionDescriptor.Kind, base: UnsafeMutableRawPointer?,
        size: Int, writable: Bool
    ) {
        precondition(Int(region) < capacity, "region \(region) beyond capacity; use allocateRegion")
        precondition(size >= 0 && UInt64(size) <= Self.maximumRegionSize, "region larger than 4 GiB")
        let fast = kind.isFastPath
        table[Int(region)] = RegionEntry(
            base: base,
            readLimit: fast ? UInt64(size) : 0,
            writeLimit: fast && writable ? UInt64(size) : 0,
            kind: UInt64(kind.code))
        descriptors[Int(region)] = RegionDescriptor(name: name, kind: kind, size: size, writable: writable)
        count = max(count, Int(region) + 1)
    }

    /// Takes the next free region number (growing the table if needed). Only between runs:
    /// engines keep `table` in a register while they run.
    public func allocateRegion() -> UInt32 {
        if count == capacity {
            let newCapacity = capacity * 2
            let newTable = UnsafeMutablePointer<RegionEntry>.allocate(capacity: newCapacity)
            newTable.initialize(from: table, count: capacity)
            (newTable + capacity).initialize(repeating: RegionEntry(), count: newCapacity - capacity)
            table.deallocate()
            table = newTable
            descriptors += Array(repeating: nil, count: newCapacity - capacity)
            capacity = newCapacity
        }
        let region = UInt32(count)
        count += 1
        return region
    }

    /// Changes a region's size, keeping its base (the stack does this on every call).
    @inline(__always)
    public func setLimit(_ region: UInt32, size: UInt64) {
        table[Int(region)].readLimit = size
        table[Int(region)].writeLimit = size
    }

    public func unmap(_ region: UInt32) {
        table[Int(region)] = RegionEntry()
        descriptors[Int(region)] = nil
    }

    public func descriptor(of region: UInt32) -> RegionDescriptor? {
        Int(region) < capacity ? descriptors[Int(region)] : nil
    }

    /// The host address of `size` bytes at guest `address`, or nil when they are not all
    /// inside one fast-path region with the needed permission.
    @inline(__always)
    public func translate(_ address: UInt64, size: Int, write: Bool) -> UnsafeMutableRawPointer? {
        let region = address >> 32
        guard region < UInt64(capacity) else { return nil }
        let entry = table[Int(truncatingIfNeeded: region)]
        let end = (address & 0xffff_ffff) &+ UInt64(truncatingIfNeeded: size)  // cannot overflow: < 2^33
        guard end <= (write ? entry.writeLimit : entry.readLimit) else { return nil }
        return entry.base.unsafelyUnwrapped + Int(truncatingIfNeeded: address & 0xffff_ffff)
    }

    /// Describes where `address` falls, for fault messages: the region it is in or
    /// nearest to, and how far outside it the access is.
    public func describe(_ address: UInt64, size: Int) -> String {
        let region = UInt32(truncatingIfNeeded: address >> 32)
        let offset = address & 0xffff_ffff
        // Just below the start of the next region: a negative offset from its base.
        if offset >= 0xffff_0000, region < UInt32.max, let next = descriptor(of: region + 1) {
            return "\(0x1_0000_0000 - offset) bytes before the start of \(next.name)"
        }
        guard let descriptor = descriptor(of: region) else {
            return address < 0x1_0000 ? "a NULL or small-integer address" : "no mapped region"
        }
        // The stack's accessible size changes with the call depth.
        let limit = descriptor.kind == .stack ? table[Int(region)].readLimit : UInt64(descriptor.size)
        let name = descriptor.kind == .stack ? "the stack (current frame ends at r10)" : descriptor.name
        let end = offset + UInt64(size)
        if end <= limit {
            return
                "\(name) at offset \(offset), which is \(descriptor.writable ? "not accessible this way" : "read-only")"
        }
        if offset == limit {
            return "right after the end of \(name) (\(limit) bytes)"
        }
        if offset > limit {
            return "\(offset - limit) bytes after the end of \(name) (\(limit) bytes)"
        }
        return "offset \(offset) of \(name) (\(limit) bytes): the access runs \(end - limit) bytes past its end"
    }
}

/// One row of the region table: 32 bytes, read by the JIT at fixed offsets
/// (base +0, readLimit +8, writeLimit +16, kind +24).
@frozen
public struct RegionEntry {
    /// Host address of guest offset 0.
    public var base: UnsafeMutableRawPointer?
    /// An access of n bytes at offset o may read when o + n <= readLimit. 0 sends every
    /// read to the slow path (unmapped regions, the context).
    public var readLimit: UInt64
    /// The same for writes; 0 for read-only regions.
    public var writeLimit: UInt64
    public var kind: UInt64

    public init(base: UnsafeMutableRawPointer? = nil, readLimit: UInt64 = 0, writeLimit: UInt64 = 0, kind: UInt64 = 0) {
        self.base = base
        self.readLimit = readLimit
        self.writeLimit = writeLimit
        self.kind = kind
    }
}

// RegionEntry holds a raw pointer, which Swift does not consider Sendable; the address
// space is confined to one engine run at a time.
extension RegionEntry: @unchecked Sendable {}

/// What a region is, for messages and for the slow path.
public struct RegionDescriptor: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case stack
        case context
        case packet
        case memory
        case mapValues(map: Int)
        case globalData
        case ringBuffer
        case code

        /// Regions whose accesses are plain memory; the rest always take the slow path.
        var isFastPath: Bool {
            switch self {
            case .context, .code: false
            default: true
            }
        }

        var code: Int {
            switch self {
            case .stack: 1
            case .context: 2
            case .packet: 3
            case .code: 4
            case .memory: 5
            case .mapValues: 6
            case .globalData: 7
            case .ringBuffer: 8
            }
        }
    }

    public let name: String
    public let kind: Kind
    public let size: Int
    public let writable: Bool
}
