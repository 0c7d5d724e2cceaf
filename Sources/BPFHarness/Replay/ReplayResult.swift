import BPFSession

/// What one packet did in a replay: its place, and each backend's run.
public struct ReplayResult: Sendable {
    /// The packet's number, counted from 1 as Wireshark counts frames (records the reader
    /// skipped are not counted).
    public var number: Int
    public var timestamp: UInt64?
    /// The CPU (and receive queue) RSS gave the packet.
    public var cpu: UInt32
    /// Bytes the program got.
    public var lengthIn: Int
    /// The packet's length on the wire.
    public var wireLength: Int
    /// One result per backend, in the order the replay was given them.
    public var results: [RunComparison.Result]
    /// The first difference between the first backend and another, when there is one.
    public var divergence: RunComparison.Divergence?
    /// Why the packet was not run on any backend: the kernel is compared and its test run
    /// cannot take the packet (`results` is then empty).
    public var leftOut: String?

    public init(
        number: Int, timestamp: UInt64?, cpu: UInt32, lengthIn: Int, wireLength: Int,
        results: [RunComparison.Result], divergence: RunComparison.Divergence?, leftOut: String? = nil
    ) {
        self.number = number
        self.timestamp = timestamp
        self.cpu = cpu
        self.lengthIn = lengthIn
        self.wireLength = wireLength
        self.results = results
        self.divergence = divergence
        self.leftOut = leftOut
    }

    /// The first backend's run; nil when it could not run the packet (`error` says why)
    /// or the packet was left out.
    public var run: ProgramRun? { results.first?.run }
    /// Why the first backend could not run the packet (a kernel test run that failed).
    public var error: String? { results.first?.error }
    /// What the return value means; nil after a fault or a refusal.
    public var verdict: Verdict? { run?.refusal == nil ? run?.verdict : nil }
    public var fault: ExecutionFault? { run?.execution.fault }
    /// The kernel's test run would refuse this input (and so did bpfsim).
    public var refusal: InputRefusal? { run?.refusal }
    public var returnValue: UInt64? {
        guard let run, run.refusal == nil, run.execution.fault == nil else { return nil }
        return run.execution.returnValue
    }

    /// The frame after the run, from its Ethernet header (without XDP metadata). For
    /// socket filter and cgroup_skb programs, which see the packet from its network
    /// header, `dataOut` as the test run returns it (14 zero bytes first).
    public var packetOut: [UInt8]? {
        guard let run, let data = run.dataOut else { return nil }
        return Array(data.dropFirst(run.metadataLength))
    }

    /// Where the packet was redirected, when the verdict is a redirect.
    public var redirect: RedirectTarget? {
        guard let verdict, verdict.isRedirect else { return nil }
        return run?.redirect
    }

    /// The frames the program sent on: the packet itself after `XDP_TX`, `XDP_REDIRECT` or
    /// `TC_ACT_REDIRECT`, and the copies `bpf_clone_redirect` made, in order.
    public var transmitted: [[UInt8]] {
        guard let run, run.refusal == nil, run.execution.fault == nil else { return [] }
        var frames = run.clones.map(\.packet)
        if let verdict, verdict.isTransmit || verdict.isRedirect, let packet = packetOut { frames.append(packet) }
        return frames
    }

    /// The name the summary counts the packet's verdict under: the kernel's name
    /// (`XDP_PASS`, `TC_ACT_SHOT`), `keep`/`drop` for socket filters, `allow`/`drop` for
    /// cgroup_skb; nil after a fault, a refusal or a failed run.
    public var verdictName: String? { verdict?.replayName }
}

extension Verdict {
    /// XDP_TX.
    var isTransmit: Bool {
        if case .xdp(.tx?, _) = self { return true }
        return false
    }

    /// XDP_REDIRECT or TC_ACT_REDIRECT.
    var isRedirect: Bool {
        switch self {
        case .xdp(.redirect?, _), .tc(.redirect?, _): return true
        default: return false
        }
    }

    /// How a replay summary counts it.
    var replayName: String {
        switch self {
        case .socketFilter(let keep): keep == 0 ? "drop" : "keep"
        case .cgroupSkb(let allow, _): allow ? "allow" : "drop"
        default: description
        }
    }
}

extension RedirectTarget {
    /// `ifindex 3`, `cpu 1`, `xsk 0` or `broadcast`, then ` via map NAME[KEY]` for
    /// `bpf_redirect_map`.
    public var replayDescription: String {
        var text: String
        switch kind {
        case .interface: text = "ifindex \(index)"
        case .cpu: text = "cpu \(index)"
        case .socket: text = "xsk \(index)"
        case .broadcast: text = "broadcast"
        }
        if let map { text += " via \(map)" + (key.map { "[\($0)]" } ?? "") }
        return text
    }
}

/// Counts of a replay so far.
public struct ReplaySummary: Sendable {
    /// Packets run (faulted, refused and failed ones included; skipped records not).
    public var packets = 0
    /// Bytes of those packets, as the program got them.
    public var bytes = 0
    /// Packets by verdict name (`ReplayResult.verdictName`).
    public var verdicts: [String: Int] = [:]
    /// Redirected packets by target (`RedirectTarget.replayDescription`).
    public var redirects: [String: Int] = [:]
    /// Packets whose run faulted (out-of-bounds access, budget, ...).
    public var faults = 0
    /// Packets the kernel's test run would refuse (and bpfsim did not run).
    public var refusals = 0
    /// Packets the first backend could not run at all (a kernel test run that failed).
    public var errors = 0
    /// Frames the program sent on (`ReplayResult.transmitted`).
    public var transmitted = 0
    /// Packets per CPU, indexed by CPU.
    public var packetsPerCPU: [Int] = []
    /// The first faults (up to `sampleLimit`), for people to look at.
    public var faultSamples: [Sample] = []
    /// The first refusals and failed runs (up to `sampleLimit`).
    public var errorSamples: [Sample] = []
    /// Packets left out on every backend because the kernel, compared, cannot test-run them.
    public var leftOut = 0
    /// The first of them (up to `sampleLimit`).
    public var leftOutSamples: [Sample] = []
    /// Records of the capture that could not be presented as Ethernet, and were skipped.
    public var skippedRecords = 0
    /// The first of those errors (up to `sampleLimit`).
    public var skippedSamples: [CaptureError] = []
    /// The first difference between backends; the replay stopped there.
    public var divergence: RunComparison.Divergence?
    /// The error the capture ended with, when it did not end cleanly.
    public var captureError: CaptureError?
    /// Whether the replay stopped at its packet limit.
    public var limitReached = false
    /// Wall-clock time spent replaying, in nanoseconds.
    public var elapsedNanoseconds: UInt64 = 0

    /// How many samples of each kind are kept.
    public static let sampleLimit = 10

    /// A packet worth naming: its number and what happened.
    public struct Sample: Sendable, Hashable {
        public var packet: Int
        public var message: String
    }

    public init() {}

    /// Packets per second of wall-clock time; nil before any time has passed.
    public var packetsPerSecond: Double? {
        elapsedNanoseconds == 0 ? nil : Double(packets) * 1e9 / Double(elapsedNanoseconds)
    }

    mutating func count(_ result: ReplayResult) {
        packets += 1
        bytes += result.lengthIn
        let cpu = Int(result.cpu)
        if cpu < packetsPerCPU.count { packetsPerCPU[cpu] += 1 }
        if divergence == nil { divergence = result.divergence }
        if let reason = result.leftOut {
            leftOut += 1
            if leftOutSamples.count < Self.sampleLimit { leftOutSamples.append(.init(packet: result.number, message: reason)) }
            return
        }
        guard let run = result.run else {
            errors += 1
            if errorSamples.count < Self.sampleLimit {
                errorSamples.append(.init(packet: result.number, message: result.error ?? "the run failed"))
            }
            return
        }
        if let refusal = run.refusal {
            refusals += 1
            if errorSamples.count < Self.sampleLimit {
                errorSamples.append(.init(packet: result.number, message: "the kernel would refuse it: \(refusal)"))
            }
            return
        }
        if let fault = run.execution.fault {
            faults += 1
            if faultSamples.count < Self.sampleLimit {
                faultSamples.append(.init(packet: result.number, message: Self.describe(fault)))
            }
            return
        }
        if let name = result.verdictName { verdicts[name, default: 0] += 1 }
        if let target = result.redirect { redirects[target.replayDescription, default: 0] += 1 }
        transmitted += result.transmitted.count
    }

    mutating func skip(_ error: CaptureError) {
        skippedRecords += 1
        if skippedSamples.count < Self.sampleLimit { skippedSamples.append(error) }
    }

    /// `instruction 12 (ldxw ...) at prog.c:40: out-of-bounds read ...`.
    public static func describe(_ fault: ExecutionFault) -> String {
        var text = "instruction \(fault.pc)"
        if let instruction = fault.instruction { text += " (\(instruction))" }
        if let line = fault.sourceLine { text += " at \(line)" }
        return text + ": " + fault.message
    }
}
