// CaptureMemoryProbe FILE
//
// Reads FILE with CaptureReader, as a replay would, and prints one line:
//
//   records=N bytes=B baseline_kb=X peak_kb=Y reset=1
//
// `baseline_kb` is the resident set (VmRSS) after opening the file and reading its first
// 1,000 records, when the reader's buffers have their working size; `peak_kb` is the
// largest resident set from then to the end: VmHWM after resetting it through
// /proc/self/clear_refs (reset=1), or, where that reset is refused, the largest VmRSS
// sampled every 1,000 records (reset=0). It runs in its own process because a test
// process runs other tests at the same time, whose memory would count too.
//
// Exit status 0 when the whole file was read, 1 on a read error (printed), 2 on misuse.

import BPFHarness
import Foundation

func statusField(_ name: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
        // "VmRSS:\t    1234 kB"
        return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
    }
    return nil
}

func resetPeak() -> Bool {
    // "5" resets the peak resident set size (Linux 4.0 and later; see proc(5)).
    guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
    defer { try? handle.close() }
    do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
    return true
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: CaptureMemoryProbe FILE\n".utf8))
    exit(2)
}

do {
    let reader = try CaptureReader(path: arguments[1])
    var records = 0
    var bytes = 0
    var baseline = 0
    var sampledPeak = 0
    var reset = false
    while let record = try reader.next() {
        records += 1
        bytes += record.bytes.count
        if records == 1_000 {
            baseline = statusField("VmRSS") ?? 0
            reset = resetPeak()
            sampledPeak = baseline
        } else if records % 1_000 == 0 {
            sampledPeak = max(sampledPeak, statusField("VmRSS") ?? 0)
        }
    }
    if records < 1_000 { baseline = statusField("VmRSS") ?? 0 }
    let peak = reset ? (statusField("VmHWM") ?? 0) : max(sampledPeak, statusField("VmRSS") ?? 0)
    print("records=\(records) bytes=\(bytes) baseline_kb=\(baseline) peak_kb=\(peak) reset=\(reset ? 1 : 0)")
} catch {
    print("error: \(error)")
    exit(1)
}
