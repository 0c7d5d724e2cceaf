/// Little-endian reads from a byte array with every bound checked; a short read throws a
/// `LoaderError` naming the file, the section and the offset.
struct ByteReader {
    let bytes: [UInt8]
    let file: String
    let section: String
    /// Added to offsets in errors, when `bytes` is a slice starting inside the section.
    let base: Int

    init(_ bytes: [UInt8], file: String, section: String, base: Int = 0) {
        self.bytes = bytes
        self.file = file
        self.section = section
        self.base = base
    }

    func check(_ offset: Int, _ count: Int) throws(LoaderError) {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw .truncated(
                file, section: section, offset: base + max(0, offset), needed: count,
                available: max(0, bytes.count - max(0, offset)))
        }
    }

    func u8(_ offset: Int) throws(LoaderError) -> UInt8 {
        try check(offset, 1)
        return bytes[offset]
    }

    func u16(_ offset: Int) throws(LoaderError) -> UInt16 {
        try check(offset, 2)
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    func u32(_ offset: Int) throws(LoaderError) -> UInt32 {
        try check(offset, 4)
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        return value
    }

    func u64(_ offset: Int) throws(LoaderError) -> UInt64 {
        try check(offset, 8)
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        return value
    }

    func slice(_ offset: Int, _ count: Int) throws(LoaderError) -> [UInt8] {
        try check(offset, count)
        return Array(bytes[offset..<offset + count])
    }
}

/// Little-endian helpers for building and reading small values.
enum LittleEndian {
    static func bytes(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= bytes.count else { return nil }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }

    static func u64(_ bytes: [UInt8], at offset: Int) -> UInt64? {
        guard offset >= 0, offset + 8 <= bytes.count else { return nil }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }
}
