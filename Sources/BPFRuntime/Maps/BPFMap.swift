import BPFCore

/// Errors of map operations, as the kernel's `bpf(2)` and helpers report them.
public struct MapError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno (`ENOENT` = 2).
    public let errno: Int32
    public let message: String

    public init(errno: Int32, _ message: String) {
        self.errno = errno
        self.message = message
    }

    public static func notFound(_ what: String = "no such element") -> MapError { MapError(errno: 2, what) }  // ENOENT
    public static func tooBig(_ what: String = "the map is full") -> MapError { MapError(errno: 7, what) }  // E2BIG
    public static func noMemory(_ what: String = "out of space") -> MapError { MapError(errno: 12, what) }  // ENOMEM
    public static func busy(_ what: String) -> MapError { MapError(errno: 16, what) }  // EBUSY
    public static func exists(_ what: String = "the element exists") -> MapError { MapError(errno: 17, what) }  // EEXIST
    public static func invalid(_ what: String) -> MapError { MapError(errno: 22, what) }  // EINVAL
    public static func notSupported(_ what: String) -> MapError { MapError(errno: 95, what) }  // EOPNOTSUPP
    public static func permission(_ what: String) -> MapError { MapError(errno: 1, what) }  // EPERM

    /// The kernel's name of the errno, for messages (`-ENOENT`).
    public var errnoName: String {
        switch errno {
        case 1: "EPERM"
        case 2: "ENOENT"
        case 7: "E2BIG"
        case 12: "ENOMEM"
        case 16: "EBUSY"
        case 17: "EEXIST"
        case 22: "EINVAL"
        case 95: "EOPNOTSUPP"
        default: "errno \(errno)"
        }
    }

    /// What a helper returns: the negative errno as a 64-bit register value.
    public var helperReturn: UInt64 { UInt64(bitPattern: Int64(-errno)) }

    public var description: String { "\(message) (-\(errnoName))" }
}

/// Update flags (linux/bpf.h).
public enum UpdateFlags {
    /// `BPF_ANY`: create or update.
    public static let any: UInt64 = 0
    /// `BPF_NOEXIST`: create only.
    public static let noExist: UInt64 = 1
    /// `BPF_EXIST`: update only.
    public static let exist: UInt64 = 2
    /// `BPF_F_LOCK`: update under the value's spin lock.
    public static let lock: UInt64 = 4
}

/// A map: one implementation per type, shared by every engine. Program-side operations
/// (the helpers) take host pointers the caller has already checked; user-side
/// operations (the `bpf(2)` commands, `--state`, dumps) take and return bytes, with
/// per-CPU values laid out as the syscall does: one `round_up(value_size, 8)` slot per CPU.
open class BPFMap {
    public let spec: MapSpec
    /// The map's index in its machine's map table.
    public let index: Int
    public let cpuCount: Int
    public unowned let machine: Machine

    public var name: String { spec.name }
    public var type: MapType { spec.type }
    public var keySize: Int { spec.keySize }
    public var valueSize: Int { spec.valueSize }
    public var maxEntries: Int { spec.maxEntries }
    /// Bytes between consecutive values: the value size rounded up to 8, as in the kernel.
    public var valueStride: Int { (spec.valueSize + 7) & ~7 }

    public required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        self.spec = spec
        self.index = index
        self.machine = machine
        self.cpuCount = machine.world.world.cpuCount
    }

    /// The guest value that stands for this map in a register (what `lddw map_fd` loads).
    public var guestPointer: UInt64 {
        AddressSpace.address(region: AddressSpace.Well.maps.rawValue, offset: UInt32(index))
    }

    /// The guest address of the first value, for maps whose values a program may address
    /// directly (`BPF_PSEUDO_MAP_VALUE`: arrays, which is how global data works); nil otherwise.
    open var directValueAddress: UInt64? { nil }

    // MARK: Program side (helpers). Errors are returned as negative errnos.

    /// `bpf_map_lookup_elem`: the guest address of the value for `key` (this CPU's, for
    /// per-CPU maps), or 0.
    open func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 { 0 }

    /// The value address `bpf_for_each_map_elem` passes for `key`: as `lookupElement`,
    /// without what a program's lookup does besides (an LRU map's reference bit).
    open func iterationValueAddress(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 { lookupElement(key, cpu: cpu) }

    /// `bpf_map_update_elem`.
    open func updateElement(_ key: UnsafeRawPointer, _ value: UnsafeRawPointer, flags: UInt64, cpu: Int) -> UInt64 {
        MapError.invalid("\(type.kernelName) maps cannot be updated by programs").helperReturn
    }

    /// `bpf_map_delete_elem`.
    open func deleteElement(_ key: UnsafeRawPointer) -> UInt64 {
        MapError.invalid("\(type.kernelName) maps cannot delete").helperReturn
    }

    /// `bpf_map_push_elem`.
    open func pushElement(_ value: UnsafeRawPointer, flags: UInt64) -> UInt64 {
        MapError.notSupported("push").helperReturn
    }

    /// `bpf_map_pop_elem` / `bpf_map_peek_elem`: copies the value out.
    open func popElement(into value: UnsafeMutableRawPointer, remove: Bool) -> UInt64 {
        MapError.notSupported("pop").helperReturn
    }

    // MARK: User side (bytes)

    /// The value of `key`; for per-CPU maps, every CPU's value, each padded to 8 bytes.
    open func lookup(key: [UInt8]) throws(MapError) -> [UInt8] { throw .notSupported("lookup") }

    /// Creates or updates `key`; for per-CPU maps `value` holds every CPU's value.
    open func update(key: [UInt8], value: [UInt8], flags: UInt64 = UpdateFlags.any) throws(MapError) {
        throw .notSupported("update")
    }

    open func delete(key: [UInt8]) throws(MapError) { throw .notSupported("delete") }

    /// The key after `key` in iteration order, or the first key when `key` is nil or not
    /// in the map (as `BPF_MAP_GET_NEXT_KEY` does); nil at the end.
    open func nextKey(after key: [UInt8]?) -> [UInt8]? { nil }

    /// Every element, in iteration order.
    open func entries() -> [MapEntry] {
        var result: [MapEntry] = []
        var key = nextKey(after: nil)
        while let current = key {
            if let value = try? lookup(key: current) { result.append(MapEntry(key: current, value: value)) }
            key = nextKey(after: current)
            if result.count > maxEntries + 1 { break }  // defensive: never loop forever
        }
        return result
    }

    // MARK: Helpers for subclasses

    func checkUserKey(_ key: [UInt8]) throws(MapError) {
        if key.count != keySize { throw .invalid("key is \(key.count) bytes; the map's keys are \(keySize)") }
    }

    /// The user-side value size: per-CPU maps take a padded value per CPU.
    var userValueSize: Int { type.isPerCPU ? valueStride * cpuCount : valueSize }

    func checkUserValue(_ value: [UInt8]) throws(MapError) {
        if value.count != userValueSize {
            throw .invalid("value is \(value.count) bytes; the map needs \(userValueSize)")
        }
    }

    /// BPF_ANY, BPF_NOEXIST or BPF_EXIST, optionally with BPF_F_LOCK for values that hold
    /// a spin lock; anything else is -EINVAL.
    /// Arrays check the lock last (arraymap.c), hashes first (hashtab.c): `checkLock` says
    /// whether to check it here.
    func checkFlags(_ flags: UInt64, checkLock: Bool = true) -> MapError? {
        let command = flags & ~UpdateFlags.lock
        if command > UpdateFlags.exist { return .invalid("invalid update flags \(flags)") }
        return checkLock ? checkLockFlag(flags) : nil
    }

    func checkLockFlag(_ flags: UInt64) -> MapError? {
        if flags & UpdateFlags.lock != 0 && spec.spinLockOffset == nil {
            return .invalid("BPF_F_LOCK needs a value with a struct bpf_spin_lock")
        }
        return nil
    }
}

extension Array where Element == UInt8 {
    init(_ pointer: UnsafeRawPointer, count: Int) {
        self = Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
