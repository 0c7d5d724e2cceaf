/// `BPF_MAP_TYPE_QUEUE` (FIFO) and `BPF_MAP_TYPE_STACK` (LIFO): no keys, values pushed
/// and popped by copy (kernel/bpf/queue_stack_maps.c). Pushing into a full map fails with
/// -E2BIG unless `BPF_EXIST` is given, which drops the oldest value to make room.
final class QueueStackMap: BPFMap {
    private var values: [[UInt8]] = []
    private var isStack: Bool { type == .stack }

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize == 0 else { throw .invalid("queue and stack maps have no keys (key_size must be 0)") }
        guard spec.valueSize > 0, spec.maxEntries > 0 else {
            throw .invalid("queue and stack maps need a value size and max_entries")
        }
        try super.init(spec: spec, index: index, machine: machine)
    }

    private func push(_ value: [UInt8], flags: UInt64) -> MapError? {
        guard flags & ~UpdateFlags.exist == 0 else { return .invalid("invalid push flags \(flags)") }
        if values.count == maxEntries {
            guard flags & UpdateFlags.exist != 0 else { return .tooBig() }
            values.removeFirst()  // the oldest, for a queue and for a stack alike
        }
        values.append(value)
        return nil
    }

    private func take(remove: Bool) -> [UInt8]? {
        guard !values.isEmpty else { return nil }
        if isStack { return remove ? values.removeLast() : values.last }
        return remove ? values.removeFirst() : values.first
    }

    override func pushElement(_ value: UnsafeRawPointer, flags: UInt64) -> UInt64 {
        push([UInt8](value, count: valueSize), flags: flags)?.helperReturn ?? 0
    }

    override func updateElement(_ key: UnsafeRawPointer, _ value: UnsafeRawPointer, flags: UInt64, cpu: Int) -> UInt64 {
        pushElement(value, flags: flags)
    }

    override func popElement(into value: UnsafeMutableRawPointer, remove: Bool) -> UInt64 {
        guard let bytes = take(remove: remove) else {
            // The kernel leaves the destination zeroed when there is nothing to pop.
            value.initializeMemory(as: UInt8.self, repeating: 0, count: valueSize)
            return MapError.notFound().helperReturn
        }
        bytes.withUnsafeBytes { value.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
        return 0
    }

    override func lookupElement(_ key: UnsafeRawPointer, cpu: Int) -> UInt64 { 0 }

    /// `BPF_MAP_LOOKUP_ELEM` on a queue or stack peeks (the key is ignored).
    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        guard let value = take(remove: false) else { throw .notFound() }
        return value
    }

    /// `BPF_MAP_UPDATE_ELEM` pushes.
    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        try checkUserValue(value)
        if let error = push(value, flags: flags) { throw error }
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` pops.
    func pop() throws(MapError) -> [UInt8] {
        guard let value = take(remove: true) else { throw .notFound() }
        return value
    }

    override func delete(key: [UInt8]) throws(MapError) {
        throw .invalid("queue and stack maps cannot delete; pop instead")
    }

    override func nextKey(after key: [UInt8]?) -> [UInt8]? { nil }

    /// Values in the order they would be popped, with empty keys.
    override func entries() -> [MapEntry] {
        (isStack ? values.reversed() : values).map { MapEntry(key: [], value: $0) }
    }
}
