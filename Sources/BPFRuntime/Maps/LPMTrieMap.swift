/// `BPF_MAP_TYPE_LPM_TRIE`: longest-prefix match (kernel/bpf/lpm_trie.c). Keys are
/// `struct bpf_lpm_trie_key_u8 { u32 prefixlen; u8 data[]; }`; an element matches a
/// lookup key when its first `prefixlen` bits equal the key's, and the lookup key's own
/// prefixlen bounds how many bits may match. The kernel requires `BPF_F_NO_PREALLOC`.
///
/// Iteration is ordered by prefix length, longest first, then by data, which is not the
/// kernel's post-order walk (see docs/maps.md).
final class LPMTrieMap: BPFMap {
    private struct Element {
        var key: [UInt8]
        var slot: Int
    }

    let storage: ValueStorage
    let dataSize: Int
    var maxPrefixLength: Int { dataSize * 8 }
    /// Masked data bytes → element, per prefix length.
    private var byLength: [[[UInt8]: Element]]
    private var freeSlots: [Int]
    private(set) var count = 0

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.flags & MapFlags.noPrealloc != 0 else { throw .invalid("LPM tries need BPF_F_NO_PREALLOC") }
        guard spec.keySize > 4, spec.keySize - 4 <= 256 else {
            throw .invalid("LPM trie keys are 4 bytes of prefixlen and 1-256 bytes of data (got \(spec.keySize))")
        }
        guard spec.valueSize > 0, spec.maxEntries > 0 else {
            throw .invalid("LPM tries need a value size and max_entries")
        }
        dataSize = spec.keySize - 4
        storage = try ValueStorage(
            machine: machine, name: spec.name, mapIndex: index, slots: spec.maxEntries, cpus: 1,
            stride: (spec.valueSize + 7) & ~7, writable: true)
        byLength = Array(repeating: [:], count: dataSize * 8 + 1)
        freeSlots = Array((0..<spec.maxEntries).reversed())
        try super.init(spec: spec, index: index, machine: machine)
    }

    private func prefixLength(_ key: UnsafeRawPointer) -> Int { Int(key.loadUnaligned(as: UInt32.self)) }

    /// The first `bits` bits of the key's data, the rest zeroed.
    private func masked(_ key: UnsafeRawPointer, bits: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (bits + 7) / 8)
        for index in 0..<bytes.count {
            var byte = key.load(fromByteOffset: 4 + index, as: UInt8.self)
            let remaining = bits - index * 8
            if remaining < 8 { byte &= UInt8(truncatingIfNeeded: 0xff << (8 - remaining)) }
            bytes[index] = byte
        }
        return bytes
    }

    private func find(_ key: UnsafeRawPointer) -> Element? {
        // A lookup key longer than the trie's keys matches nothing (trie_lookup_elem).
        guard prefixLength(key) <= maxPrefixLength else { return nil }
        let limit = prefixLength(key)
        var length = limit
        while length >= 0 {
            if !byLength[length].isEmpty, let element = byLength[length][masked(key, bits: length)] { return element }
            length -= 1
        }
        return nil
    }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 {
        guard let element = find(key) else { return 0 }
        return storage.guestAddress(slot: element.slot, cpu: 0)
    }

    private func upsert(_ key: UnsafeRawPointer, flags: UInt64, value: (Int) -> Void) -> MapError? {
        guard flags <= UpdateFlags.exist else { return .invalid("invalid update flags \(flags)") }
        let length = prefixLength(key)
        guard length <= maxPrefixLength else { return .invalid("prefixlen \(length) exceeds \(maxPrefixLength)") }
        let data = masked(key, bits: length)
        if let existing = byLength[length][data] {
            if flags == UpdateFlags.noExist { return .exists() }
            value(existing.slot)
            byLength[length][data] = Element(key: [UInt8](key, count: keySize), slot: existing.slot)
            return nil
        }
        if flags == UpdateFlags.exist { return .notFound() }
        guard count < maxEntries, let slot = freeSlots.popLast() else { return MapError(errno: 28, "the trie is full") }  // ENOSPC
        storage.clear(slot: slot)
        value(slot)
        byLength[length][data] = Element(key: [UInt8](key, count: keySize), slot: slot)
        count += 1
        return nil
    }

    override func updateElement(_ key: UnsafeRawPointer, _ value: UnsafeRawPointer, flags: UInt64, cpu: Int) -> UInt64 {
        upsert(key, flags: flags) { slot in
            storage.pointer(slot: slot, cpu: 0).copyMemory(from: value, byteCount: valueSize)
        }?
        .helperReturn ?? 0
    }

    private func remove(_ key: UnsafeRawPointer) -> MapError? {
        let length = prefixLength(key)
        guard length <= maxPrefixLength else { return .invalid("prefixlen \(length) exceeds \(maxPrefixLength)") }
        guard let element = byLength[length].removeValue(forKey: masked(key, bits: length)) else { return .notFound() }
        freeSlots.append(element.slot)
        count -= 1
        return nil
    }

    override func deleteElement(_ key: UnsafeRawPointer) -> UInt64 {
        remove(key)?.helperReturn ?? 0
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        try checkUserKey(key)
        guard let element = key.withUnsafeBytes({ find($0.baseAddress!) }) else { throw .notFound() }
        return storage.read(slot: element.slot, valueSize: valueSize, perCPU: false)
    }

    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        try checkUserKey(key)
        try checkUserValue(value)
        let error = key.withUnsafeBytes { keyBytes in
            upsert(keyBytes.baseAddress!, flags: flags) { slot in
                storage.write(slot: slot, value: value, valueSize: valueSize, perCPU: false)
            }
        }
        if let error { throw error }
    }

    override func delete(key: [UInt8]) throws(MapError) {
        try checkUserKey(key)
        if let error = key.withUnsafeBytes({ remove($0.baseAddress!) }) { throw error }
    }

    private var ordered: [Element] {
        var result: [Element] = []
        for length in stride(from: maxPrefixLength, through: 0, by: -1) {
            result += byLength[length].sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value)
        }
        return result
    }

    override func nextKey(after key: [UInt8]?) -> [UInt8]? {
        let order = ordered
        guard let key, let position = order.firstIndex(where: { $0.key == key }) else { return order.first?.key }
        return position + 1 < order.count ? order[position + 1].key : nil
    }

    override func entries() -> [MapEntry] {
        ordered.map { MapEntry(key: $0.key, value: storage.read(slot: $0.slot, valueSize: valueSize, perCPU: false)) }
    }
}
