import BPFKernel
import Foundation

/// An object's programs and maps loaded into the running kernel: `Session`'s twin for
/// the kernel. It runs a program with `BPF_PROG_TEST_RUN` and gives the same
/// `ProgramRun` shape, and dumps maps as `MapDump`s, so the two compare field by field.
///
/// What the kernel does not report is absent from its runs: the instruction count,
/// printk lines, perf events and redirect targets (docs/kernel.md).
public final class KernelSession {
    public let object: BPFObject
    public let kernel: KernelObject
    public let configuration: RunConfiguration

    /// Loads `program` of `object` (and the programs of its type, for tail calls).
    /// Throws `SessionError` with code `kernel_unavailable` where `bpf(2)` is refused.
    public init(object: BPFObject, program: String, configuration: RunConfiguration = .init()) throws(SessionError) {
        self.object = object
        self.configuration = configuration
        do {
            kernel = try KernelObject(object: object, running: program)
        } catch {
            throw SessionError(kernel: error)
        }
    }

    public var programNames: [String] { object.programs.map(\.name) }

    /// Why bpf() cannot be used here, in one sentence (`Kernel.unavailability()`); nil
    /// where it can. For targets that do not import BPFKernel (the harness, whose libpcap
    /// headers clash with the kernel's `struct bpf_insn`).
    public static var unavailability: String? { Kernel.unavailability()?.message }

    /// The kernel's possible CPUs: how many values its per-CPU maps hold.
    public static var possibleCPUs: Int { Kernel.possibleCPUs }

    public func programIndex(named name: String) throws(SessionError) -> Int {
        guard let index = object.programs.firstIndex(where: { $0.name == name }) else {
            throw .unknownProgram(name, known: programNames)
        }
        return index
    }

    /// Runs program `index` once on `input`, on CPU `cpu` (default: the one the
    /// configuration's world names). A `.frame` gives a tc, socket filter or cgroup_skb
    /// program its `__sk_buff` (`Packet.skbContext`: wire_len, ingress_ifindex, tstamp...)
    /// as ctx_in, as `Session` does; an XDP program runs without ctx_in.
    public func run(_ index: Int, input: ProgramInput, cpu: UInt32? = nil) throws(SessionError) -> ProgramRun {
        let program = object.programs[index]
        let data: [UInt8]
        var context: [UInt8]? = nil
        switch input {
        case .packet(let bytes): data = bytes
        case .frame(let packet):
            data = packet.data
            context = SKBContext.Kind(program.type) != nil ? packet.skbContext : packet.context
        case .memory:
            throw .unsupported(
                "'\(program.name)': the kernel has no flat-memory runs; it runs typed programs on a packet (--data)")
        case .context, .event:
            throw .unsupported(
                "'\(program.name)': BPF_PROG_TEST_RUN cannot run \(program.type.kernelName) programs on a tracing context")
        }
        let run: KernelObject.TestRun
        do {
            run = try kernel.testRun(
                program: program.name, data: data, context: context, cpu: Int(cpu ?? configuration.world.cpu))
        } catch {
            throw SessionError(kernel: error)
        }
        return ProgramRun(
            execution: ExecutionResult(returnValue: UInt64(run.returnValue), instructionCount: nil, fault: nil),
            dataOut: run.dataOut, printk: [],
            events: run.ringBufferRecords.map {
                EventRecord(map: $0.map, kind: .ringBuffer, cpu: nil, data: $0.data)
            }, redirect: nil)
    }

    /// Map types whose elements user space cannot read back: an XSKMAP's lookup from the
    /// syscall side is refused with EOPNOTSUPP (`xsk_map_lookup_elem_sys_only`).
    public static let unlistableMapTypes: Set<MapType> = [.xskmap]

    /// Every map, by name, as `MapDump` (per-CPU maps: one value per possible CPU); maps
    /// of `unlistableMapTypes` are left out, and comparisons skip them.
    public func mapDumps() throws(SessionError) -> [String: MapDump] {
        var result: [String: MapDump] = [:]
        for (index, spec) in object.maps.enumerated() where !Self.unlistableMapTypes.contains(spec.type) {
            do {
                result[spec.name] = MapDump(
                    entries: try kernel.entries(ofMap: index), spec: spec, cpuCount: Kernel.possibleCPUs)
            } catch {
                throw SessionError(kernel: error)
            }
        }
        return result
    }

    /// Writes every element of `machine`'s maps into the kernel's, so both start from the
    /// same state (after `--state`, or a test's extra entries). Maps the program may
    /// not write (`.rodata`, frozen by libbpf) and those without elements to list are
    /// left as libbpf made them. Per-CPU values are padded or cut to the kernel's CPUs.
    public func copyState(from machine: Machine) throws(SessionError) {
        let cpus = Kernel.possibleCPUs
        for (index, spec) in object.maps.enumerated() where spec.flags & MapFlags.rdonlyProg == 0 {
            guard let map = machine.map(named: spec.name) else { continue }
            for entry in map.entries() {
                var value = entry.value
                if spec.type.isPerCPU {
                    let stride = map.valueStride
                    value = (0..<cpus).flatMap { cpu -> [UInt8] in
                        let start = cpu * stride
                        return start + stride <= entry.value.count
                            ? Array(entry.value[start..<start + stride]) : [UInt8](repeating: 0, count: stride)
                    }
                }
                do {
                    try kernel.update(map: index, key: entry.key, value: value)
                } catch {
                    throw SessionError(kernel: error)
                }
            }
        }
    }
}

extension SessionError {
    /// A kernel error in the session's terms; `kernel_unavailable` where bpf() is refused.
    public init(kernel error: KernelError) {
        self.init(
            code: error.code == "unavailable" ? "kernel_unavailable" : "kernel_" + error.code, message: error.message)
        kernelLog = error.log
    }
}

extension MapDump {
    /// A dump of elements read through `bpf(2)`: per-CPU values hold
    /// `round_up(value_size, 8)` bytes for each of `cpuCount` CPUs.
    public init(entries: [MapEntry], spec: MapSpec, cpuCount: Int) {
        let stride = (spec.valueSize + 7) & ~7
        self.entries = entries.map { entry in
            if spec.type.isPerCPU {
                let values = (0..<cpuCount).map { cpu -> String in
                    let start = cpu * stride
                    let end = min(start + spec.valueSize, entry.value.count)
                    return start < end ? Hex.string(Array(entry.value[start..<end])) : ""
                }
                return Entry(key: Hex.string(entry.key), value: .perCPU(values))
            }
            return Entry(key: Hex.string(entry.key), value: .single(Hex.string(entry.value)))
        }
    }
}
