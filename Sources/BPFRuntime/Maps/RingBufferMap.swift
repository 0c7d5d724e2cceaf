/// `BPF_MAP_TYPE_RINGBUF` with the kernel's record format (kernel/bpf/ringbuf.c): each
/// record is an 8-byte header (u32 length with BUSY bit 31 and DISCARD bit 30, u32 page
/// offset) followed by the data, padded to 8 bytes. Positions grow without wrapping and
/// are taken modulo the size.
///
/// The kernel maps the data pages twice in a row so a record that wraps is still
/// contiguous; bpfsim gives the data region twice the ring's size for the same effect.
/// The consumer is bpfsim itself: `drain()` collects submitted records in order, as a
/// user-space reader polling after each run would.
final class RingBufferMap: BPFMap {
    static let busyBit: UInt32 = 1 << 31
    static let discardBit: UInt32 = 1 << 30
    static let headerSize = 8

    let storage: ValueStorage
    let size: Int
    private(set) var producer: UInt64 = 0
    private(set) var consumer: UInt64 = 0

    required init(spec: MapSpec, index: Int, machine: Machine) throws(MapError) {
        guard spec.keySize == 0, spec.valueSize == 0 else { throw .invalid("ring buffers have no key or value size") }
        let size = spec.maxEntries
        guard size >= 4096, size & (size - 1) == 0 else {
            throw .invalid(
                "a ring buffer's max_entries must be a power of 2 and a multiple of the 4096-byte page (got \(size))")
        }
        self.size = size
        storage = try ValueStorage(
            machine: machine, name: spec.name, mapIndex: index, slots: 1, cpus: 1, stride: 2 * size, writable: true)
        try super.init(spec: spec, index: index, machine: machine)
    }

    private var mask: UInt64 { UInt64(size - 1) }

    private func header(at position: UInt64) -> UnsafeMutableRawPointer {
        storage.base + Int(position & mask)
    }

    /// `bpf_ringbuf_reserve`: the guest address of `length` writable bytes, or 0 when the
    /// ring is full or the record too large.
    func reserve(length: UInt64) -> UInt64 {
        let total = (length + UInt64(Self.headerSize) + 7) & ~7
        guard length <= UInt64(size), producer + total - consumer <= mask else { return 0 }
        let position = producer
        let header = self.header(at: position)
        header.storeBytes(of: UInt32(length) | Self.busyBit, as: UInt32.self)
        header.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
        producer += total
        return AddressSpace.address(region: storage.region, offset: UInt32((position & mask) + UInt64(Self.headerSize)))
    }

    /// `bpf_ringbuf_submit` / `bpf_ringbuf_discard` on a record's data address.
    func commit(_ address: UInt64, discard: Bool) -> Bool {
        guard address >> 32 == UInt64(storage.region) else { return false }
        let offset = Int(address & 0xffff_ffff) - Self.headerSize
        guard offset >= 0, offset < size else { return false }
        let header = storage.base + offset
        var length = header.load(as: UInt32.self)
        guard length & Self.busyBit != 0 else { return false }
        length &= ~Self.busyBit
        if discard { length |= Self.discardBit }
        header.storeBytes(of: length, as: UInt32.self)
        return true
    }

    /// `bpf_ringbuf_output`: reserve, copy, submit. 0, or -EAGAIN when full.
    func output(_ data: UnsafeRawPointer, length: Int) -> UInt64 {
        let address = reserve(length: UInt64(length))
        guard address != 0 else { return UInt64(bitPattern: -11) }  // -EAGAIN
        (storage.base + Int(address & 0xffff_ffff)).copyMemory(from: data, byteCount: length)
        _ = commit(address, discard: false)
        return 0
    }

    /// `bpf_ringbuf_query`.
    func query(_ flags: UInt64) -> UInt64 {
        switch flags {
        case 0: producer - consumer  // BPF_RB_AVAIL_DATA
        case 1: UInt64(size)  // BPF_RB_RING_SIZE
        case 2: consumer  // BPF_RB_CONS_POS
        case 3: producer  // BPF_RB_PROD_POS
        default: 0
        }
    }

    /// Takes every submitted record, in order, up to the first still being written.
    func drain() -> [[UInt8]] {
        var records: [[UInt8]] = []
        while consumer < producer {
            let header = self.header(at: consumer)
            let word = header.load(as: UInt32.self)
            if word & Self.busyBit != 0 { break }
            let length = Int(word & ~(Self.busyBit | Self.discardBit))
            if word & Self.discardBit == 0 {
                records.append(Array(UnsafeRawBufferPointer(start: header + Self.headerSize, count: length)))
            }
            consumer += UInt64((length + Self.headerSize + 7) & ~7)
        }
        return records
    }

    override func lookup(key: [UInt8]) throws(MapError) -> [UInt8] {
        throw .notSupported("ring buffers have no elements")
    }
    override func nextKey(after key: [UInt8]?) -> [UInt8]? { nil }
    override func entries() -> [MapEntry] { [] }
}
