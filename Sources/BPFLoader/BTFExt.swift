/// `.BTF.ext`: per-section function info and line info, keyed by instruction byte offset
/// in the section as the object stores them (the loader turns them into instruction
/// indices of each program after subprograms are appended).
struct BTFExt {
    struct FunctionRecord {
        /// Byte offset of the function's first instruction in its section.
        let instructionOffset: UInt32
        let typeID: UInt32
    }

    struct LineRecord {
        let instructionOffset: UInt32
        let fileNameOffset: UInt32
        let lineOffset: UInt32
        /// `line << 10 | column`.
        let lineColumn: UInt32
    }

    var functions: [String: [FunctionRecord]] = [:]
    var lines: [String: [LineRecord]] = [:]

    init() {}

    init(section bytes: [UInt8], file: String, btf: BTF) throws(LoaderError) {
        let sectionName = ".BTF.ext"
        let reader = ByteReader(bytes, file: file, section: sectionName)
        let magic = try reader.u16(0)
        guard magic == BTF.magic else {
            throw .malformedBTF(
                file, section: sectionName, offset: 0,
                detail: "bad magic 0x\(String(magic, radix: 16)) (expected 0xeb9f)")
        }
        let headerLength = Int(try reader.u32(4))
        guard headerLength >= 24, headerLength <= bytes.count else {
            throw .malformedBTF(
                file, section: sectionName, offset: 4, detail: "header length \(headerLength) is out of range")
        }
        let functionStart = headerLength + Int(try reader.u32(8))
        let functionLength = Int(try reader.u32(12))
        let lineStart = headerLength + Int(try reader.u32(16))
        let lineLength = Int(try reader.u32(20))

        functions = try Self.records(
            reader, start: functionStart, length: functionLength, minimumSize: 8, btf: btf, what: "func info"
        ) { (offset: Int) throws(LoaderError) in
            FunctionRecord(instructionOffset: try reader.u32(offset), typeID: try reader.u32(offset + 4))
        }
        lines = try Self.records(
            reader, start: lineStart, length: lineLength, minimumSize: 16, btf: btf, what: "line info"
        ) { (offset: Int) throws(LoaderError) in
            LineRecord(
                instructionOffset: try reader.u32(offset), fileNameOffset: try reader.u32(offset + 4),
                lineOffset: try reader.u32(offset + 8), lineColumn: try reader.u32(offset + 12))
        }
    }

    /// Reads one info block: a record size, then per section its name, a count and the records.
    private static func records<Record>(
        _ reader: ByteReader, start: Int, length: Int, minimumSize: Int, btf: BTF, what: String,
        read: (Int) throws(LoaderError) -> Record
    ) throws(LoaderError) -> [String: [Record]] {
        guard length > 0 else { return [:] }
        try reader.check(start, length)
        let end = start + length
        let recordSize = Int(try reader.u32(start))
        guard recordSize >= minimumSize else {
            throw .malformedBTF(
                reader.file, section: reader.section, offset: start,
                detail: "\(what) record size \(recordSize) is smaller than \(minimumSize)")
        }
        var result: [String: [Record]] = [:]
        var position = start + 4
        while position < end {
            let nameOffset = try reader.u32(position)
            let count = Int(try reader.u32(position + 4))
            guard let name = btf.string(at: nameOffset) else {
                throw .malformedBTF(
                    reader.file, section: reader.section, offset: position,
                    detail: "\(what) names section string \(nameOffset), outside the BTF strings")
            }
            position += 8
            let (bytes, overflow) = count.multipliedReportingOverflow(by: recordSize)
            guard !overflow, bytes <= end - position else {
                throw .malformedBTF(
                    reader.file, section: reader.section, offset: position - 4,
                    detail: "\(count) \(what) records for '\(name)' run past the end of the block")
            }
            var records: [Record] = []
            records.reserveCapacity(count)
            for index in 0..<count { records.append(try read(position + index * recordSize)) }
            result[name, default: []] += records
            position += bytes
        }
        return result
    }
}
