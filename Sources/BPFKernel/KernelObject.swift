import BPFLoader
import BPFRuntime
import CLibBPF
import Foundation
import Glibc

/// A BPF object loaded into the running kernel by libbpf, lined up with bpfsim's reading
/// of the same file: `maps[i]` is `BPFObject.maps[i]` and programs are named as in
/// `BPFObject.programs`, so results compare index by index.
///
/// libbpf creates the maps and fills what the object itself initialises (global data,
/// `.values` of maps of maps and prog arrays), relocates and loads the programs. Map
/// contents are read and written in the `bpf(2)` layout, as `BPFMap`'s user side does;
/// slots that hold kernel objects are translated to bpfsim's indices both ways: a prog
/// array slot holds a program index, a map-of-maps slot a map index.
///
/// Closing (deinit) closes the object, which unloads its programs and maps.
public final class KernelObject {
    /// The object as bpfsim reads it.
    public let object: BPFObject
    /// Programs libbpf loaded, by name.
    public let loadedPrograms: [String]
    /// What libbpf said while loading (warnings and notes).
    public let messages: [String]

    private let handle: OpaquePointer
    /// libbpf reads the ELF from this buffer until the object is closed.
    private let bytes: UnsafeMutableRawBufferPointer
    /// Aligned with `object.maps`.
    private let mapFDs: [Int32]
    private let mapIDs: [UInt32?]
    /// Aligned with `object.programs`; -1 where the program was not loaded.
    private let programFDs: [Int32]
    private let programIDs: [UInt32?]
    private var ringBuffers: [RingBufferReader] = []

    /// Opens `object`'s file with libbpf and loads the programs named in `loading` (every
    /// other program stays out of the kernel). Program types come from the section names,
    /// as libbpf and bpfsim both read them.
    public init(object: BPFObject, loading: Set<String>) throws(KernelError) {
        if let refused = Kernel.unavailability() { throw refused }
        self.object = object
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: object.path))
        } catch {
            throw .open(object.path, errno: ENOENT, messages: ["cannot read the file"])
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 8)
        data.withUnsafeBytes { buffer.copyMemory(from: $0) }
        bytes = buffer
        let path = object.path
        let (opened, messages) = LibBPF.exclusive { () throws(KernelError) -> OpaquePointer in
            let opened = try LibBPF.open(
                object, bytes: UnsafeRawBufferPointer(start: buffer.baseAddress, count: data.count), loading: loading)
            let result = bpf_object__load(opened)
            if result != 0 {
                bpf_object__close(opened)
                // Completed below, with libbpf's messages (which name the program).
                throw KernelError(code: "load", message: "", errno: LibBPF.errnoOf(result))
            }
            return opened
        }
        let handle: OpaquePointer
        switch opened {
        case .success(let value): handle = value
        case .failure(let error):
            buffer.deallocate()
            if error.code == "open" { throw .open(path, errno: error.errno ?? EINVAL, messages: messages) }
            throw .load(
                path, program: LibBPF.refusedProgram(in: messages), errno: error.errno ?? EINVAL,
                log: KernelVerifierLog.extract(from: messages), messages: messages)
        }
        self.handle = handle
        self.messages = messages
        var mapFDs: [Int32] = []
        for spec in object.maps {
            guard let map = bpf_object__find_map_by_name(handle, spec.name) else {
                bpf_object__close(handle)
                buffer.deallocate()
                throw .noSuchMap(spec.name, path: path)
            }
            mapFDs.append(bpf_map__fd(map))
        }
        self.mapFDs = mapFDs
        mapIDs = mapFDs.map { $0 >= 0 ? LibBPF.mapID(fd: $0) : nil }
        var programFDs: [Int32] = []
        var loaded: [String] = []
        for program in object.programs {
            if let handle = bpf_object__find_program_by_name(handle, program.name), bpf_program__fd(handle) >= 0 {
                programFDs.append(bpf_program__fd(handle))
                loaded.append(program.name)
            } else {
                programFDs.append(-1)
            }
        }
        self.programFDs = programFDs
        programIDs = programFDs.map { $0 >= 0 ? LibBPF.programInfo(fd: $0)?.id : nil }
        loadedPrograms = loaded
        for (index, spec) in object.maps.enumerated() where spec.type == .ringbuf && mapFDs[index] >= 0 {
            if let reader = RingBufferReader(fd: mapFDs[index], name: spec.name) { ringBuffers.append(reader) }
        }
    }

    /// Loads `program`, and what its tail calls may reach: when the object has a prog
    /// array, every program of the same type (a prog array holds only programs of one
    /// type, and libbpf fills one only with loaded programs). Other programs stay out,
    /// so one the kernel refuses does not keep the rest from running.
    public convenience init(object: BPFObject, running program: String) throws(KernelError) {
        guard let target = object.programs.first(where: { $0.name == program }) else {
            throw .noSuchProgram(program, path: object.path)
        }
        if target.type == .unspec { throw .plainFunction(program) }
        guard Self.testRunnableTypes.contains(target.type) else {
            throw .cannotTestRun(program, type: target.type.kernelName)
        }
        var loading: Set<String> = [program]
        if object.maps.contains(where: { $0.type == .progArray }) {
            for other in object.programs where other.type == target.type && other.section != ".text" {
                loading.insert(other.name)
            }
        }
        try self.init(object: object, loading: loading)
    }

    deinit {
        ringBuffers.removeAll()
        bpf_object__close(handle)
        bytes.deallocate()
    }

    // MARK: Running

    /// The outcome of one `BPF_PROG_TEST_RUN`.
    public struct TestRun: Sendable, Hashable {
        /// The program's return value, as the kernel reports it: 32 bits.
        public var returnValue: UInt32
        /// The packet after the run (for XDP: metadata, then the packet).
        public var dataOut: [UInt8]?
        /// The context after the run, when one was given.
        public var contextOut: [UInt8]?
        /// The kernel's average time per run, in nanoseconds.
        public var duration: UInt32
        /// Records read from the object's ring buffers after the run, by map name.
        public var ringBufferRecords: [(map: String, data: [UInt8])]

        public static func == (a: TestRun, b: TestRun) -> Bool {
            a.returnValue == b.returnValue && a.dataOut == b.dataOut && a.contextOut == b.contextOut
                && a.ringBufferRecords.map(\.map) == b.ringBufferRecords.map(\.map)
                && a.ringBufferRecords.map(\.data) == b.ringBufferRecords.map(\.data)
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(returnValue)
            hasher.combine(dataOut)
        }
    }

    /// Program types `BPF_PROG_TEST_RUN` can run (net/bpf/test_run.c, Linux 6.18). The
    /// rest (kprobes, tracepoints, perf events, socket operations...) have no test run.
    public static let testRunnableTypes: Set<ProgramType> = [
        .socketFilter, .schedCls, .schedAct, .xdp, .cgroupSkb, .lwtIn, .lwtOut, .lwtXmit, .lwtSeg6local,
        .flowDissector, .rawTracepoint, .tracing, .skLookup, .syscall, .netfilter, .structOps,
    ]

    /// Runs `program` on `data` and/or `context`, on CPU `cpu`: once, or `repeat` times in
    /// the kernel's own loop (`duration` is then the average; the outputs are the last run's).
    public func testRun(
        program name: String, data: [UInt8]?, context: [UInt8]? = nil, cpu: Int = 0, repeat count: Int = 1
    ) throws(KernelError) -> TestRun {
        guard let index = object.programs.firstIndex(where: { $0.name == name }) else {
            throw .noSuchProgram(name, path: object.path)
        }
        let program = object.programs[index]
        guard Self.testRunnableTypes.contains(program.type) else {
            if program.type == .unspec { throw .plainFunction(name) }
            throw .cannotTestRun(name, type: program.type.kernelName)
        }
        guard programFDs[index] >= 0 else { throw .notLoaded(name) }
        let fd = programFDs[index]
        // Room for what a program may add: XDP grows into a 4096-byte frame, skb
        // programs can grow the packet further.
        let dataCapacity = (data?.count ?? 0) + 65_536
        let contextCapacity = max(context?.count ?? 0, 4096)
        var dataOut = [UInt8](repeating: 0, count: data == nil ? 0 : dataCapacity)
        var contextOut = [UInt8](repeating: 0, count: context == nil ? 0 : contextCapacity)
        let dataIn = data ?? []
        let contextIn = context ?? []
        var options = bpf_test_run_opts()
        options.sz = MemoryLayout<bpf_test_run_opts>.size
        options.repeat = Int32(clamping: max(count, 1))
        let (result, failure): (Int32, Int32) = dataIn.withUnsafeBytes { dataInBytes in
            contextIn.withUnsafeBytes { contextInBytes in
                dataOut.withUnsafeMutableBytes { dataOutBytes in
                    contextOut.withUnsafeMutableBytes { contextOutBytes in
                        if data != nil {
                            options.data_in = dataInBytes.baseAddress
                            options.data_size_in = UInt32(dataInBytes.count)
                            options.data_out = dataOutBytes.baseAddress
                            options.data_size_out = UInt32(dataOutBytes.count)
                        }
                        if context != nil {
                            options.ctx_in = contextInBytes.baseAddress
                            options.ctx_size_in = UInt32(contextInBytes.count)
                            options.ctx_out = contextOutBytes.baseAddress
                            options.ctx_size_out = UInt32(contextOutBytes.count)
                        }
                        let pinned = Result { () throws(KernelError) -> Int32 in
                            try CPUPinning.run(on: cpu) { () throws(KernelError) -> Int32 in
                                bpf_prog_test_run_opts(fd, &options)
                            }
                        }
                        switch pinned {
                        case .success(let value): return (value, value < 0 ? LibBPF.errnoOf(value) : 0)
                        case .failure(let error): return (-1, error.errno ?? EINVAL)
                        }
                    }
                }
            }
        }
        if result != 0 { throw .testRun(name, errno: failure) }
        var run = TestRun(
            returnValue: options.retval,
            dataOut: data == nil ? nil : Array(dataOut.prefix(Int(options.data_size_out))),
            contextOut: context == nil ? nil : Array(contextOut.prefix(Int(options.ctx_size_out))),
            duration: options.duration, ringBufferRecords: [])
        for reader in ringBuffers {
            run.ringBufferRecords += reader.drain().map { (reader.name, $0) }
        }
        return run
    }

    // MARK: Maps

    /// Bytes of one value as `bpf(2)` reads it: per-CPU maps give `round_up(value_size, 8)`
    /// for every possible CPU.
    func valueBufferSize(_ spec: MapSpec) -> Int {
        spec.type.isPerCPU ? (spec.valueSize + 7) / 8 * 8 * Kernel.possibleCPUs : spec.valueSize
    }

    /// Every element of map `index`, in the kernel's iteration order. Queues and stacks
    /// are read by popping every value and pushing them back; ring buffers, perf event
    /// arrays and bloom filters have no elements to list.
    public func entries(ofMap index: Int) throws(KernelError) -> [MapEntry] {
        let spec = object.maps[index]
        let fd = mapFDs[index]
        switch spec.type {
        case .ringbuf, .perfEventArray, .bloomFilter: return []
        case .queue, .stack: return try queueEntries(spec, fd: fd)
        default: break
        }
        var entries: [MapEntry] = []
        var key = [UInt8](repeating: 0, count: spec.keySize)
        var next = [UInt8](repeating: 0, count: spec.keySize)
        var value = [UInt8](repeating: 0, count: valueBufferSize(spec))
        var first = true
        while true {
            let status =
                first
                ? bpf_map_get_next_key(fd, nil, &next)
                : bpf_map_get_next_key(fd, &key, &next)
            if status != 0 {
                let code = LibBPF.errnoOf(status)
                if code == ENOENT { break }
                throw .map(spec.name, "BPF_MAP_GET_NEXT_KEY", errno: code)
            }
            first = false
            key = next
            let found = bpf_map_lookup_elem(fd, &key, &value)
            if found != 0 {
                let code = LibBPF.errnoOf(found)
                if code == ENOENT { continue }  // empty fd-array slots, or deleted meanwhile
                throw .map(spec.name, "BPF_MAP_LOOKUP_ELEM", errno: code)
            }
            entries.append(MapEntry(key: key, value: fromKernel(value, spec: spec)))
            if entries.count > spec.maxEntries + 1 { break }  // never loop forever
        }
        return entries
    }

    /// Every map's elements, aligned with `object.maps`.
    public func allEntries() throws(KernelError) -> [[MapEntry]] {
        var result: [[MapEntry]] = []
        for index in object.maps.indices { result.append(try entries(ofMap: index)) }
        return result
    }

    /// `BPF_MAP_UPDATE_ELEM` (a push for queues and stacks), in bpfsim's terms: a prog
    /// array value is a program index, a map-of-maps value a map index; per-CPU values
    /// hold `round_up(value_size, 8)` bytes for each of `Kernel.possibleCPUs`.
    public func update(map index: Int, key: [UInt8], value: [UInt8], flags: UInt64 = 0) throws(KernelError) {
        let spec = object.maps[index]
        var value = try toKernel(value, spec: spec)
        var key = key
        let status: Int32
        if spec.type == .queue || spec.type == .stack || spec.type == .bloomFilter {
            status = bpf_map_update_elem(mapFDs[index], nil, &value, flags)
        } else {
            status = bpf_map_update_elem(mapFDs[index], &key, &value, flags)
        }
        if status != 0 { throw .map(spec.name, "BPF_MAP_UPDATE_ELEM", errno: LibBPF.errnoOf(status)) }
    }

    private func queueEntries(_ spec: MapSpec, fd: Int32) throws(KernelError) -> [MapEntry] {
        var values: [[UInt8]] = []
        var value = [UInt8](repeating: 0, count: spec.valueSize)
        while values.count <= spec.maxEntries {
            let status = bpf_map_lookup_and_delete_elem(fd, nil, &value)
            if status != 0 {
                let code = LibBPF.errnoOf(status)
                if code == ENOENT { break }
                throw .map(spec.name, "BPF_MAP_LOOKUP_AND_DELETE_ELEM", errno: code)
            }
            values.append(value)
        }
        // Put them back as they were: a queue in the order popped, a stack in reverse.
        for var element in (spec.type == .stack ? values.reversed() : values) {
            let status = bpf_map_update_elem(fd, nil, &element, 0)
            if status != 0 { throw .map(spec.name, "BPF_MAP_UPDATE_ELEM", errno: LibBPF.errnoOf(status)) }
        }
        return values.map { MapEntry(key: [], value: $0) }
    }

    /// Kernel object ids in fd-array slots become bpfsim's indices.
    private func fromKernel(_ value: [UInt8], spec: MapSpec) -> [UInt8] {
        guard value.count >= 4 else { return value }
        let id = UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24
        let index: Int?
        switch spec.type {
        case .progArray: index = programIDs.firstIndex(of: id)
        case .arrayOfMaps, .hashOfMaps: index = mapIDs.firstIndex(of: id)
        default: return value
        }
        guard let index else { return value }
        return Self.littleEndian(UInt32(index)) + value.dropFirst(4)
    }

    /// bpfsim's indices in fd-array values become file descriptors for the kernel.
    private func toKernel(_ value: [UInt8], spec: MapSpec) throws(KernelError) -> [UInt8] {
        guard spec.type == .progArray || spec.type == .arrayOfMaps || spec.type == .hashOfMaps else { return value }
        guard value.count >= 4 else { throw .map(spec.name, "a slot value of \(value.count) bytes", errno: EINVAL) }
        let index = Int(UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24)
        let fds = spec.type == .progArray ? programFDs : mapFDs
        guard index < fds.count, fds[index] >= 0 else {
            throw .map(spec.name, "a slot naming \(spec.type == .progArray ? "program" : "map") \(index)", errno: EBADF)
        }
        return Self.littleEndian(UInt32(bitPattern: fds[index]))
    }

    static func littleEndian(_ value: UInt32) -> [UInt8] {
        [
            UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8),
            UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 24),
        ]
    }
}

/// Reads a ring buffer map's submitted records with libbpf's consumer.
final class RingBufferReader {
    let name: String
    private let handle: OpaquePointer
    private let box: Box

    final class Box {
        var records: [[UInt8]] = []
    }

    init?(fd: Int32, name: String) {
        self.name = name
        let box = Box()
        let context = Unmanaged.passUnretained(box).toOpaque()
        guard
            let handle = ring_buffer__new(
                fd,
                { context, data, size in
                    guard let context, let data else { return 0 }
                    let box = Unmanaged<RingBufferReader.Box>.fromOpaque(context).takeUnretainedValue()
                    box.records.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
                    return 0
                }, context, nil)
        else { return nil }
        self.handle = handle
        self.box = box
    }

    deinit { ring_buffer__free(handle) }

    /// Every record submitted since the last drain.
    func drain() -> [[UInt8]] {
        _ = ring_buffer__consume(handle)
        let records = box.records
        box.records.removeAll()
        return records
    }
}
