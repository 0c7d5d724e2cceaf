/// `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`: `max_entries` values indexed by
/// a u32 key, all present from creation (zeroed), never deleted. Global data sections
/// (`.rodata`, `.data`, `.bss`) are one-element arrays; `.rodata` is read-only to programs.
final class ArrayMap: BPFMap {
    let storage: ValueStorage
    let perCPU: Bool

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize == 4 else { throw .invalid("array maps need 4-byte keys (got \(spec.keySize))") }
        guard spec.valueSize > 0, spec.maxEntries > 0 else {
            throw .invalid("array maps need a value size and max_entries")
        }
        perCPU = spec.type == .percpuArray
        let cpus = spec.type == .percpuArray ? machine.world.world.cpuCount : 1
        let writable = spec.flags & MapFlags.rdonlyProg == 0
        storage = try ValueStorage(
            machine: machine, name: spec.name, mapIndex: index, slots: spec.maxEntries, cpus: cpus,
            stride: (spec.valueSize + 7) & ~7, writable: writable)
        try super.init(spec: spec, index: index, machine: machine)
    }

    override var directValueAddress: UInt64? { perCPU ? nil : storage.guestAddress(slot: 0, cpu: 0) }

    @inline(__always)
    private func slot(_ key: UnsafeRawPointer) -> Int? {
        let index = Int(key.loadUnaligned(as: UInt32.self))
        return index < maxEntries ? index : nil
    }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        guard let slot = slot(key) else { return 0 }
        return storage.guestAddress(slot: slot, cpu: perCPU ? cpu : 0)
    }

    override func updateElement(_ key: UnsafeRawPointer, _ value: UnsafeRawPointer, flags: UInt64, cpu: Int) -> UInt64 {
        if let error = checkFlags(flags, checkLock: false) { return error.helperReturn }
        guard let slot = slot(key) else { return MapError.tooBig().helperReturn }
        if flags & ~UpdateFlags.lock == UpdateFlags.noExist { return MapError.exists().helperReturn }
        if let error = checkLockFlag(flags) { return error.helperReturn }
        storage.pointer(slot: slot, cpu: perCPU ? cpu : 0).copyMemory(from: value, byteCount: valueSize)
        return 0
    }

    override func deleteElement(_ key: UnsafeRawPointer) -> UInt64 {
        MapError.invalid("array elements cannot be deleted").helperReturn
    }

    private func userSlot(_ key: [UInt8]) throws(MapError) -> Int {
        try checkUserKey(key)
        let index = Int(UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
        guard index < maxEntries else { throw .notFound("index \(index) is beyond max_entries \(maxEntries)") }
        return index
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        storage.read(slot: try userSlot(key), valueSize: valueSize, perCPU: perCPU)
    }

    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        if let error = checkFlags(flags, checkLock: false) { throw error }
        try checkUserKey(key)
        try checkUserValue(value)
        let index = Int(UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
        guard index < maxEntries else { throw .tooBig("index \(index) is beyond max_entries \(maxEntries)") }
        if flags & ~UpdateFlags.lock == UpdateFlags.noExist { throw .exists() }
        if let error = checkLockFlag(flags) { throw error }
        storage.write(slot: index, value: value, valueSize: valueSize, perCPU: perCPU)
    }

    override func delete(key: [UInt8]) throws(MapError) {
        throw .invalid("array elements cannot be deleted")
    }

    override func nextKey(after key: [UInt8]?) -> [UInt8]? {
        var next = 0
        if let key, key.count == 4 {
            let index = Int(UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
            next = index >= maxEntries ? 0 : index + 1
        }
        guard next < maxEntries else { return nil }
        return littleEndianBytes(UInt32(next))
    }

    override func entries() -> [MapEntry] {
        (0..<maxEntries).map { index in
            MapEntry(
                key: littleEndianBytes(UInt32(index)),
                value: storage.read(slot: index, valueSize: valueSize, perCPU: perCPU))
        }
    }
}

/// Arrays whose values stand for kernel objects rather than data programs read: prog
/// arrays (program indices, for tail calls), array-of-maps (inner map indices), devmap,
/// cpumap and xskmap (redirect targets), perf event and cgroup arrays. Programs cannot
/// read their values; helpers (`bpf_tail_call`, `bpf_redirect_map`, map-in-map lookups)
/// interpret them. Elements may be absent.
final class ReferenceArrayMap: BPFMap {
    private(set) var values: [[UInt8]?]

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize == 4 else {
            throw .invalid("\(spec.type.kernelName) maps need 4-byte keys (got \(spec.keySize))")
        }
        guard spec.maxEntries > 0 else { throw .invalid("max_entries must be positive") }
        values = Array(repeating: nil, count: spec.maxEntries)
        try super.init(spec: spec, index: index, machine: machine)
    }

    /// The u32 at the start of element `index`'s value (program index, inner map index,
    /// ifindex, queue size...), when present.
    public func reference(at index: Int) -> UInt32? {
        guard index >= 0, index < values.count, let value = values[index], value.count >= 4 else { return nil }
        return UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24
    }

    public func value(at index: Int) -> [UInt8]? {
        index >= 0 && index < values.count ? values[index] : nil
    }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        let index = Int(key.loadUnaligned(as: UInt32.self))
        // An array of maps gives the inner map itself.
        if type == .arrayOfMaps, let inner = reference(at: index), Int(inner) < machine.maps.count {
            return machine.maps[Int(inner)].guestPointer
        }
        return 0
    }

    override func deleteElement(_ key: UnsafeRawPointer) -> UInt64 {
        let index = Int(key.loadUnaligned(as: UInt32.self))
        guard index < maxEntries else { return MapError.invalid("index beyond max_entries").helperReturn }
        guard values[index] != nil else { return MapError.notFound().helperReturn }
        values[index] = nil
        return 0
    }

    private func userIndex(_ key: [UInt8]) throws(MapError) -> Int {
        try checkUserKey(key)
        return Int(UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        let index = try userIndex(key)
        guard index < maxEntries, let value = values[index] else { throw .notFound() }
        return value
    }

    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        let index = try userIndex(key)
        try checkUserValue(value)
        guard index < maxEntries else { throw .tooBig("index \(index) is beyond max_entries \(maxEntries)") }
        switch flags {
        case UpdateFlags.noExist where values[index] != nil: throw .exists()
        case UpdateFlags.exist where values[index] == nil: throw .notFound()
        case 0...UpdateFlags.exist: break
        default: throw .invalid("invalid update flags \(flags)")
        }
        values[index] = value
    }

    override func delete(key: [UInt8]) throws(MapError) {
        let index = try userIndex(key)
        guard index < maxEntries else { throw .invalid("index beyond max_entries") }
        guard values[index] != nil else { throw .notFound() }
        values[index] = nil
    }

    override func nextKey(after key: [UInt8]?) -> [UInt8]? {
        var start = 0
        if let key, key.count == 4 {
            let index = Int(UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
            start = index >= maxEntries ? 0 : index + 1
        }
        // The kernel's fd arrays iterate over every index, present or not.
        guard start < maxEntries else { return nil }
        return littleEndianBytes(UInt32(start))
    }

    override func entries() -> [MapEntry] {
        values.enumerated().compactMap { index, value in
            value.map { MapEntry(key: littleEndianBytes(UInt32(index)), value: $0) }
        }
    }
}

func littleEndianBytes(_ value: UInt32) -> [UInt8] {
    [
        UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value >> 16),
        UInt8(truncatingIfNeeded: value >> 24),
    ]
}

func littleEndianBytes(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
