import BPFSession
import Foundation

/// One program of a BPF object, loaded into an emulated machine, for tests written in
/// Swift (docs/library.md):
///
/// ```swift
/// let sim = try Simulation(object: "xdp_filter.bpf.c", program: "xdp_filter")
/// let result = sim.run(Packet.build { Ethernet(); IPv4(source: "10.0.0.7"); UDP(sourcePort: 1, destinationPort: 53) })
/// #expect(result.xdpAction == .drop)
/// #expect(try sim.map("counters").value(forKey: UInt32(0), as: UInt64.self) == 1)
/// ```
///
/// Maps keep their state from run to run, as in the kernel.
public final class Simulation {
    public let object: BPFObject
    public let program: String
    public let session: Session
    private let index: Int

    /// Loads `object` (a `.o`, or a `.c` compiled with `clang -O2 -g -target bpf`) and
    /// picks `program` (optional when the object has one). With `verify` (the default)
    /// bpfsim's static verifier checks the program first, as the kernel would on load,
    /// and a refusal throws.
    public init(
        object path: String, program: String? = nil, engine: Engine = .interpreter, cpus: Int = 1,
        verify: Bool = true
    ) throws(SimulationError) {
        let objectPath: String
        do {
            objectPath = try ObjectCache.objectPath(for: URL(fileURLWithPath: path), spec: path)
        } catch {
            throw SimulationError(error.description)
        }
        do {
            object = try BPFObject(path: objectPath)
        } catch {
            throw SimulationError("\(path): \(error)")
        }
        let names = object.programs.map(\.name)
        guard let chosen = program ?? (names.count == 1 ? names[0] : nil) else {
            throw SimulationError("\(path) has \(names.count) programs; name one (\(names.joined(separator: ", ")))")
        }
        guard names.contains(chosen) else {
            throw SimulationError("\(path): no program named '\(chosen)' (programs: \(names.joined(separator: ", ")))")
        }
        self.program = chosen
        do {
            session = try Session(
                object: object, configuration: RunConfiguration(engine: engine, world: World(cpuCount: cpus)))
            index = try session.programIndex(named: chosen)
            // As the kernel does at load, and `bpfsim run` before it runs.
            if verify { try session.verify(index) }
        } catch {
            throw SimulationError("\(path): \(error)")
        }
    }

    /// The program's type, from its section (`xdp`, `tc`, `socket`, ...).
    public var type: ProgramType { session.definitions[index].type }

    /// Runs the program once on a packet.
    public func run(_ packet: Packet) -> SimulationResult {
        SimulationResult(run: session.run(index, input: .frame(packet)), type: type)
    }

    /// Runs the program once on raw packet bytes.
    public func run(bytes: [UInt8]) -> SimulationResult {
        SimulationResult(run: session.run(index, input: .packet(bytes)), type: type)
    }

    /// A map of the object, by name.
    public func map(_ name: String) throws(SimulationError) -> SimulationMap {
        guard let map = session.machine.map(named: name) else {
            throw SimulationError(
                "no map named '\(name)' (maps: \(session.machine.maps.map(\.name).joined(separator: ", ")))")
        }
        return SimulationMap(map: map)
    }
}

/// Why a simulation could not be set up or a map accessed.
public struct SimulationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What one run did.
public struct SimulationResult: Sendable {
    /// Everything the engine reported.
    public let run: ProgramRun
    public let type: ProgramType

    /// r0 at exit.
    public var returnValue: UInt64 { run.execution.returnValue }
    /// What the return value means for the program's type; nil after a fault.
    public var verdict: Verdict? { run.verdict }
    /// The verdict as specs write it: `XDP_DROP`, `TC_ACT_SHOT`, a socket filter's byte
    /// count, `allow`/`deny` for cgroup_skb, `fault`.
    public var verdictName: String { CaseExecution.verdictName(type: type, run: run) }
    /// The XDP action, for an XDP program that returned a known one.
    public var xdpAction: XDPAction? {
        if case .xdp(let action, _)? = run.verdict { return action }
        return nil
    }
    /// The tc action, for a tc program that returned a known one.
    public var tcAction: TCAction? {
        if case .tc(let action, _)? = run.verdict { return action }
        return nil
    }
    public var fault: ExecutionFault? { run.execution.fault }
    /// The packet after the run (for XDP, metadata first).
    public var output: [UInt8] { run.dataOut ?? [] }
    public var printk: [String] { run.printk }
    /// Records the run wrote to ring buffers, in order.
    public var ringBufferRecords: [[UInt8]] { run.events.filter { $0.kind == .ringBuffer }.map(\.data) }
    public var redirect: RedirectTarget? { run.redirect }
}

/// A map of a simulation, read and written with typed keys and values (little-endian
/// integers) or raw bytes.
public struct SimulationMap {
    public let map: BPFMap

    public var name: String { map.name }

    /// The value under `key`, or nil when there is none. A per-CPU map gives CPU 0's value.
    public func value(forKey key: [UInt8]) -> [UInt8]? {
        guard let value = try? map.lookup(key: key) else { return nil }
        return Array(value.prefix(map.valueSize))
    }

    /// Each CPU's value under `key` (per-CPU maps).
    public func perCPUValues(forKey key: [UInt8]) -> [[UInt8]]? {
        guard let value = try? map.lookup(key: key) else { return nil }
        guard map.type.isPerCPU else { return [Array(value.prefix(map.valueSize))] }
        return stride(from: 0, to: value.count, by: map.valueStride).map {
            Array(value[$0..<min($0 + map.valueSize, value.count)])
        }
    }

    public func value<Key: FixedWidthInteger, Value: FixedWidthInteger>(forKey key: Key, as type: Value.Type) -> Value?
    {
        value(forKey: Self.bytes(key)).map(Self.integer)
    }

    /// Each CPU's value as an integer.
    public func perCPUValues<Key: FixedWidthInteger, Value: FixedWidthInteger>(forKey key: Key, as type: Value.Type)
        -> [Value]?
    {
        perCPUValues(forKey: Self.bytes(key)).map { $0.map(Self.integer) }
    }

    /// Sets `key` to `value` (`BPF_ANY`); a per-CPU map gets the value on every CPU.
    public func update(key: [UInt8], value: [UInt8]) throws(MapError) {
        if map.type.isPerCPU {
            let padded = value + [UInt8](repeating: 0, count: max(0, map.valueStride - value.count))
            try map.update(key: key, value: Array((0..<map.cpuCount).map { _ in padded }.joined()))
        } else {
            try map.update(key: key, value: value)
        }
    }

    public func update<Key: FixedWidthInteger, Value: FixedWidthInteger>(key: Key, value: Value) throws(MapError) {
        try update(key: Self.bytes(key), value: Self.bytes(value))
    }

    public func delete(key: [UInt8]) throws(MapError) { try map.delete(key: key) }

    /// Every element, keys and values as bytes (per-CPU: every CPU's padded value).
    public var entries: [MapEntry] { map.entries() }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func integer<T: FixedWidthInteger>(_ bytes: [UInt8]) -> T {
        var value: T = 0
        for (index, byte) in bytes.prefix(MemoryLayout<T>.size).enumerated() {
            value |= T(truncatingIfNeeded: byte) << (8 * index)
        }
        return value
    }
}
