// ReplayMemoryProbe OBJECT PROGRAM CAPTURE [ENGINE]
//
// Replays CAPTURE through PROGRAM of the BPF object OBJECT with PacketReplay, as
// `bpfsim replay` does, and prints one line:
//
//   packets=N faults=F baseline_kb=X peak_kb=Y reset=1
//
// `baseline_kb` is the resident set (VmRSS) after the first 1,000 packets, when the
// replay's buffers have their working size; `peak_kb` is the largest resident set from
// then to the end: VmHWM after resetting it through /proc/self/clear_refs (reset=1), or,
// where that reset is refused, the largest VmRSS sampled every 1,000 packets (reset=0).
// It runs in its own process because a test process runs other tests at the same time,
// whose memory would count too.
//
// Exit status 0 when the whole capture was replayed, 1 on an error (printed), 2 on misuse.

import BPFHarness
import BPFSession
import Foundation

func statusField(_ name: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
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
guard arguments.count == 4 || arguments.count == 5 else {
    FileHandle.standardError.write(Data("usage: ReplayMemoryProbe OBJECT PROGRAM CAPTURE [interp|jit]\n".utf8))
    exit(2)
}

do {
    let object = try BPFObject(path: arguments[1])
    let engine = arguments.count == 5 ? Engine(rawValue: arguments[4]) ?? .interpreter : .interpreter
    let replay = try PacketReplay(
        object: object, program: arguments[2], backends: [.engine(engine)],
        configuration: RunConfiguration(engine: engine), options: ReplayOptions(cpus: 2))
    let reader = try CaptureReader(path: arguments[3])
    var baseline = 0
    var sampledPeak = 0
    var reset = false
    let summary = replay.replay(reader) { result in
        if result.number == 1_000 {
            baseline = statusField("VmRSS") ?? 0
            reset = resetPeak()
            sampledPeak = baseline
        } else if result.number % 1_000 == 0 {
            sampledPeak = max(sampledPeak, statusField("VmRSS") ?? 0)
        }
    }
    if let error = summary.captureError {
        print("error: \(error)")
        exit(1)
    }
    if summary.packets < 1_000 { baseline = statusField("VmRSS") ?? 0 }
    let peak = reset ? (statusField("VmHWM") ?? 0) : max(sampledPeak, statusField("VmRSS") ?? 0)
    print(
        "packets=\(summary.packets) faults=\(summary.faults) baseline_kb=\(baseline) peak_kb=\(peak) reset=\(reset ? 1 : 0)"
    )
} catch {
    print("error: \(error)")
    exit(1)
}
