/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: one perf buffer per index, usually one per CPU. An
/// index has a reader when user space put a perf event there; with
/// `World.perfEventReaders` (the default) bpfsim attaches one at every index, as a tool
/// that opened a perf event per CPU would. Output to an index with no reader fails with
/// -ENOENT, as in the kernel (and as under BPF_PROG_TEST_RUN, where nothing is attached).
final class PerfEventArrayMap: BPFMap {
    struct Record: Sendable, Hashable {
        var cpu: Int
        var data: [UInt8]
    }

    private(set) var pending: [Record] = []
    /// Indices with a reader.
    private var readers: Set<Int> = []

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize == 4, spec.valueSize == 4 else {
            throw .invalid("perf event arrays have 4-byte keys and values")
        }
        var spec = spec
        // libbpf sizes a perf event array with max_entries 0 to the number of CPUs.
        if spec.maxEntries == 0 { spec.maxEntries = machine.world.world.cpuCount }
        try super.init(spec: spec, index: index, machine: machine)
        if machine.world.world.perfEventReaders { readers = Set(0..<spec.maxEntries) }
    }

    /// `bpf_perf_event_output`: flags' low 32 bits are the index, or BPF_F_CURRENT_CPU.
    func output(_ data: [UInt8], flags: UInt64, cpu: Int) -> UInt64 {
        let indexField = flags & 0xffff_ffff
        guard flags & ~(0xffff_ffff | (0xfffff << 32)) == 0 else {
            return MapError.invalid("invalid flags").helperReturn
        }
        let index = indexField == 0xffff_ffff ? cpu : Int(indexField)
        guard index < maxEntries else { return MapError.tooBig("index \(index) is beyond max_entries").helperReturn }
        guard readers.contains(index) else { return MapError.notFound("no perf event at index \(index)").helperReturn }
        pending.append(Record(cpu: index, data: data))
        return 0
    }

    /// User space puts a perf event at an index (any 4-byte value stands for its fd).
    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        try checkUserKey(key)
        let index = Int(key[0]) | Int(key[1]) << 8 | Int(key[2]) << 16 | Int(key[3]) << 24
        guard index < maxEntries else { throw .tooBig("index \(index) is beyond max_entries") }
        readers.insert(index)
    }

    override func delete(key: [UInt8]) throws(MapError) {
        try checkUserKey(key)
        let index = Int(key[0]) | Int(key[1]) << 8 | Int(key[2]) << 16 | Int(key[3]) << 24
        guard readers.remove(index) != nil else { throw .notFound() }
    }

    func drain() -> [Record] {
        defer { pending.removeAll() }
        return pending
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        throw .notSupported("perf event arrays cannot be read")
    }
    override func nextKey(after key: [UInt8]?) -> [UInt8]? { nil }
    override func entries() -> [MapEntry] { [] }
}

/// `BPF_MAP_TYPE_BLOOM_FILTER` (kernel/bpf/bloom_filter.c): push sets k bits, peek
/// reports whether all k are set. The bit count is `max_entries × k × 7 / 5` rounded up
/// to a power of two (at least 64); bit i of a value is `jhash(value, seed + i)`, with
/// `jhash2` for values whose size is a multiple of 4. The seed comes from the machine's
/// random stream unless the map has `BPF_F_ZERO_SEED`.
final class BloomFilterMap: BPFMap {
    let hashCount: UInt32
    let mask: UInt32
    let seed: UInt32
    private var bits: [UInt64]

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize == 0, spec.valueSize > 0, spec.maxEntries > 0 else {
            throw .invalid("bloom filters have no key, and need a value size and max_entries")
        }
        var count = UInt32(spec.mapExtra & 0xf)
        if count == 0 { count = 5 }
        hashCount = count
        let product = UInt64(spec.maxEntries) * UInt64(count)
        let scaled = (product / 5) * 7
        if product > UInt64(UInt32.max) || scaled > UInt64(UInt32.max) || scaled > 1 << 31 {
            mask = UInt32.max
        } else {
            var bitCount = UInt64(64)
            while bitCount < scaled { bitCount <<= 1 }
            mask = UInt32(bitCount - 1)
        }
        bits = Array(repeating: 0, count: Int((UInt64(mask) + 64) / 64))
        seed = spec.flags & MapFlags.zeroSeed != 0 ? 0 : machine.world.nextRandom32()
        try super.init(spec: spec, index: index, machine: machine)
    }

    private func bit(_ value: UnsafeRawPointer, _ index: UInt32) -> Int {
        let hash =
            valueSize % 4 == 0
            ? JHash.jhash2(value, words: valueSize / 4, initial: seed &+ index)
            : JHash.jhash(value, length: valueSize, initial: seed &+ index)
        return Int(hash & mask)
    }

    override func pushElement(_ value: UnsafeRawPointer, flags: UInt64) -> UInt64 {
        guard flags == UpdateFlags.any else { return MapError.invalid("bloom filters take BPF_ANY only").helperReturn }
        for index in 0..<hashCount {
            let bit = bit(value, index)
            bits[bit / 64] |= 1 << UInt64(bit % 64)
        }
        return 0
    }

    override func popElement(into value: UnsafeMutableRawPointer, remove: Bool) -> UInt64 {
        guard !remove else { return MapError.notSupported("bloom filters cannot pop").helperReturn }
        for index in 0..<hashCount {
            let bit = bit(value, index)
            if bits[bit / 64] & (1 << UInt64(bit % 64)) == 0 { return MapError.notFound().helperReturn }
        }
        return 0
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] { throw .notSupported("use peek") }

    override func update(key: [UInt8], value: [UInt8], flags: UInt64) throws(MapError) {
        try checkUserValue(value)
        let result = value.withUnsafeBytes { pushElement($0.baseAddress!, flags: flags) }
        if result != 0 { throw .invalid("invalid update flags \(flags)") }
    }

    /// Whether `value` may be in the set.
    func contains(_ value: [UInt8]) -> Bool {
        var copy = value
        return copy.withUnsafeMutableBytes { popElement(into: $0.baseAddress!, remove: false) } == 0
    }

    override func nextKey(after key: [UInt8]?) -> [UInt8]? { nil }
    override func entries() -> [MapEntry] { [] }
}

/// Bob Jenkins' lookup3 hash as the kernel's linux/jhash.h defines it.
enum JHash {
    static let initial: UInt32 = 0xdead_beef

    @inline(__always) static func rol(_ x: UInt32, _ k: UInt32) -> UInt32 { (x << k) | (x >> (32 - k)) }

    @inline(__always)
    static func mix(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32) {
        a = a &- c; a ^= rol(c, 4); c = c &+ b
        b = b &- a; b ^= rol(a, 6); a = a &+ c
        c = c &- b; c ^= rol(b, 8); b = b &+ a
        a = a &- c; a ^= rol(c, 16); c = c &+ b
        b = b &- a; b ^= rol(a, 19); a = a &+ c
        c = c &- b; c ^= rol(b, 4); b = b &+ a
    }

    @inline(__always)
    static func final(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32) {
        c ^= b; c = c &- rol(b, 14)
        a ^= c; a = a &- rol(c, 11)
        b ^= a; b = b &- rol(a, 25)
        c ^= b; c = c &- rol(b, 16)
        a ^= c; a = a &- rol(c, 4)
        b ^= a; b = b &- rol(a, 14)
        c ^= b; c = c &- rol(b, 24)
    }

    /// `jhash(key, length, initval)`.
    static func jhash(_ key: UnsafeRawPointer, length: Int, initial seed: UInt32) -> UInt32 {
        var a = Self.initial &+ UInt32(truncatingIfNeeded: length) &+ seed
        var b = a
        var c = a
        var k = key
        var remaining = length
        while remaining > 12 {
            a = a &+ k.loadUnaligned(as: UInt32.self)
            b = b &+ k.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            c = c &+ k.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            mix(&a, &b, &c)
            remaining -= 12
            k += 12
        }
        guard remaining > 0 else { return c }
        func byte(_ i: Int) -> UInt32 { UInt32(k.load(fromByteOffset: i, as: UInt8.self)) }
        if remaining >= 12 { c = c &+ byte(11) << 24 }
        if remaining >= 11 { c = c &+ byte(10) << 16 }
        if remaining >= 10 { c = c &+ byte(9) << 8 }
        if remaining >= 9 { c = c &+ byte(8) }
        if remaining >= 8 { b = b &+ byte(7) << 24 }
        if remaining >= 7 { b = b &+ byte(6) << 16 }
        if remaining >= 6 { b = b &+ byte(5) << 8 }
        if remaining >= 5 { b = b &+ byte(4) }
        if remaining >= 4 { a = a &+ byte(3) << 24 }
        if remaining >= 3 { a = a &+ byte(2) << 16 }
        if remaining >= 2 { a = a &+ byte(1) << 8 }
        a = a &+ byte(0)
        final(&a, &b, &c)
        return c
    }

    /// `jhash2(k, length_in_words, initval)`.
    static func jhash2(_ key: UnsafeRawPointer, words: Int, initial seed: UInt32) -> UInt32 {
        var a = Self.initial &+ UInt32(truncatingIfNeeded: words << 2) &+ seed
        var b = a
        var c = a
        var k = key
        var remaining = words
        while remaining > 3 {
            a = a &+ k.loadUnaligned(as: UInt32.self)
            b = b &+ k.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            c = c &+ k.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            mix(&a, &b, &c)
            remaining -= 3
            k += 12
        }
        guard remaining > 0 else { return c }
        if remaining >= 3 { c = c &+ k.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        if remaining >= 2 { b = b &+ k.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
        a = a &+ k.loadUnaligned(as: UInt32.self)
        final(&a, &b, &c)
        return c
    }
}
