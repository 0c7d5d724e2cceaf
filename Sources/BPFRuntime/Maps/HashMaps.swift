/// `BPF_MAP_TYPE_HASH`, `BPF_MAP_TYPE_PERCPU_HASH`, `BPF_MAP_TYPE_HASH_OF_MAPS` and
/// `BPF_MAP_TYPE_DEVMAP_HASH`, with the kernel's preallocated layout: a fixed pool of
/// element slots and a LIFO free list.
///
/// As in the kernel (kernel/bpf/hashtab.c), a non-per-CPU hash keeps one extra element
/// per CPU so that updating an existing key works in a full map; the update writes the
/// new value into a fresh element and frees the old one, so a pointer a program got from
/// an earlier lookup keeps seeing the old value until the element is reused. Per-CPU
/// hashes update the current CPU's value in place; a new per-CPU element gets the value
/// on the current CPU and zeros on the others.
class HashMap: BPFMap {
    let storage: ValueStorage
    let keys: KeyIndex
    let perCPU: Bool
    private var freeSlots: [Int]
    /// Slot → live, for dumps and stale-pointer bookkeeping.
    private var live: [Bool]

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize > 0, spec.maxEntries > 0 else { throw .invalid("hash maps need a key size and max_entries") }
        let valueSize = spec.type == .hashOfMaps ? 4 : spec.valueSize
        guard valueSize > 0 else { throw .invalid("hash maps need a value size") }
        perCPU = spec.type.isPerCPU
        let cpus = machine.world.world.cpuCount
        let extra = (perCPU || spec.type == .lruHash || spec.type == .lruPercpuHash) ? 0 : cpus
        let slots = spec.maxEntries + extra
        storage = try ValueStorage(
            machine: machine, name: spec.name, mapIndex: index, slots: slots, cpus: perCPU ? cpus : 1,
            stride: (valueSize + 7) & ~7, writable: true)
        keys = KeyIndex(keySize: spec.keySize, capacity: slots)
        // Pop order: slot 0 first.
        freeSlots = Array((0..<slots).reversed())
        live = Array(repeating: false, count: slots)
        try super.init(spec: spec, index: index, machine: machine)
    }

    var count: Int { keys.count }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        guard let slot = keys.find(key) else { return 0 }
        if type == .hashOfMaps {
            let inner = Int(storage.pointer(slot: slot, cpu: 0).load(as: UInt32.self))
            return inner < machine.maps.count ? machine.maps[inner].guestPointer : 0
        }
        touch(slot: slot)
        return storage.guestAddress(slot: slot, cpu: perCPU ? cpu : 0)
    }

    /// LRU maps mark an element referenced on lookup.
    func touch(slot: Int) {}

    /// A free slot for a new element, or nil when the map is full.
    func allocateSlot(cpu: Int) -> Int? {
        guard keys.count < maxEntries else { return nil }
        return freeSlots.popLast()
    }

    func freeSlot(_ slot: Int) {
        live[slot] = false
        freeSlots.append(slot)
    }

    /// Inserts or updates; `write` fills the value of (slot, cpu).
    func upsert(
        _ key: UnsafeRawPointer, flags: UInt64, cpu: Int, write: (_ slot: Int, _ isNew: Bool) -> Void
    ) -> MapError? {
        if let error = checkFlags(flags) { return error }
        let command = flags & ~UpdateFlags.lock
        if let old = keys.find(key) {
            if command == UpdateFlags.noExist { return .exists() }
            if perCPU || flags & UpdateFlags.lock != 0 || type == .lruHash || type == .lruPercpuHash {
                write(old, false)
                touch(slot: old)
                return nil
            }
            guard let slot = freeSlots.popLast() else { return .tooBig() }
            storage.clear(slot: slot)
            write(slot, true)
            keys.replace(key, oldSlot: old, newSlot: slot)
            live[slot] = true
            freeSlot(old)
            return nil
        }
        if command == UpdateFlags.exist { return .notFound() }
        guard let slot = allocateSlot(cpu: cpu) else { return .tooBig() }
        storage.clear(slot: slot)
        write(slot, true)
        keys.insert(key, slot: slot)
        live[slot] = true
        return nil
    }

    override func updateElement(_ key: UnsafeRawPointer, _ value: UnsafeRawPointer, flags: UInt64, cpu: Int) -> UInt64 {
        let error = upsert(key, flags: flags, cpu: cpu) { slot, _ in
            storage.pointer(slot: slot, cpu: perCPU ? cpu : 0).copyMemory(from: value, byteCount: valueSize)
        }
        return error?.helperReturn ?? 0
    }

    override func deleteElement(_ key: UnsafeRawPointer) -> UInt64 {
        guard let slot = keys.remove(key) else { return MapError.notFound().helperReturn }
        freeSlot(slot)
        return 0
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        try checkUserKey(key)
        let slot = key.withUnsafeBytes { keys.find($0.baseAddress!) }
        guard let slot else { throw .notFound() }
        return storage.read(slot: slot, valueSize: type == .hashOfMaps ? 4 : valueSize, perCPU: perCPU)
    }

    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        try checkUserKey(key)
        try checkUserValue(value)
        let size = type == .hashOfMaps ? 4 : valueSize
        let error = key.withUnsafeBytes { keyBytes in
            upsert(keyBytes.baseAddress!, flags: flags, cpu: 0) { slot, _ in
                storage.write(slot: slot, value: value, valueSize: size, perCPU: perCPU)
            }
        }
        if let error { throw error }
    }

    override func delete(key: [UInt8]) throws(MapError) {
        try checkUserKey(key)
        let slot = key.withUnsafeBytes { keys.remove($0.baseAddress!) }
        guard let slot else { throw .notFound() }
        freeSlot(slot)
    }

    override func nextKey(after key: [UInt8]?) -> [UInt8]? {
        let order = keys.slotsInOrder
        guard let key, key.count == keySize, let current = key.withUnsafeBytes({ keys.find($0.baseAddress!) }),
            let position = order.firstIndex(of: current)
        else {
            return order.first.map { keys.keyBytes(ofSlot: $0) }
        }
        let next = position + 1
        return next < order.count ? keys.keyBytes(ofSlot: order[next]) : nil
    }

    override func entries() -> [MapEntry] {
        let size = type == .hashOfMaps ? 4 : valueSize
        return keys.slotsInOrder.map { slot in
            MapEntry(key: keys.keyBytes(ofSlot: slot), value: storage.read(slot: slot, valueSize: size, perCPU: perCPU))
        }
    }

    override var userValueSize: Int {
        type == .hashOfMaps ? 4 : super.userValueSize
    }
}

/// `BPF_MAP_TYPE_LRU_HASH` and `BPF_MAP_TYPE_LRU_PERCPU_HASH`: a hash that, when full,
/// makes room for a new key by evicting the least recently used element (lookups and
/// updates count as uses) instead of failing with -E2BIG.
final class LRUHashMap: HashMap {
    private var lastUse: [UInt64]
    private var clock: UInt64 = 0

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        lastUse = []
        try super.init(spec: spec, index: index, machine: machine)
        lastUse = Array(repeating: 0, count: storage.slots)
    }

    override func touch(slot: Int) {
        clock += 1
        lastUse[slot] = clock
    }

    override func allocateSlot(cpu: Int) -> Int? {
        if let slot = super.allocateSlot(cpu: cpu) {
            touch(slot: slot)
            return slot
        }
        // Evict the least recently used live element.
        guard let victim = keys.slotsInOrder.min(by: { lastUse[$0] < lastUse[$1] }) else { return nil }
        keys.remove(keys.key(ofSlot: victim))
        touch(slot: victim)
        return victim
    }
}
