import BPFHarness
import BPFTestSupport
import Foundation
import Testing

/// The captures of ../shared/pcaps and their INDEX.md.
enum SharedCaptures {
    /// `../shared/pcaps`, when present.
    static let directory: URL? = {
        guard let url = TestInputs.shared?.appendingPathComponent("pcaps"),
            FileManager.default.fileExists(atPath: url.appendingPathComponent("INDEX.md").path)
        else { return nil }
        return url
    }()

    static let available = directory != nil
    static let skip = Comment(rawValue: "../shared/pcaps is absent: the shared captures are not tested")

    static func path(_ name: String) -> String {
        directory!.appendingPathComponent(name).path
    }

    /// The `.pcap` and `.pcapng` files in the folder, sorted.
    static var files: [String] {
        guard let directory else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
    }

    /// One row of INDEX.md's tables. INDEX.md says where its numbers come from: the link
    /// type from `tcpdump -r FILE -c1` (tcpdump 4.99, libpcap 1.10), packet counts from
    /// `capinfos -c`, cut counts from `tshark -Y 'frame.cap_len < frame.len'`, format and
    /// byte order from the magic number.
    struct Entry: Sendable, CustomTestStringConvertible {
        let file: String
        /// `pcap`, `pcap-ns` or `pcapng`.
        let format: String
        /// `LE` or `BE`.
        let byteOrder: String
        /// The libpcap name INDEX.md gives (FCS bits and IDB counts dropped), or nil for
        /// modify-request.pcapng, whose interfaces have several.
        let linkType: String?
        let packets: Int
        let cut: Int

        var testDescription: String { file }
    }

    /// INDEX.md's rows, parsed from the markdown: `| file | source | format | link type | pkts | cut | what |`.
    static let index: [Entry] = {
        guard let directory,
            let text = try? String(
                contentsOf: directory.appendingPathComponent("INDEX.md"), encoding: .utf8)
        else { return [] }
        var entries: [Entry] = []
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "*", with: "").trimmingCharacters(in: .whitespaces)
            }
            // cells[0] is the empty text before the first bar.
            guard cells.count >= 8, cells[1].hasSuffix(".pcap") || cells[1].hasSuffix(".pcapng"),
                let packets = Int(cells[5]), let cut = Int(cells[6])
            else { continue }
            let format = cells[3].split(separator: " ").map(String.init)
            let linkText = cells[4]
            let linkType: String?
            if linkText.hasPrefix("0x30000001") {
                linkType = "EN10MB"  // "EN10MB + FCS bits": libpcap masks them off
            } else if linkText.contains("IDBs:") {
                linkType = nil
            } else {
                linkType = String(linkText.split(separator: " ").first ?? "")
            }
            entries.append(
                Entry(
                    file: cells[1], format: format.first ?? "", byteOrder: format.last ?? "", linkType: linkType,
                    packets: packets, cut: cut))
        }
        return entries
    }()
}

/// Everything a capture yields: the records, the recoverable errors between them, and the
/// error that ended it.
struct ReadOutcome {
    var records: [CaptureRecord] = []
    var refusals: [CaptureError] = []
    var error: CaptureError?
}

/// Reads a whole capture (fine for test-sized files), going on after recoverable errors.
func readAll(_ reader: CaptureReader) -> ReadOutcome {
    var outcome = ReadOutcome()
    while true {
        do {
            guard let record = try reader.next() else { return outcome }
            outcome.records.append(record)
        } catch  where error.isRecoverable {
            outcome.refusals.append(error)
        } catch {
            outcome.error = error
            return outcome
        }
    }
}

func readAll(path: String) throws -> ReadOutcome {
    readAll(try CaptureReader(path: path))
}

/// Bytes from hex text such as tcpdump's `-xx` lines ("0004 0200 ..."); spaces ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { $0.isHexDigit }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// The synthesized header with an EtherType, as documented in docs/captures.md.
func synthesized(_ etherType: UInt16) -> [UInt8] {
    [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, UInt8(etherType >> 8),
        UInt8(etherType & 0xFF),
    ]
}

/// A fresh temporary directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "bpfsim-capture-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A classic pcap file written byte by byte, for link types and corruptions no shared
/// capture has. Layout from pcap-savefile(5): a 24-byte file header, then per record a
/// 16-byte header (seconds, sub-second, caplen, len) and the captured bytes.
struct HandmadePcap {
    var linkType: UInt32
    var snapshotLength: UInt32 = 65_535
    var bigEndian = false
    var nanosecond = false
    var records: [(seconds: UInt32, subsecond: UInt32, bytes: [UInt8], originalLength: UInt32?)] = []

    init(linkType: UInt32, bigEndian: Bool = false, nanosecond: Bool = false) {
        self.linkType = linkType
        self.bigEndian = bigEndian
        self.nanosecond = nanosecond
    }

    mutating func add(
        _ bytes: [UInt8], seconds: UInt32 = 1_000_000_000, subsecond: UInt32 = 0, originalLength: UInt32? = nil
    ) {
        records.append((seconds, subsecond, bytes, originalLength))
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        func u32(_ value: UInt32) {
            let ordered = bigEndian ? value.bigEndian : value.littleEndian
            withUnsafeBytes(of: ordered) { out += $0 }
        }
        func u16(_ value: UInt16) {
            let ordered = bigEndian ? value.bigEndian : value.littleEndian
            withUnsafeBytes(of: ordered) { out += $0 }
        }
        u32(nanosecond ? 0xA1B2_3C4D : 0xA1B2_C3D4)
        u16(2)
        u16(4)
        u32(0)  // thiszone
        u32(0)  // sigfigs
        u32(snapshotLength)
        u32(linkType)
        for record in records {
            u32(record.seconds)
            u32(record.subsecond)
            u32(UInt32(record.bytes.count))
            u32(record.originalLength ?? UInt32(record.bytes.count))
            out += record.bytes
        }
        return out
    }

    /// Writes the file into `directory` and returns its path.
    func write(to directory: URL, name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}

/// A tool's exit status, output and errors when the tool is on PATH; nil otherwise.
func runTool(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String)? {
    let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
    guard let directory = directories.first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") })
    else { return nil }
    return try runProcess("\(directory)/\(tool)", arguments)
}

/// Runs a program to completion. Its output goes to files rather than pipes: reading a pipe
/// through FileHandle traps on EINTR in swift-corelibs-foundation, which other tests'
/// child processes make likely.
func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let outputURL = directory.appendingPathComponent("stdout")
    let errorsURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errorsURL.path, contents: nil)
    let output = try FileHandle(forWritingTo: outputURL)
    let errors = try FileHandle(forWritingTo: errorsURL)
    defer {
        try? output.close()
        try? errors.close()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    process.waitUntilExit()
    return (
        process.terminationStatus, String(decoding: try Data(contentsOf: outputURL), as: UTF8.self),
        String(decoding: try Data(contentsOf: errorsURL), as: UTF8.self)
    )
}
