import BPFLoader
import CLibBPF
import Foundation
import Glibc

/// The few process-wide things libbpf needs: one print function, and one loader at a
/// time so that its messages belong to the load that caused them.
enum LibBPF {
    /// Held while libbpf opens or loads an object; messages go to `collected` meanwhile.
    private static let loading = NSLock()
    private static let messagesLock = NSLock()
    nonisolated(unsafe) private static var collected: [String]?

    /// Installs the print function once; libbpf's debug chatter is dropped, its warnings
    /// and notes are kept for error messages.
    private static let installed: Void = {
        bpfsim_libbpf_set_sink { level, message in
            guard let message, level <= 1 else { return }  // LIBBPF_WARN = 0, LIBBPF_INFO = 1
            LibBPF.record(String(cString: message))
        }
    }()

    private static func record(_ message: String) {
        var text = message
        while text.hasSuffix("\n") { text.removeLast() }
        if text.hasPrefix("libbpf: ") { text.removeFirst(8) }
        messagesLock.lock()
        collected?.append(text)
        messagesLock.unlock()
    }

    /// Runs `body` as the only libbpf user, and returns its result with what libbpf said
    /// meanwhile (its warnings name the reason for most failures).
    static func exclusive<T>(_ body: () throws(KernelError) -> T) -> (Result<T, KernelError>, [String]) {
        _ = installed
        loading.lock()
        defer { loading.unlock() }
        messagesLock.lock()
        collected = []
        messagesLock.unlock()
        let result: Result<T, KernelError>
        do { result = .success(try body()) } catch { result = .failure(error) }
        messagesLock.lock()
        let messages = collected ?? []
        collected = nil
        messagesLock.unlock()
        return (result, messages)
    }

    /// Opens an object from its bytes (which must outlive the handle) and chooses which
    /// programs load. A program whose section this libbpf does not know (it predates
    /// `tcx/` and `netfilter`, say) gets the type and expected attach type bpfsim read
    /// from the section, so both load the same program the same way. Call inside
    /// `exclusive`.
    static func open(
        _ object: BPFObject, bytes: UnsafeRawBufferPointer, loading: Set<String>
    ) throws(KernelError) -> OpaquePointer {
        var options = bpf_object_open_opts()
        options.sz = MemoryLayout<bpf_object_open_opts>.size
        let name = URL(fileURLWithPath: object.path).deletingPathExtension().lastPathComponent
        let opened: OpaquePointer? = name.withCString { cName in
            options.object_name = cName
            return bpf_object__open_mem(bytes.baseAddress, bytes.count, &options)
        }
        guard let opened else { throw .open(object.path, errno: errno, messages: []) }
        var program = bpf_object__next_program(opened, nil)
        while let current = program {
            let name = String(cString: bpf_program__name(current))
            bpf_program__set_autoload(current, loading.contains(name))
            if bpf_program__type(current) == BPF_PROG_TYPE_UNSPEC,
                let ours = object.programs.first(where: { $0.name == name }), ours.type != .unspec
            {
                bpf_program__set_type(current, bpf_prog_type(rawValue: ours.type.rawValue))
                bpf_program__set_expected_attach_type(current, bpf_attach_type(rawValue: ours.expectedAttachType))
            }
            program = bpf_object__next_program(opened, current)
        }
        // No pinning: libbpf would reuse a map pinned by name in /sys/fs/bpf from an
        // earlier run, and leave one behind. Every load starts from the object's state,
        // as a bpfsim session does; `--state` is how both carry maps over.
        var map = bpf_object__next_map(opened, nil)
        while let current = map {
            bpf_map__set_pin_path(current, nil)
            map = bpf_object__next_map(opened, current)
        }
        return opened
    }

    /// The reason among libbpf's messages: its last warning that is not a summary
    /// ("failed to load: -13", "failed to load object") or a hint about memlock limits.
    static func reason(in messages: [String]) -> String? {
        messages.last { message in
            !message.contains("failed to load object") && !message.hasPrefix("-- ")
                && !message.contains("try raising 'ulimit -l'")
                && !(message.contains("failed to load: -") && message.hasPrefix("prog '"))
        }
    }

    /// The program libbpf says failed to load ("prog 'NAME': BPF program load failed").
    static func refusedProgram(in messages: [String]) -> String? {
        for message in messages where message.hasPrefix("prog '") && message.contains("failed") {
            let name = message.dropFirst(6).prefix { $0 != "'" }
            if !name.isEmpty { return String(name) }
        }
        return nil
    }

    /// libbpf functions return a negative errno; this gives the positive one.
    static func errnoOf(_ result: Int32) -> Int32 { result < 0 ? -result : errno }

    /// `struct bpf_prog_info`'s id and verified instruction count for a program fd.
    static func programInfo(fd: Int32) -> (id: UInt32, verifiedInstructions: UInt32)? {
        var info = bpf_prog_info()
        var length = UInt32(MemoryLayout<bpf_prog_info>.size)
        guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0 else { return nil }
        return (info.id, info.verified_insns)
    }

    /// A map's id, which is what the kernel returns for a map-in-map slot.
    static func mapID(fd: Int32) -> UInt32? {
        var info = bpf_map_info()
        var length = UInt32(MemoryLayout<bpf_map_info>.size)
        guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0 else { return nil }
        return info.id
    }
}

/// Runs the calling thread on one CPU for the duration of a body, so that per-CPU map
/// slots and `bpf_get_smp_processor_id` are the ones the emulated world names.
enum CPUPinning {
    /// 1024 CPUs' worth of bits, the size glibc's `cpu_set_t` has.
    static let maskSize = 128

    static func run<T>(on cpu: Int, _ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        var saved = [UInt8](repeating: 0, count: maskSize)
        guard bpfsim_get_affinity(&saved, maskSize) == 0 else { throw .pinning(cpu: cpu, errno: errno) }
        guard cpu >= 0, cpu < maskSize * 8 else { throw .pinning(cpu: cpu, errno: EINVAL) }
        var mask = [UInt8](repeating: 0, count: maskSize)
        mask[cpu / 8] = 1 << UInt8(cpu % 8)
        guard bpfsim_set_affinity(&mask, maskSize) == 0 else { throw .pinning(cpu: cpu, errno: errno) }
        defer { _ = bpfsim_set_affinity(&saved, maskSize) }
        return try body()
    }
}
