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
        let slots = Self.elementCount(spec: spec, cpus: cpus)
        storage = try ValueStorage(
            machine: machine, name: spec.name, mapIndex: index, slots: slots, cpus: perCPU ? cpus : 1,
            stride: (valueSize + 7) & ~7, writable: true)
        keys = KeyIndex(keySize: spec.keySize, capacity: slots)
        // Pop order: slot 0 first.
        freeSlots = Array((0..<slots).reversed())
        live = Array(repeating: false, count: slots)
        try super.init(spec: spec, index: index, machine: machine)
    }

    /// How many elements to preallocate: max_entries, plus one per CPU for a non-per-CPU
    /// hash (see above).
    class func elementCount(spec: MapSpec, cpus: Int) -> Int {
        spec.type.isPerCPU ? spec.maxEntries : spec.maxEntries + cpus
    }

    var count: Int { keys.count }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        guard let slot = keys.find(key) else { return 0 }
        if type == .hashOfMaps {
            let inner = Int(storage.pointer(slot: slot, cpu: 0).load(as: UInt32.self))
            return inner < machine.maps.count ? machine.maps[inner].guestPointer : 0
        }
        return storage.guestAddress(slot: slot, cpu: perCPU ? cpu : 0)
    }

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
            if perCPU || flags & UpdateFlags.lock != 0 {
                write(old, false)
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

/// `BPF_MAP_TYPE_LRU_HASH` and `BPF_MAP_TYPE_LRU_PERCPU_HASH` (kernel/bpf/hashtab.c, the
/// LRU paths, Linux 6.18): a preallocated hash whose elements come from the kernel's LRU
/// lists (`BPFLRUList`), so that inserting into a full map evicts an element instead of
/// failing. max_entries elements and no spare ones; with `BPF_F_NO_COMMON_LRU`,
/// max_entries rounded up to a multiple of the CPU count, split evenly between the CPUs.
///
/// Value slot i is LRU node i, so a pointer from a lookup stays on the element's node:
/// after the element is deleted, evicted or replaced it sees the old value until the node
/// is reused.
///
/// * A lookup from a program (`bpf_map_lookup_elem`, `bpf_map_lookup_percpu_elem`) sets
///   the element's reference bit; a lookup from user space, a dump or
///   `bpf_for_each_map_elem` does not.
/// * An update (program or user space) first takes a node from the LRU (which may evict
///   elements, several at once), even when the key exists or the flags then make it fail
///   (the node goes back). Invalid flags are -EINVAL before that; no node is -ENOMEM.
///   For `lru_hash`, the new value goes into the new node, which replaces the old element
///   (and gets its reference bit set); the old node is freed. For `lru_percpu_hash`, an
///   existing element is updated in place and its bit set, and `BPF_EXIST` takes no node.
/// * A delete frees the node.
final class LRUHashMap: HashMap {
    private let lru: BPFLRUList
    /// Node → whether it holds an element of the table (`htab_lru_map_delete_node`
    /// finds it in its bucket).
    private var inTable: [Bool]

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        let cpus = machine.world.world.cpuCount
        let nodes = LRUHashMap.elementCount(spec: spec, cpus: cpus)
        lru = BPFLRUList(nodes: nodes, cpus: cpus, perCPU: spec.flags & MapFlags.noCommonLRU != 0)
        inTable = Array(repeating: false, count: nodes)
        try super.init(spec: spec, index: index, machine: machine)
        lru.deleteFromTable = { [unowned self] node in
            guard inTable[node] else { return false }
            keys.remove(keys.key(ofSlot: node))
            inTable[node] = false
            return true
        }
    }

    /// max_entries; with `BPF_F_NO_COMMON_LRU` rounded up to a multiple of the CPU count
    /// (down when that overflows 32 bits), as `htab_map_alloc` does.
    override class func elementCount(spec: MapSpec, cpus: Int) -> Int {
        guard spec.flags & MapFlags.noCommonLRU != 0, cpus > 1 else { return spec.maxEntries }
        let up = (spec.maxEntries + cpus - 1) / cpus * cpus
        return up <= Int(UInt32.max) ? up : spec.maxEntries / cpus * cpus
    }

    /// The CPU user-space operations run on: the emulated current CPU.
    private var currentCPU: Int { Int(machine.world.cpu) }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        guard let slot = keys.find(key) else { return 0 }
        lru.setReference(slot)
        return storage.guestAddress(slot: slot, cpu: perCPU ? cpu : 0)
    }

    override func iterationValueAddress(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        guard let slot = keys.find(key) else { return 0 }
        return storage.guestAddress(slot: slot, cpu: perCPU ? cpu : 0)
    }

    /// `htab_lru_map_update_elem` and `__htab_lru_percpu_map_update_elem`. `write` fills
    /// the value of a node: `isNew` for a node that gets the key (for per-CPU maps from a
    /// program, the other CPUs' values are then zero).
    private func lruUpdate(
        _ key: UnsafeRawPointer, flags: UInt64, cpu: Int, write: (_ slot: Int, _ isNew: Bool) -> Void
    ) -> MapError? {
        guard flags <= UpdateFlags.exist else { return .invalid("invalid update flags \(flags)") }
        if perCPU {
            var unused: Int?
            if flags != UpdateFlags.exist {
                guard let node = lru.popFree(cpu: cpu) else { return .noMemory() }
                unused = node
            }
            let old = keys.find(key)
            let error = Self.flagError(exists: old != nil, flags: flags)
            if error == nil {
                if let old {
                    lru.setReference(old)
                    write(old, false)
                } else if let node = unused {
                    write(node, true)
                    keys.insert(key, slot: node)
                    inTable[node] = true
                    unused = nil
                }
            }
            if let unused { lru.pushFree(unused) }
            return error
        }
        guard let node = lru.popFree(cpu: cpu) else { return .noMemory() }
        write(node, true)
        let old = keys.find(key)
        if let error = Self.flagError(exists: old != nil, flags: flags) {
            lru.pushFree(node)
            return error
        }
        if let old {
            keys.replace(key, oldSlot: old, newSlot: node)
            inTable[old] = false
            lru.setReference(node)
        } else {
            keys.insert(key, slot: node)
        }
        inTable[node] = true
        if let old { lru.pushFree(old) }
        return nil
    }

    /// `check_flags`.
    private static func flagError(exists: Bool, flags: UInt64) -> MapError? {
        if exists && flags == UpdateFlags.noExist { return .exists() }
        if !exists && flags == UpdateFlags.exist { return .notFound() }
        return nil
    }

    override func updateElement(_ key: UnsafeRawPointer, _ value: UnsafeRawPointer, flags: UInt64, cpu: Int) -> UInt64 {
        let error = lruUpdate(key, flags: flags, cpu: cpu) { slot, isNew in
            if perCPU && isNew { storage.clear(slot: slot) }
            storage.pointer(slot: slot, cpu: perCPU ? cpu : 0).copyMemory(from: value, byteCount: valueSize)
        }
        return error?.helperReturn ?? 0
    }

    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        try checkUserKey(key)
        try checkUserValue(value)
        let error = key.withUnsafeBytes { keyBytes in
            lruUpdate(keyBytes.baseAddress!, flags: flags, cpu: currentCPU) { slot, _ in
                storage.write(slot: slot, value: value, valueSize: valueSize, perCPU: perCPU)
            }
        }
        if let error { throw error }
    }

    override func deleteElement(_ key: UnsafeRawPointer) -> UInt64 {
        guard let slot = keys.remove(key) else { return MapError.notFound().helperReturn }
        inTable[slot] = false
        lru.pushFree(slot)
        return 0
    }

    override func delete(key: [UInt8]) throws(MapError) {
        try checkUserKey(key)
        let status = key.withUnsafeBytes { deleteElement($0.baseAddress!) }
        if status != 0 { throw .notFound() }
    }
}
