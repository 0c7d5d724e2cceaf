/// A deterministic generator of realistic Ethernet traffic, for performance and memory
/// tests that need captures far larger than any checked in.
///
/// Packets are IPv4 and IPv6, TCP and UDP, over many flows whose popularity is skewed (half
/// of the packets belong to a tenth of the flows). A TCP flow opens with a handshake
/// (SYN with MSS, SACK-permitted, timestamps and window scale; SYN-ACK; ACK), carries data
/// mostly from server to client in full segments (1,448 bytes over IPv4, 1,428 over IPv6,
/// so no frame passes 1,514 bytes) and shorter pushes, with
/// timestamp options and sequence and acknowledgement numbers that add up, and closes with a
/// FIN after a few dozen to a few thousand packets, when a new connection from a new port
/// takes its place. UDP flows are DNS (port 53: well-formed queries and answers) or
/// QUIC-like (port 443: 1,200 to 1,350-byte datagrams). IPv4 header, TCP and UDP checksums
/// are correct. TCP and QUIC-like payloads are pseudo-random bytes, as encrypted traffic
/// looks: slices of a 64 KiB pool drawn from the same stream.
///
/// The same configuration gives the same packets and timestamps, byte for byte, on every
/// machine: the only source of variation is a SplitMix64 stream seeded by `seed`.
public struct CaptureSynthesizer: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The seed of the random stream.
        public var seed: UInt64
        /// How many flows are open at once.
        public var flowCount: Int
        /// Percent of flows over IPv6.
        public var ipv6Percent: Int
        /// Percent of flows over UDP.
        public var udpPercent: Int
        /// The first packet's timestamp, in nanoseconds since the epoch (default 2023-11-14 22:13:20 UTC).
        public var startTime: UInt64
        /// The mean time between packets, in nanoseconds (gaps are uniform in 0...2×mean).
        public var meanGap: UInt64

        public init(
            seed: UInt64 = 1, flowCount: Int = 4096, ipv6Percent: Int = 20, udpPercent: Int = 25,
            startTime: UInt64 = 1_700_000_000_000_000_000, meanGap: UInt64 = 20_000
        ) {
            precondition(flowCount > 0, "a synthesized capture needs at least one flow")
            self.seed = seed
            self.flowCount = flowCount
            self.ipv6Percent = ipv6Percent
            self.udpPercent = udpPercent
            self.startTime = startTime
            self.meanGap = meanGap
        }
    }

    /// What `write` produced.
    public struct Summary: Hashable, Sendable {
        /// Records written.
        public let packets: Int
        /// The file's size in bytes (header and records).
        public let fileBytes: Int
    }

    public let configuration: Configuration
    /// How many packets `next` has made.
    public private(set) var packetsMade = 0
    private var random: SplitMix64
    private var flows: [Flow] = []
    private var clock: UInt64
    /// Where a DNS message is built before its length is known.
    private var scratch: [UInt8] = []
    /// 64 KiB of pseudo-random bytes that payloads are cut from, and the prefix sums of its
    /// 16-bit big-endian words (`poolSums[k]` sums words 0..<k). Copying a slice and taking
    /// its sum from two prefix sums keeps a debug build fast: a byte-by-byte payload and
    /// checksum made large captures take minutes.
    private let pool: [UInt8]
    private let poolSums: [UInt64]

    public init(_ configuration: Configuration = .init()) {
        self.configuration = configuration
        random = SplitMix64(seed: configuration.seed)
        clock = configuration.startTime
        var pool: [UInt8] = []
        pool.reserveCapacity(65_536)
        Self.appendRandom(65_536, random: &random, into: &pool)
        var sums: [UInt64] = [0]
        sums.reserveCapacity(32_769)
        for index in stride(from: 0, to: pool.count, by: 2) {
            sums.append(sums[sums.count - 1] + (UInt64(pool[index]) << 8 | UInt64(pool[index + 1])))
        }
        self.pool = pool
        poolSums = sums
        flows.reserveCapacity(configuration.flowCount)
        for index in 0..<configuration.flowCount { flows.append(makeFlow(index)) }
    }

    /// The next packet and its timestamp.
    public mutating func next() -> (bytes: [UInt8], timestamp: UInt64) {
        var bytes: [UInt8] = []
        let timestamp = next(into: &bytes)
        return (bytes, timestamp)
    }

    /// Builds the next packet in `buffer` (replacing what it held, keeping its capacity) and
    /// returns its timestamp in nanoseconds.
    public mutating func next(into buffer: inout [UInt8]) -> UInt64 {
        packetsMade += 1
        clock &+= random.next() % (2 * configuration.meanGap + 1)
        // Skew: half of the packets go to the first tenth of the flows.
        let count = UInt64(flows.count)
        let hot = max(count / 10, 1)
        let index = Int(random.next() % 2 == 0 ? random.next() % hot : random.next() % count)
        buffer.removeAll(keepingCapacity: true)
        if flows[index].isUDP {
            udpPacket(flow: index, into: &buffer)
        } else {
            tcpPacket(flow: index, into: &buffer)
        }
        return clock
    }

    /// Writes synthesized packets to a pcap file through `CaptureWriter` until `packets`
    /// records are written or the file has reached `bytes` bytes, whichever comes first (at
    /// least one limit must be given). One buffer is reused for every packet.
    public static func write(
        to path: String, packets: Int? = nil, bytes: Int? = nil, configuration: Configuration = .init()
    ) throws(CaptureError) -> Summary {
        precondition(packets != nil || bytes != nil, "give a packet count or a size")
        let writer = try CaptureWriter(path: path)
        var synthesizer = CaptureSynthesizer(configuration)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1_600)
        var fileBytes = 24  // the pcap file header
        var written = 0
        while written < (packets ?? Int.max) && fileBytes < (bytes ?? Int.max) {
            let timestamp = synthesizer.next(into: &buffer)
            try writer.write(buffer, timestamp: timestamp)
            fileBytes += 16 + buffer.count  // record header and frame
            written += 1
        }
        try writer.close()
        return Summary(packets: written, fileBytes: fileBytes)
    }

    // MARK: - Flows

    private struct Flow: Sendable {
        var isIPv6: Bool
        var isUDP: Bool
        var clientMAC: [UInt8]
        var clientAddress: [UInt8]
        var serverAddress: [UInt8]
        var clientPort: UInt16
        var serverPort: UInt16
        /// Next sequence number each side sends (TCP).
        var clientSequence: UInt32
        var serverSequence: UInt32
        /// Packets sent on this connection so far, and after how many it closes (TCP).
        var sent: Int
        var lifetime: Int
        var ipIdentification: UInt16
        var flowLabel: UInt32
    }

    /// The gateway all flows go through, on the server side of every packet.
    private static let gatewayMAC: [UInt8] = [0x02, 0x00, 0x5E, 0x10, 0x00, 0x01]

    private mutating func makeFlow(_ index: Int) -> Flow {
        let isIPv6 = Int(random.next() % 100) < configuration.ipv6Percent
        let isUDP = Int(random.next() % 100) < configuration.udpPercent
        let a = random.next()
        var clientMAC: [UInt8] = [0x02]
        for shift in stride(from: 0, to: 40, by: 8) { clientMAC.append(UInt8(truncatingIfNeeded: a >> shift)) }
        let server = random.next() % 64
        let clientAddress: [UInt8]
        let serverAddress: [UInt8]
        if isIPv6 {
            // fd00::/8 clients (unique local), 2001:db8::/32 servers (documentation).
            var client: [UInt8] = [0xFD, 0x00, 0, 0, 0, 0, 0, 1]
            let b = random.next()
            for shift in stride(from: 0, to: 64, by: 8) { client.append(UInt8(truncatingIfNeeded: b >> shift)) }
            clientAddress = client
            serverAddress = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(server + 1)]
        } else {
            // 10.0.0.0/8 clients, 198.51.100.0/24 and 203.0.113.0/24 servers (documentation).
            clientAddress = [
                10, UInt8(truncatingIfNeeded: a >> 40), UInt8(truncatingIfNeeded: a >> 48),
                UInt8(truncatingIfNeeded: a >> 56) | 1,
            ]
            serverAddress = server < 32 ? [198, 51, 100, UInt8(server + 1)] : [203, 0, 113, UInt8(server - 31)]
        }
        let serverPort: UInt16
        if isUDP {
            serverPort = random.next() % 2 == 0 ? 53 : 443
        } else {
            let ports: [UInt16] = [443, 443, 443, 80, 22, 8080]
            serverPort = ports[Int(random.next() % UInt64(ports.count))]
        }
        return Flow(
            isIPv6: isIPv6, isUDP: isUDP, clientMAC: clientMAC, clientAddress: clientAddress,
            serverAddress: serverAddress, clientPort: ephemeralPort(), serverPort: serverPort,
            clientSequence: UInt32(truncatingIfNeeded: random.next()),
            serverSequence: UInt32(truncatingIfNeeded: random.next()), sent: 0, lifetime: lifetime(),
            ipIdentification: UInt16(truncatingIfNeeded: random.next()),
            flowLabel: UInt32(truncatingIfNeeded: random.next()) & 0xF_FFFF)
    }

    private mutating func ephemeralPort() -> UInt16 { UInt16(32_768 + random.next() % 28_232) }

    /// Packets per TCP connection: 20 to ~2,000, most of them short.
    private mutating func lifetime() -> Int {
        let scale = random.next() % 4 == 0 ? 2_000 : 200
        return 20 + Int(random.next() % UInt64(scale))
    }

    // MARK: - Packets

    private mutating func tcpPacket(flow index: Int, into buffer: inout [UInt8]) {
        var flow = flows[index]
        defer { flows[index] = flow }
        let fromClient: Bool
        var flags: UInt8
        var payload = 0
        var synOptions = false
        // A 1,500-byte MTU less the IP and TCP headers is the MSS (1,460 or 1,440); the
        // 12 bytes of timestamp options leave 1,448 or 1,428 for data in a full segment.
        let maximumSegment = flow.isIPv6 ? 1_440 : 1_460
        let fullSegment = maximumSegment - 12
        switch flow.sent {
        case 0:
            (fromClient, flags, synOptions) = (true, 0x02, true)  // SYN
        case 1:
            (fromClient, flags, synOptions) = (false, 0x12, true)  // SYN, ACK
        case 2:
            (fromClient, flags) = (true, 0x10)  // ACK
        case flow.lifetime...:
            (fromClient, flags) = (true, 0x11)  // FIN, ACK
        default:
            fromClient = random.next() % 10 < 3
            flags = 0x10
            switch random.next() % 10 {
            case 0..<2: payload = 0  // a pure ACK
            case 2..<8: payload = fromClient ? 1 + Int(random.next() % 600) : fullSegment
            default: payload = 1 + Int(random.next() % UInt64(fullSegment))
            }
            if payload > 0 && payload < fullSegment { flags |= 0x08 }  // PSH
        }
        let optionsLength = synOptions ? 20 : 12
        let tcpLength = 20 + optionsLength + payload
        let sequence = fromClient ? flow.clientSequence : flow.serverSequence
        let acknowledgement = flow.sent == 0 ? 0 : (fromClient ? flow.serverSequence : flow.clientSequence)
        // SYN and FIN take one sequence number each.
        let advance = UInt32(payload) + (flags & 0x03 != 0 ? 1 : 0)
        if fromClient { flow.clientSequence &+= advance } else { flow.serverSequence &+= advance }

        let l4Start = ipHeader(
            &flow, fromClient: fromClient, protocolNumber: 6, payloadLength: tcpLength, into: &buffer)
        let (sourcePort, destinationPort) =
            fromClient ? (flow.clientPort, flow.serverPort) : (flow.serverPort, flow.clientPort)
        append16(sourcePort, &buffer)
        append16(destinationPort, &buffer)
        append32(sequence, &buffer)
        append32(acknowledgement, &buffer)
        buffer.append(UInt8((20 + optionsLength) / 4) << 4)
        buffer.append(flags)
        append16(fromClient ? 502 : 509, &buffer)  // window, scaled by the negotiated factor
        append16(0, &buffer)  // checksum, filled in below
        append16(0, &buffer)  // urgent pointer
        let timestampValue = UInt32(truncatingIfNeeded: clock / 1_000_000)
        if synOptions {
            buffer += [0x02, 0x04]  // MSS
            append16(UInt16(maximumSegment), &buffer)
            buffer += [0x04, 0x02]  // SACK permitted
            buffer += [0x08, 0x0A]  // timestamps
            append32(timestampValue, &buffer)
            append32(flow.sent == 0 ? 0 : timestampValue &- 1, &buffer)
            buffer += [0x01, 0x03, 0x03, 0x07]  // NOP, window scale 7
        } else {
            buffer += [0x01, 0x01, 0x08, 0x0A]  // NOP, NOP, timestamps
            append32(timestampValue, &buffer)
            append32(timestampValue &- 3, &buffer)
        }
        let payloadStart = buffer.count
        let payloadSum = appendPayload(payload, &buffer)
        transportChecksum(
            &buffer, flow: flow, l4Start: l4Start, protocolNumber: 6, checksumOffset: 16,
            payloadStart: payloadStart, payloadSum: payloadSum)

        flow.sent += 1
        if flags & 0x01 != 0 {
            // The connection closed: the next packet opens a new one from a new port.
            flow.sent = 0
            flow.clientPort = ephemeralPort()
            flow.lifetime = lifetime()
        }
    }

    private mutating func udpPacket(flow index: Int, into buffer: inout [UInt8]) {
        var flow = flows[index]
        defer { flows[index] = flow }
        let fromClient = flow.sent % 2 == 0
        // A DNS message is built first (its length follows from its contents); a QUIC-like
        // datagram is a slice of the pool, whose word sum is known.
        scratch.removeAll(keepingCapacity: true)
        let isDNS = flow.serverPort == 53
        if isDNS { Self.dnsMessage(response: !fromClient, random: &random, into: &scratch) }
        let payload = isDNS ? scratch.count : 1_200 + Int(random.next() % 151)
        let l4Start = ipHeader(
            &flow, fromClient: fromClient, protocolNumber: 17, payloadLength: 8 + payload, into: &buffer)
        let (sourcePort, destinationPort) =
            fromClient ? (flow.clientPort, flow.serverPort) : (flow.serverPort, flow.clientPort)
        append16(sourcePort, &buffer)
        append16(destinationPort, &buffer)
        append16(UInt16(8 + payload), &buffer)
        append16(0, &buffer)
        let payloadStart = isDNS ? buffer.count + payload : buffer.count
        var payloadSum: UInt64 = 0
        if isDNS { buffer += scratch } else { payloadSum = appendPayload(payload, &buffer) }
        transportChecksum(
            &buffer, flow: flow, l4Start: l4Start, protocolNumber: 17, checksumOffset: 6,
            payloadStart: payloadStart, payloadSum: payloadSum)
        flow.sent += 1
    }

    /// A well-formed DNS message (RFC 1035): a query for an A or AAAA record of a made-up
    /// `www.NAME.com|net|org`, or a response repeating the question with 1 to 8 answers
    /// that point back to it (0xc00c).
    private static func dnsMessage(response: Bool, random: inout SplitMix64, into message: inout [UInt8]) {
        let word = random.next()
        let isAAAA = word & 1 == 0
        let answers = response ? 1 + Int((word >> 1) % 8) : 0
        message += [UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word >> 16)]  // ID
        message += response ? [0x81, 0x80] : [0x01, 0x00]  // flags: RD, plus QR and RA in responses
        message += [0, 1, 0, UInt8(answers), 0, 0, 0, 0]  // QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
        message += [3] + Array("www".utf8)
        let length = 3 + Int((word >> 24) % 10)
        message.append(UInt8(length))
        var letters = random.next()
        for _ in 0..<length {
            message.append(UInt8(ascii: "a") + UInt8(letters % 26))
            letters /= 26
        }
        let tlds = ["com", "net", "org"]
        message += [3] + Array(tlds[Int((word >> 32) % 3)].utf8) + [0]
        message += [0, isAAAA ? 28 : 1, 0, 1]  // QTYPE A or AAAA, QCLASS IN
        for _ in 0..<answers {
            message += [0xC0, 0x0C, 0, isAAAA ? 28 : 1, 0, 1]  // the question's name, type, class IN
            let ttl = random.next()
            message += [0, 0, UInt8(truncatingIfNeeded: ttl >> 8) & 0x0F, UInt8(truncatingIfNeeded: ttl)]  // TTL
            message += [0, isAAAA ? 16 : 4]
            appendRandom(isAAAA ? 16 : 4, random: &random, into: &message)
        }
    }

    /// Ethernet and IP headers; returns where the transport header starts.
    private func ipHeader(
        _ flow: inout Flow, fromClient: Bool, protocolNumber: UInt8, payloadLength: Int, into buffer: inout [UInt8]
    ) -> Int {
        buffer += fromClient ? Self.gatewayMAC : flow.clientMAC
        buffer += fromClient ? flow.clientMAC : Self.gatewayMAC
        let (source, destination) =
            fromClient ? (flow.clientAddress, flow.serverAddress) : (flow.serverAddress, flow.clientAddress)
        if flow.isIPv6 {
            append16(0x86DD, &buffer)
            append32(0x6000_0000 | flow.flowLabel, &buffer)
            append16(UInt16(payloadLength), &buffer)
            buffer.append(protocolNumber)
            buffer.append(fromClient ? 64 : 57)  // hop limit
            buffer += source
            buffer += destination
            return 54
        }
        append16(0x0800, &buffer)
        buffer += [0x45, 0x00]
        append16(UInt16(20 + payloadLength), &buffer)
        flow.ipIdentification &+= 1
        append16(flow.ipIdentification, &buffer)
        append16(0x4000, &buffer)  // don't fragment
        buffer.append(fromClient ? 64 : 57)  // TTL
        buffer.append(protocolNumber)
        append16(0, &buffer)
        buffer += source
        buffer += destination
        let checksum = Self.onesComplement(Self.sum(buffer, 14..<34, initial: 0))
        buffer[24] = UInt8(checksum >> 8)
        buffer[25] = UInt8(checksum & 0xFF)
        return 34
    }

    /// The TCP or UDP checksum over the pseudo-header and segment: the bytes from `l4Start`
    /// to `payloadStart` are summed here, the rest is `payloadSum` (a pool slice's sum).
    private func transportChecksum(
        _ buffer: inout [UInt8], flow: Flow, l4Start: Int, protocolNumber: UInt8, checksumOffset: Int,
        payloadStart: Int, payloadSum: UInt64
    ) {
        let length = buffer.count - l4Start
        let addresses = flow.isIPv6 ? (22..<54) : (26..<34)
        var sum = UInt64(Self.sum(buffer, addresses, initial: 0))
        sum += UInt64(protocolNumber) + UInt64(length & 0xFFFF) + UInt64(length >> 16)
        sum += UInt64(Self.sum(buffer, l4Start..<payloadStart, initial: 0)) + payloadSum
        while sum > 0xFFFF_FFFF { sum = (sum & 0xFFFF_FFFF) + (sum >> 32) }
        var checksum = Self.onesComplement(UInt32(sum))
        if checksum == 0 && protocolNumber == 17 { checksum = 0xFFFF }  // UDP sends 0 as all ones
        buffer[l4Start + checksumOffset] = UInt8(checksum >> 8)
        buffer[l4Start + checksumOffset + 1] = UInt8(checksum & 0xFF)
    }

    /// The 16-bit big-endian word sum of `range` (an odd last byte padded with zero).
    static func sum(_ bytes: [UInt8], _ range: Range<Int>, initial: UInt32) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var sum = UInt64(initial)
            var index = range.lowerBound
            while index + 1 < range.upperBound {
                sum += UInt64(buffer[index]) << 8 | UInt64(buffer[index + 1])
                index += 2
            }
            if index < range.upperBound { sum += UInt64(buffer[index]) << 8 }
            while sum > 0xFFFF_FFFF { sum = (sum & 0xFFFF_FFFF) + (sum >> 32) }
            return UInt32(sum)
        }
    }

    static func onesComplement(_ sum: UInt32) -> UInt16 {
        var folded = sum
        while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(folded)
    }

    /// Appends `count` bytes of the pool, from a random even offset, and returns the sum of
    /// their 16-bit big-endian words (from the prefix sums, so no byte is visited here).
    private mutating func appendPayload(_ count: Int, _ buffer: inout [UInt8]) -> UInt64 {
        guard count > 0 else { return 0 }
        let offset = Int(random.next() % UInt64((pool.count - count) / 2 + 1)) * 2
        buffer.append(contentsOf: pool[offset..<offset + count])
        var sum = poolSums[(offset + count) / 2] - poolSums[offset / 2]
        if count % 2 == 1 { sum += UInt64(pool[offset + count - 1]) << 8 }
        return sum
    }

    /// `count` pseudo-random bytes: each 64-bit draw gives 8 bytes, little-endian.
    private static func appendRandom(_ count: Int, random: inout SplitMix64, into buffer: inout [UInt8]) {
        var remaining = count
        while remaining > 0 {
            var word = random.next()
            for _ in 0..<min(8, remaining) {
                buffer.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
            remaining -= 8
        }
    }

    private func append16(_ value: UInt16, _ buffer: inout [UInt8]) {
        buffer.append(UInt8(value >> 8))
        buffer.append(UInt8(value & 0xFF))
    }

    private func append32(_ value: UInt32, _ buffer: inout [UInt8]) {
        append16(UInt16(value >> 16), &buffer)
        append16(UInt16(value & 0xFFFF), &buffer)
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small, fast, well-mixed stream that is the
/// same on every platform, unlike the standard library's system generator.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
