/// A map's value memory: `slots × cpus` values of `stride` bytes, zeroed, mapped into the
/// guest address space as one region so programs can read and write values in place.
/// Value (slot s, cpu c) is at offset `(s × cpus + c) × stride`.
final class ValueStorage {
    let base: UnsafeMutableRawPointer
    let slots: Int
    let cpus: Int
    let stride: Int
    let byteCount: Int
    let region: UInt32

    init(machine: Machine, name: String, mapIndex: Int, slots: Int, cpus: Int, stride: Int, writable: Bool)
        throws(MapError)
    {
        let total = slots.multipliedReportingOverflow(by: cpus)
        let bytes = total.partialValue.multipliedReportingOverflow(by: stride)
        guard !total.overflow, !bytes.overflow, UInt64(bytes.partialValue) <= AddressSpace.maximumRegionSize else {
            throw .tooBig("map '\(name)' would need more than 4 GiB of values")
        }
        self.slots = slots
        self.cpus = cpus
        self.stride = stride
        byteCount = bytes.partialValue
        base = .allocate(byteCount: max(byteCount, 1), alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        region = machine.memory.allocateRegion()
        machine.memory.map(
            region, name: "the values of map '\(name)'", kind: .mapValues(map: mapIndex), base: base, size: byteCount,
            writable: writable)
    }

    deinit { base.deallocate() }

    @inline(__always)
    func offset(slot: Int, cpu: Int) -> Int { (slot * cpus + cpu) * stride }

    @inline(__always)
    func pointer(slot: Int, cpu: Int) -> UnsafeMutableRawPointer { base + offset(slot: slot, cpu: cpu) }

    @inline(__always)
    func guestAddress(slot: Int, cpu: Int) -> UInt64 {
        AddressSpace.address(region: region, offset: UInt32(truncatingIfNeeded: offset(slot: slot, cpu: cpu)))
    }

    func clear(slot: Int) {
        for cpu in 0..<cpus {
            pointer(slot: slot, cpu: cpu).initializeMemory(as: UInt8.self, repeating: 0, count: stride)
        }
    }

    /// Reads a value the way the syscall returns it: every CPU's, padded to the stride;
    /// or one value of `valueSize` bytes when `perCPU` is false.
    func read(slot: Int, valueSize: Int, perCPU: Bool) -> [UInt8] {
        if !perCPU { return Array(UnsafeRawBufferPointer(start: pointer(slot: slot, cpu: 0), count: valueSize)) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(stride * cpus)
        for cpu in 0..<cpus {
            bytes += UnsafeRawBufferPointer(start: pointer(slot: slot, cpu: cpu), count: valueSize)
            bytes += [UInt8](repeating: 0, count: stride - valueSize)
        }
        return bytes
    }

    /// Writes a user-side value (see `read`).
    func write(slot: Int, value: [UInt8], valueSize: Int, perCPU: Bool) {
        value.withUnsafeBytes { source in
            if perCPU {
                for cpu in 0..<cpus {
                    pointer(slot: slot, cpu: cpu).copyMemory(
                        from: source.baseAddress! + cpu * stride, byteCount: valueSize)
                }
            } else {
                pointer(slot: slot, cpu: 0).copyMemory(from: source.baseAddress!, byteCount: valueSize)
            }
        }
    }
}

/// An open-addressing index from key bytes to slots, with no allocation per lookup.
/// Keys live in a slot-indexed buffer; buckets hold slot numbers. Iteration follows
/// bucket order, which depends only on the keys, so it is the same on every run.
final class KeyIndex {
    let keySize: Int
    let capacity: Int
    private let keys: UnsafeMutableRawPointer
    private var buckets: [Int32]
    private var mask: Int
    private var tombstones = 0
    private(set) var count = 0

    private static let empty: Int32 = -1
    private static let deleted: Int32 = -2

    init(keySize: Int, capacity: Int) {
        self.keySize = keySize
        self.capacity = capacity
        keys = .allocate(byteCount: max(keySize * capacity, 1), alignment: 8)
        var size = 8
        while size < capacity * 2 { size <<= 1 }
        buckets = Array(repeating: Self.empty, count: size)
        mask = size - 1
    }

    deinit { keys.deallocate() }

    func key(ofSlot slot: Int) -> UnsafeMutableRawPointer { keys + slot * keySize }

    func keyBytes(ofSlot slot: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: key(ofSlot: slot), count: keySize))
    }

    @inline(__always)
    private func hash(_ key: UnsafeRawPointer) -> Int {
        // 64-bit FNV-1a over the key, then a final mix for better low bits.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for index in 0..<keySize {
            h = (h ^ UInt64(key.load(fromByteOffset: index, as: UInt8.self))) &* 0x100_0000_01b3
        }
        h ^= h >> 29
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 32
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always)
    private func equal(_ key: UnsafeRawPointer, slot: Int) -> Bool {
        memcmpBytes(key, self.key(ofSlot: slot), keySize)
    }

    /// The slot holding `key`, if any.
    func find(_ key: UnsafeRawPointer) -> Int? {
        var index = hash(key) & mask
        while true {
            let entry = buckets[index]
            if entry == Self.empty { return nil }
            if entry >= 0 && equal(key, slot: Int(entry)) { return Int(entry) }
            index = (index + 1) & mask
        }
    }

    /// Records `key` at `slot` (the caller knows the key is absent).
    func insert(_ key: UnsafeRawPointer, slot: Int) {
        self.key(ofSlot: slot).copyMemory(from: key, byteCount: keySize)
        if (count + tombstones + 1) * 4 > buckets.count * 3 { rehash() }
        var index = hash(key) & mask
        while buckets[index] >= 0 { index = (index + 1) & mask }
        if buckets[index] == Self.deleted { tombstones -= 1 }
        buckets[index] = Int32(slot)
        count += 1
    }

    /// Points `key`'s bucket at another slot (an update that moves the value).
    func replace(_ key: UnsafeRawPointer, oldSlot: Int, newSlot: Int) {
        var index = hash(key) & mask
        while buckets[index] != Int32(oldSlot) { index = (index + 1) & mask }
        self.key(ofSlot: newSlot).copyMemory(from: key, byteCount: keySize)
        buckets[index] = Int32(newSlot)
    }

    /// Removes `key`; returns its slot.
    @discardableResult
    func remove(_ key: UnsafeRawPointer) -> Int? {
        var index = hash(key) & mask
        while true {
            let entry = buckets[index]
            if entry == Self.empty { return nil }
            if entry >= 0 && equal(key, slot: Int(entry)) {
                buckets[index] = Self.deleted
                tombstones += 1
                count -= 1
                return Int(entry)
            }
            index = (index + 1) & mask
        }
    }

    /// Slots in bucket order.
    var slotsInOrder: [Int] { buckets.compactMap { $0 >= 0 ? Int($0) : nil } }

    private func rehash() {
        let live = slotsInOrder
        var size = buckets.count
        if (live.count + 1) * 2 > size { size *= 2 }
        buckets = Array(repeating: Self.empty, count: size)
        mask = size - 1
        tombstones = 0
        for slot in live {
            var index = hash(key(ofSlot: slot)) & mask
            while buckets[index] != Self.empty { index = (index + 1) & mask }
            buckets[index] = Int32(slot)
        }
    }
}

@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var index = 0
    while index + 8 <= count {
        if a.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            != b.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        {
            return false
        }
        index += 8
    }
    while index < count {
        if a.load(fromByteOffset: index, as: UInt8.self) != b.load(fromByteOffset: index, as: UInt8.self) {
            return false
        }
        index += 1
    }
    return true
}
