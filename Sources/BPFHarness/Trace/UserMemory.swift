import BPFSession

/// The memory a traced task's pointer arguments point to, and the kernel memory a
/// syscall wrapper's `struct pt_regs *` points to: one read-only region each in the
/// machine's address space, rewritten for every event. `bpf_probe_read_user(_str)` and
/// `bpf_probe_read_kernel` read them; a program cannot write them.
///
/// Each region owns its host buffer. When a buffer must grow, the region is mapped to the
/// new one before the old one is freed, so the address space never points to freed memory.
final class UserMemory {
    private let machine: Machine
    private var user = Buffer()
    private var kernel = Buffer()
    private var userRegion: UInt32?
    private var kernelRegion: UInt32?

    private struct Buffer {
        var pointer: UnsafeMutableRawPointer?
        var capacity = 0
    }

    init(machine: Machine) {
        self.machine = machine
    }

    deinit {
        if let userRegion { machine.memory.unmap(userRegion) }
        if let kernelRegion { machine.memory.unmap(kernelRegion) }
        user.pointer?.deallocate()
        kernel.pointer?.deallocate()
    }

    /// Lays out the memory of `arguments` (each start aligned to 16 bytes) and returns the
    /// six register values: integers as given, pointers as addresses.
    func place(_ arguments: [SyscallArgument]) -> [UInt64] {
        var bytes: [UInt8] = []
        var offsets: [Int?] = []
        for argument in arguments {
            guard let memory = argument.memory else {
                offsets.append(nil)
                continue
            }
            offsets.append(bytes.count)
            bytes += memory
            bytes += Array(repeating: 0, count: (16 - bytes.count % 16) % 16)
        }
        let base = map(bytes, into: &user, region: &userRegion, name: "the traced task's user memory")
        return zip(arguments, offsets).map { argument, offset in
            switch argument {
            case .value(let value): value
            case .pointer(let address): address
            default: base + UInt64(offset!)
            }
        }
    }

    /// Places `bytes` in the kernel-memory region and returns their address.
    func placeKernel(_ bytes: [UInt8]) -> UInt64 {
        map(bytes, into: &kernel, region: &kernelRegion, name: "kernel memory (the system call's struct pt_regs)")
    }

    private func map(_ bytes: [UInt8], into buffer: inout Buffer, region: inout UInt32?, name: String) -> UInt64 {
        let number = region ?? machine.memory.allocateRegion()
        region = number
        var retired: UnsafeMutableRawPointer?
        if bytes.count > buffer.capacity || buffer.pointer == nil {
            retired = buffer.pointer
            buffer.capacity = max(bytes.count, 256)
            buffer.pointer = .allocate(byteCount: buffer.capacity, alignment: 16)
        }
        let pointer = buffer.pointer!
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: buffer.capacity)
        bytes.withUnsafeBytes { source in
            if let start = source.baseAddress { pointer.copyMemory(from: start, byteCount: bytes.count) }
        }
        machine.memory.map(number, name: name, kind: .memory, base: pointer, size: bytes.count, writable: false)
        retired?.deallocate()
        return AddressSpace.address(region: number)
    }
}
