import BPFCore

/// The helpers bpfsim emulates, by kernel id, with the kernel's semantics (the comment on
/// each names its kernel function). Helpers that only make sense for some program types
/// (`bpf_xdp_adjust_head`) fail cleanly when the context is of another type.
public enum StandardHelpers {
    public static var registry: HelperRegistry {
        var registry = HelperRegistry(WorldHelpers.all)
        for helper in maps + output + task + memory + control + xdp + SKBHelpers.all { registry.register(helper) }
        return registry
    }

    static let efault = UInt64(bitPattern: -14)
    static let einval = UInt64(bitPattern: -22)
    static let e2big = UInt64(bitPattern: -7)
    static let enoent = UInt64(bitPattern: -2)
    static let erange = UInt64(bitPattern: -34)

    /// What a kernel-memory read of an unreadable address returns on x86-64:
    /// `copy_from_kernel_nofault` refuses user addresses (below TASK_SIZE_MAX + one page)
    /// and non-canonical ones with -ERANGE; other kernel addresses fault with -EFAULT.
    static func kernelFaultCode(_ address: UInt64) -> UInt64 {
        let userLimit: UInt64 = 0x0000_7fff_ffff_f000 + 0x1000
        let canonical = address < 0x0000_8000_0000_0000 || address >= 0xffff_8000_0000_0000
        return address < userLimit || !canonical ? erange : efault
    }

    // MARK: Maps

    static var maps: [Helper] {
        [
            // bpf_map_lookup_elem (kernel/bpf/helpers.c): a pointer to the value, or NULL.
            Helper(named: "map_lookup_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                if map.keySize == 0 { return 0 }
                let key = try call.pointer(call.r2, map.keySize, "key")
                return map.lookupElement(key, cpu: Int(call.machine.world.cpu))
            },
            // bpf_map_update_elem: 0 or a negative errno.
            Helper(named: "map_update_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                let key =
                    map.keySize == 0 ? UnsafeRawPointer(bitPattern: 1)! : try call.pointer(call.r2, map.keySize, "key")
                let value = try call.pointer(call.r3, map.valueSize, "value")
                return map.updateElement(key, value, flags: call.r4, cpu: Int(call.machine.world.cpu))
            },
            // bpf_map_delete_elem.
            Helper(named: "map_delete_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                return map.deleteElement(try call.pointer(call.r2, map.keySize, "key"))
            },
            // bpf_map_push_elem (queue, stack, bloom filter).
            Helper(named: "map_push_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                return map.pushElement(try call.pointer(call.r2, map.valueSize, "value"), flags: call.r3)
            },
            // bpf_map_pop_elem.
            Helper(named: "map_pop_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                return map.popElement(into: try call.mutablePointer(call.r2, map.valueSize, "value"), remove: true)
            },
            // bpf_map_peek_elem (also the bloom filter's membership test, which reads the value).
            Helper(named: "map_peek_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                if map is BloomFilterMap {
                    let value = try call.pointer(call.r2, map.valueSize, "value")
                    return map.popElement(into: UnsafeMutableRawPointer(mutating: value), remove: false)
                }
                return map.popElement(into: try call.mutablePointer(call.r2, map.valueSize, "value"), remove: false)
            },
            // bpf_map_lookup_percpu_elem: a per-CPU value of another CPU, NULL past the last CPU.
            Helper(named: "map_lookup_percpu_elem") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                let cpu = Int(call.r3)
                guard map.type.isPerCPU, cpu < map.cpuCount else { return 0 }
                return map.lookupElement(try call.pointer(call.r2, map.keySize, "key"), cpu: cpu)
            },
        ]
    }

    // MARK: Output: trace pipe, ring buffers, perf events

    static var output: [Helper] {
        [
            // bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3): up to 3 arguments.
            Helper(named: "trace_printk") { call throws(ExecutionFault) in
                let format = try call.formatString(call.r1, size: call.r2)
                guard let format else { return einval }
                return call.printk(format, arguments: [call.r3, call.r4, call.r5], maxArguments: 3)
            },
            // bpf_trace_vprintk(fmt, fmt_size, data, data_len): arguments from an array of u64.
            Helper(named: "trace_vprintk") { call throws(ExecutionFault) in
                guard let format = try call.formatString(call.r1, size: call.r2) else { return einval }
                guard let arguments = try call.argumentArray(call.r3, length: call.r4) else { return einval }
                return call.printk(format, arguments: arguments, maxArguments: 12)
            },
            // bpf_snprintf(str, str_size, fmt, data, data_len): the formatted length including the NUL.
            Helper(named: "snprintf") { call throws(ExecutionFault) in
                guard let format = try call.cString(call.r3) else { return einval }
                guard let arguments = try call.argumentArray(call.r4, length: call.r5) else { return einval }
                guard case .success(let text) = call.format(format, arguments: arguments, maxArguments: 12) else {
                    return einval
                }
                let size = Int(call.r2)
                if size > 0 {
                    let output = try call.mutablePointer(call.r1, size, "str")
                    let count = min(text.count, size - 1)
                    text.withUnsafeBytes { output.copyMemory(from: $0.baseAddress!, byteCount: count) }
                    output.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
                }
                return UInt64(text.count + 1)
            },
            // bpf_ringbuf_output(ringbuf, data, size, flags): 0, or -EAGAIN when full.
            Helper(named: "ringbuf_output") { call throws(ExecutionFault) in
                let ring = try call.ringBuffer(call.r1)
                // Only BPF_RB_NO_WAKEUP (1) and BPF_RB_FORCE_WAKEUP (2) are flags.
                guard call.r4 & ~UInt64(3) == 0 else { return einval }
                let size = Int(call.r3)
                return ring.output(try call.pointer(call.r2, size, "data"), length: size)
            },
            // bpf_ringbuf_reserve(ringbuf, size, flags): a pointer to size bytes, or NULL.
            Helper(named: "ringbuf_reserve") { call throws(ExecutionFault) in
                let ring = try call.ringBuffer(call.r1)
                guard call.r3 == 0 else { return 0 }
                return ring.reserve(length: call.r2)
            },
            // bpf_ringbuf_submit(data, flags) and bpf_ringbuf_discard(data, flags).
            Helper(named: "ringbuf_submit") { call throws(ExecutionFault) in
                try call.commitRecord(call.r1, discard: false)
                return 0
            },
            Helper(named: "ringbuf_discard") { call throws(ExecutionFault) in
                try call.commitRecord(call.r1, discard: true)
                return 0
            },
            // bpf_ringbuf_query(ringbuf, flags).
            Helper(named: "ringbuf_query") { call throws(ExecutionFault) in
                try call.ringBuffer(call.r1).query(call.r2)
            },
            // bpf_perf_event_output(ctx, map, flags, data, size).
            Helper(named: "perf_event_output") { call throws(ExecutionFault) in
                guard let perf = call.machine.map(at: call.r2) as? PerfEventArrayMap else {
                    throw call.fault("R2 is not a perf event array")
                }
                // For packet programs, bits 32-51 of the flags ask for that many bytes of the
                // packet after the data (BPF_F_CTXLEN_MASK); more than the packet has is -EFAULT.
                let contextLength = Int((call.r3 >> 32) & 0xfffff)
                var packet: [UInt8] = []
                if let xdp = call.machine.context as? XDPContext {
                    packet = xdp.packet
                } else if let skb = call.machine.context as? SKBContext {
                    packet = Array(UnsafeRawBufferPointer(start: skb.buffer + skb.data, count: skb.tail - skb.data))
                } else if contextLength > 0 {
                    return einval
                }
                guard call.r3 & ~UInt64(0xffff_ffff | (0xfffff << 32)) == 0 else { return einval }
                guard contextLength <= packet.count else { return efault }
                let data = try call.read(call.r4, count: Int(call.r5)) + packet.prefix(contextLength)
                return perf.output(data, flags: call.r3, cpu: Int(call.machine.world.cpu))
            },
        ]
    }

    // MARK: The current task

    static var task: [Helper] {
        [
            // bpf_get_current_pid_tgid: tgid << 32 | pid.
            Helper(named: "get_current_pid_tgid") { call throws(ExecutionFault) in
                let task = call.machine.world.task
                return UInt64(task.tgid) << 32 | UInt64(task.pid)
            },
            // bpf_get_current_uid_gid: gid << 32 | uid.
            Helper(named: "get_current_uid_gid") { call throws(ExecutionFault) in
                let task = call.machine.world.task
                return UInt64(task.gid) << 32 | UInt64(task.uid)
            },
            // bpf_get_current_comm(buf, size): the name, NUL-terminated and cut to size.
            Helper(named: "get_current_comm") { call throws(ExecutionFault) in
                let size = Int(call.r2)
                guard size > 0 else { return einval }
                let buffer = try call.mutablePointer(call.r1, size, "buf")
                buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
                let name = Array(call.machine.world.task.comm.utf8.prefix(min(15, size - 1)))
                name.withUnsafeBytes {
                    if !name.isEmpty { buffer.copyMemory(from: $0.baseAddress!, byteCount: name.count) }
                }
                return 0
            },
        ]
    }

    // MARK: Memory and strings

    static var memory: [Helper] {
        func probeRead(kernel: Bool) -> Helper.Function {
            { call throws(ExecutionFault) in
                // bpf_probe_read_{kernel,user}(dst, size, unsafe_ptr): 0, or an error with dst zeroed.
                let size = Int(call.r2)
                guard size > 0 else { return 0 }
                let destination = try call.mutablePointer(call.r1, size, "dst")
                guard let source = call.machine.memory.translate(call.r3, size: size, write: false) else {
                    destination.initializeMemory(as: UInt8.self, repeating: 0, count: size)
                    return kernel ? kernelFaultCode(call.r3) : efault
                }
                destination.copyMemory(from: source, byteCount: size)
                return 0
            }
        }
        func probeReadString(kernel: Bool) -> Helper.Function {
            { call throws(ExecutionFault) in
            // bpf_probe_read_{kernel,user}_str(dst, size, unsafe_ptr): the length with the
            // NUL, at most size; -EFAULT (dst zeroed) when the source cannot be read.
            let size = Int(call.r2)
            guard size > 0 else { return 0 }
            let destination = try call.mutablePointer(call.r1, size, "dst")
            var copied = 0
            while copied < size - 1 {
                guard let byte = call.machine.memory.translate(call.r3 &+ UInt64(copied), size: 1, write: false) else {
                    if copied == 0 {
                        destination.initializeMemory(as: UInt8.self, repeating: 0, count: size)
                        return kernel ? kernelFaultCode(call.r3) : efault
                    }
                    break
                }
                let value = byte.load(as: UInt8.self)
                destination.storeBytes(of: value, toByteOffset: copied, as: UInt8.self)
                if value == 0 { return UInt64(copied + 1) }
                copied += 1
            }
            destination.storeBytes(of: 0, toByteOffset: copied, as: UInt8.self)
            return UInt64(copied + 1)
            }
        }
        return [
            // bpf_probe_read on x86-64 reads user memory below TASK_SIZE and kernel memory above.
            Helper(named: "probe_read", probeRead(kernel: false)),
            Helper(named: "probe_read_kernel", probeRead(kernel: true)),
            Helper(named: "probe_read_user", probeRead(kernel: false)),
            Helper(named: "probe_read_str", probeReadString(kernel: false)),
            Helper(named: "probe_read_kernel_str", probeReadString(kernel: true)),
            Helper(named: "probe_read_user_str", probeReadString(kernel: false)),
            // bpf_strncmp(s1, s1_sz, s2): like the kernel's strncmp, -1, 0 or 1.
            Helper(named: "strncmp") { call throws(ExecutionFault) in
                let length = Int(call.r2)
                let first = try call.read(call.r1, count: length)
                for index in 0..<length {
                    let a = first[index]
                    let b = try call.read(call.r3 &+ UInt64(index), count: 1)[0]
                    if a != b { return a < b ? UInt64(bitPattern: -1) : 1 }
                    if a == 0 { break }
                }
                return 0
            },
            // bpf_strtol(buf, buf_len, flags, res) and bpf_strtoul.
            Helper(named: "strtol") { call throws(ExecutionFault) in try call.parseInteger(signed: true) },
            Helper(named: "strtoul") { call throws(ExecutionFault) in try call.parseInteger(signed: false) },
            // bpf_csum_diff(from, from_size, to, to_size, seed), as Linux 6.18 computes it
            // (net/core/filter.c): x86's 32-bit `csum_partial` of the buffers, combined with
            // `csum_sub`, folded to 16 bits by `csum_from32to16`; with both sizes 0, the seed.
            Helper(named: "csum_diff") { call throws(ExecutionFault) in
                let from = try call.read(call.r1, count: Int(call.r2))
                let to = try call.read(call.r3, count: Int(call.r4))
                let seed = UInt32(truncatingIfNeeded: call.r5)
                let result: UInt32
                switch (from.isEmpty, to.isEmpty) {
                case (false, false):
                    result = Checksum.from32to16(Checksum.subtract(Checksum.partial(to, seed: seed), Checksum.partial(from, seed: 0)))
                case (true, false): result = Checksum.from32to16(Checksum.partial(to, seed: seed))
                case (false, true): result = Checksum.from32to16(~Checksum.partial(from, seed: ~seed))
                case (true, true): result = seed
                }
                return UInt64(result)
            },
        ]
    }

    // MARK: Control: callbacks, tail calls, locks

    static var control: [Helper] {
        [
            // bpf_loop(nr_loops, callback_fn, callback_ctx, flags): iterations run.
            Helper(named: "loop") { call throws(ExecutionFault) in
                guard call.r4 == 0 else { return einval }
                guard call.r1 <= 1 << 23 else { return e2big }  // BPF_MAX_LOOPS
                let function = try call.function(call.r2)
                var index: UInt64 = 0
                while index < call.r1 {
                    let result = try call.invoke(function: function, arguments: (index, call.r3, 0, 0, 0))
                    index += 1
                    if result != 0 { return index }
                }
                return index
            },
            // bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags): elements visited.
            Helper(named: "for_each_map_elem") { call throws(ExecutionFault) in
                guard call.r4 == 0 else { return einval }
                let map = try call.map(call.r1)
                let function = try call.function(call.r2)
                guard map.keySize <= Machine.scratchSlotSize else {
                    throw call.fault("keys over 512 bytes are not supported")
                }
                let level = call.machine.callbackNesting
                guard level < call.machine.limits.maxCallDepth else { throw call.fault("callbacks nest too deep") }
                call.machine.callbackNesting += 1
                defer { call.machine.callbackNesting -= 1 }
                let slot = call.machine.scratch + level * Machine.scratchSlotSize
                let keyAddress = AddressSpace.address(
                    region: AddressSpace.Well.scratch.rawValue, offset: UInt32(level * Machine.scratchSlotSize))
                var visited: UInt64 = 0
                let cpu = Int(call.machine.world.cpu)
                for entry in map.entries() {
                    entry.key.withUnsafeBytes { slot.copyMemory(from: $0.baseAddress!, byteCount: entry.key.count) }
                    let value = entry.key.withUnsafeBytes { map.iterationValueAddress($0.baseAddress!, cpu: cpu) }
                    guard value != 0 else { continue }
                    visited += 1
                    let result = try call.invoke(
                        function: function, arguments: (call.r1, keyAddress, value, call.r3, 0))
                    if result != 0 { break }
                }
                return visited
            },
            // bpf_tail_call(ctx, prog_array, index): on success the engine jumps to the
            // program and never returns here; on failure the caller continues (r0 = -ENOENT).
            Helper(named: "tail_call") { call throws(ExecutionFault) in
                guard let array = call.machine.map(at: call.r2) as? ReferenceArrayMap, array.type == .progArray else {
                    throw call.fault("R2 is not a prog array")
                }
                let index = Int(UInt32(truncatingIfNeeded: call.r3))
                guard let program = array.reference(at: index), Int(program) < call.machine.programs.count else {
                    return enoent
                }
                guard call.machine.tailCallCount < Machine.maxTailCalls else { return enoent }
                call.machine.tailCallCount += 1
                call.machine.pendingTailCall = Int(program)
                return 0
            },
            // bpf_spin_lock / bpf_spin_unlock on a `struct bpf_spin_lock` in a map value. One
            // emulated CPU runs at a time, so taking a held lock can only be a deadlock.
            Helper(named: "spin_lock") { call throws(ExecutionFault) in
                let lock = try call.mutablePointer(call.r1, 4, "lock")
                guard lock.load(as: UInt32.self) == 0 else { throw call.fault("the lock is already held (deadlock)") }
                lock.storeBytes(of: 1, as: UInt32.self)
                return 0
            },
            Helper(named: "spin_unlock") { call throws(ExecutionFault) in
                let lock = try call.mutablePointer(call.r1, 4, "lock")
                guard lock.load(as: UInt32.self) != 0 else { throw call.fault("the lock is not held") }
                lock.storeBytes(of: 0, as: UInt32.self)
                return 0
            },
        ]
    }

    // MARK: XDP

    static var xdp: [Helper] {
        [
            // bpf_xdp_adjust_head(ctx, delta).
            Helper(named: "xdp_adjust_head") { call throws(ExecutionFault) in
                UInt64(bitPattern: try call.xdp().adjustHead(Int32(truncatingIfNeeded: call.r2), machine: call.machine))
            },
            // bpf_xdp_adjust_tail(ctx, delta).
            Helper(named: "xdp_adjust_tail") { call throws(ExecutionFault) in
                UInt64(bitPattern: try call.xdp().adjustTail(Int32(truncatingIfNeeded: call.r2), machine: call.machine))
            },
            // bpf_xdp_adjust_meta(ctx, delta).
            Helper(named: "xdp_adjust_meta") { call throws(ExecutionFault) in
                UInt64(bitPattern: try call.xdp().adjustMeta(Int32(truncatingIfNeeded: call.r2), machine: call.machine))
            },
            // bpf_redirect(ifindex, flags): for tc, TC_ACT_REDIRECT (see SKBHelpers); for XDP,
            // XDP_REDIRECT, or XDP_ABORTED with flags.
            Helper(named: "redirect") { call throws(ExecutionFault) in
                if let skb = call.machine.context as? SKBContext {
                    guard skb.kind == .tc else {
                        throw call.fault(
                            "a \(skb.kind.name) program may not call bpf_redirect (the kernel's verifier refuses it)")
                    }
                    return SKBHelpers.tcRedirect(&call)
                }
                guard call.r2 == 0 else { return UInt64(XDPAction.aborted.rawValue) }
                call.machine.redirect = RedirectTarget(kind: .interface, index: UInt32(truncatingIfNeeded: call.r1))
                return UInt64(XDPAction.redirect.rawValue)
            },
            // bpf_redirect_map(map, key, flags): XDP_REDIRECT when the entry exists, else the
            // action in the low two bits of flags (net/core/filter.c __bpf_xdp_redirect_map).
            Helper(named: "redirect_map") { call throws(ExecutionFault) in
                let map = try call.map(call.r1)
                let key = UInt32(truncatingIfNeeded: call.r2)
                let flags = call.r3
                let fallback = flags & 0x3
                // BPF_F_BROADCAST (1 << 3) | BPF_F_EXCLUDE_INGRESS (1 << 4) and the action bits.
                guard flags & ~UInt64(0x3 | 0x8 | 0x10) == 0 else { return UInt64(XDPAction.aborted.rawValue) }
                // BPF_F_BROADCAST sends to every entry of a devmap, whatever the key.
                if flags & 0x8 != 0 && (map.type == .devmap || map.type == .devmapHash) {
                    call.machine.redirect = RedirectTarget(kind: .broadcast, index: 0, map: map.name, key: nil, flags: flags)
                    return UInt64(XDPAction.redirect.rawValue)
                }
                let target: RedirectTarget?
                switch map {
                case let array as ReferenceArrayMap where [.devmap, .cpumap, .xskmap].contains(map.type):
                    let kind: RedirectTarget.Kind =
                        map.type == .cpumap ? .cpu : map.type == .xskmap ? .socket : .interface
                    let index =
                        map.type == .devmap
                        ? array.reference(at: Int(key)) : (array.value(at: Int(key)) != nil ? key : nil)
                    target = index.map { RedirectTarget(kind: kind, index: $0, map: map.name, key: key, flags: flags) }
                case let hash as HashMap where map.type == .devmapHash:
                    let value = try? hash.lookup(key: littleEndianBytes(key))
                    target = value.map {
                        RedirectTarget(
                            kind: .interface,
                            index: UInt32($0[0]) | UInt32($0[1]) << 8 | UInt32($0[2]) << 16 | UInt32($0[3]) << 24,
                            map: map.name, key: key, flags: flags)
                    }
                default:
                    throw call.fault("map '\(map.name)' (\(map.type.kernelName)) is not a redirect map")
                }
                guard let target else { return fallback }
                call.machine.redirect = target
                return UInt64(XDPAction.redirect.rawValue)
            },
        ]
    }
}

extension Helper {
    /// A helper by its kernel name (without `bpf_`); the id comes from `HelperNames`.
    public init(named name: String, _ function: @escaping Function) {
        guard let id = HelperNames.id(of: name) else { preconditionFailure("no kernel helper named \(name)") }
        self.init(id: id, function)
    }
}


/// Internet checksum arithmetic as the kernel does it on x86-64.
public enum Checksum {
    /// `csum_partial`: the buffer as little-endian 64-bit words (the tail zero-padded)
    /// added with end-around carry to the seed, then folded to 32 bits with carry
    /// (arch/x86/lib/csum-partial_64.c).
    public static func partial(_ bytes: [UInt8], seed: UInt32) -> UInt32 {
        var sum = UInt64(seed)
        func add(_ value: UInt64) {
            let (result, overflow) = sum.addingReportingOverflow(value)
            sum = result &+ (overflow ? 1 : 0)
        }
        var index = 0
        while index + 8 <= bytes.count {
            var word: UInt64 = 0
            for k in 0..<8 { word |= UInt64(bytes[index + k]) << (8 * k) }
            add(word)
            index += 8
        }
        if index < bytes.count {
            var word: UInt64 = 0
            for k in 0..<(bytes.count - index) { word |= UInt64(bytes[index + k]) << (8 * k) }
            add(word)
        }
        return add32(UInt32(truncatingIfNeeded: sum >> 32), UInt32(truncatingIfNeeded: sum))
    }

    /// 32-bit addition with end-around carry (`csum_add`).
    public static func add32(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let (result, overflow) = a.addingReportingOverflow(b)
        return result &+ (overflow ? 1 : 0)
    }

    /// `csum_sub(a, b)`: a plus the complement of b.
    public static func subtract(_ a: UInt32, _ b: UInt32) -> UInt32 { add32(a, ~b) }

    /// `csum_from32to16`: the 32-bit sum folded to 16 bits.
    public static func from32to16(_ sum: UInt32) -> UInt32 {
        let folded = sum &+ ((sum >> 16) | (sum << 16))
        return folded >> 16
    }

    /// `csum_fold`: the 16-bit complement of the folded sum.
    public static func fold(_ sum: UInt32) -> UInt16 { ~UInt16(truncatingIfNeeded: from32to16(sum)) }
}

// MARK: - Argument access for helpers

extension HelperCall {
    /// The map a register points to, or a fault naming the register.
    func map(_ value: UInt64, register: String = "R1") throws(ExecutionFault) -> BPFMap {
        guard let map = machine.map(at: value) else { throw fault("\(register) is not a map pointer") }
        return map
    }

    func ringBuffer(_ value: UInt64) throws(ExecutionFault) -> RingBufferMap {
        guard let ring = machine.map(at: value) as? RingBufferMap else { throw fault("R1 is not a ring buffer") }
        return ring
    }

    func pointer(_ address: UInt64, _ size: Int, _ what: String) throws(ExecutionFault) -> UnsafeRawPointer {
        UnsafeRawPointer(try mutablePointer(address, size, what, write: false))
    }

    func mutablePointer(_ address: UInt64, _ size: Int, _ what: String, write: Bool = true) throws(ExecutionFault)
        -> UnsafeMutableRawPointer
    {
        guard size > 0 else { return UnsafeMutableRawPointer(bitPattern: 1)! }
        if let host = machine.memory.translate(address, size: size, write: write) { return host }
        let place = machine.memory.describe(address, size: size)
        throw fault(
            "\(what) (\(size) bytes at 0x\(String(address, radix: 16))) is not \(write ? "writable" : "readable") memory: \(place)"
        )
    }

    /// The instruction index a function pointer (`lddw func`) names.
    func function(_ value: UInt64) throws(ExecutionFault) -> Int {
        guard value >> 32 == UInt64(AddressSpace.Well.code.rawValue) else {
            throw fault("0x\(String(value, radix: 16)) is not a function address")
        }
        return Int(value & 0xffff_ffff)
    }

    /// A format string of `size` bytes that must contain a NUL; nil if it does not.
    func formatString(_ address: UInt64, size: UInt64) throws(ExecutionFault) -> [UInt8]? {
        let bytes = try read(address, count: Int(size))
        guard let end = bytes.firstIndex(of: 0) else { return nil }
        return Array(bytes[..<end])
    }

    /// A NUL-terminated string at `address`, of at most 4096 bytes.
    func cString(_ address: UInt64) throws(ExecutionFault) -> [UInt8]? {
        var bytes: [UInt8] = []
        while bytes.count < 4096 {
            guard let host = machine.memory.translate(address &+ UInt64(bytes.count), size: 1, write: false) else {
                return nil
            }
            let byte = host.load(as: UInt8.self)
            if byte == 0 { return bytes }
            bytes.append(byte)
        }
        return nil
    }

    /// The u64 argument array of `bpf_snprintf`/`bpf_trace_vprintk`: a multiple of 8 bytes,
    /// at most 12 arguments.
    func argumentArray(_ address: UInt64, length: UInt64) throws(ExecutionFault) -> [UInt64]? {
        guard length % 8 == 0, length <= 12 * 8 else { return nil }
        let bytes = try read(address, count: Int(length))
        return stride(from: 0, to: bytes.count, by: 8).map { start in
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * $1) }
        }
    }

    func format(_ format: [UInt8], arguments: [UInt64], maxArguments: Int) -> Result<[UInt8], BPFPrintf.Failure> {
        BPFPrintf.format(
            format, arguments: arguments, maxArguments: maxArguments,
            readString: { address in try? cString(address) },
            readBytes: { address, count in try? read(address, count: count) })
    }

    /// Formats and records a trace-pipe line; returns the bytes written or -EINVAL.
    func printk(_ format: [UInt8], arguments: [UInt64], maxArguments: Int) -> UInt64 {
        guard case .success(let text) = self.format(format, arguments: arguments, maxArguments: maxArguments) else {
            return StandardHelpers.einval
        }
        var line = String(decoding: text, as: UTF8.self)
        if line.hasSuffix("\n") { line.removeLast() }
        machine.recordPrintk(line)
        return UInt64(text.count)
    }

    func commitRecord(_ address: UInt64, discard: Bool) throws(ExecutionFault) {
        for case let ring as RingBufferMap in machine.maps where ring.commit(address, discard: discard) { return }
        throw fault("0x\(String(address, radix: 16)) is not a reserved ring buffer record")
    }

    func xdp() throws(ExecutionFault) -> XDPContext {
        guard let context = machine.context as? XDPContext else { throw fault("only XDP programs have an xdp_md") }
        return context
    }

    /// `bpf_strtol` / `bpf_strtoul` (kernel/bpf/helpers.c `__bpf_strtoull`): the number of
    /// characters consumed, -EINVAL when there is no number, -ERANGE on overflow.
    func parseInteger(signed: Bool) throws(ExecutionFault) -> UInt64 {
        let length = Int(r2)
        var base = Int(r3)
        let result = try mutablePointer(r4, 8, "res")
        // The kernel sets *res to 0 whenever it fails.
        func failure(_ code: UInt64) -> UInt64 {
            result.storeBytes(of: 0, as: UInt64.self)
            return code
        }
        guard length > 0, base & ~0x1f == 0, [0, 8, 10, 16].contains(base) else { return failure(StandardHelpers.einval) }
        let buffer = try read(r1, count: length)
        var index = 0
        while index < buffer.count, Ctype.isSpace(buffer[index]) { index += 1 }
        let negative = index < buffer.count && buffer[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < buffer.count else { return failure(StandardHelpers.einval) }
        // The kernel parses at most 63 characters after the sign.
        var text = Array(buffer[index..<min(buffer.count, index + 63)])
        if let nul = text.firstIndex(of: 0) { text = Array(text[..<nul]) }
        var start = 0
        func lower(_ c: UInt8) -> UInt8 { c | 0x20 }
        func isHex(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (lower(c) >= 97 && lower(c) <= 102) }
        if base == 0 {
            if text.first == UInt8(ascii: "0") {
                base = text.count > 2 && lower(text[1]) == UInt8(ascii: "x") && isHex(text[2]) ? 16 : 8
            } else {
                base = 10
            }
        }
        if base == 16, text.count >= 2, text[0] == UInt8(ascii: "0"), lower(text[1]) == UInt8(ascii: "x") { start = 2 }
        var value: UInt64 = 0
        var overflow = false
        var digits = 0
        for c in text[start...] {
            let digit: Int
            if c >= 48 && c <= 57 {
                digit = Int(c - 48)
            } else if lower(c) >= 97 && lower(c) <= 102 {
                digit = Int(lower(c) - 87)
            } else {
                break
            }
            guard digit < base else { break }
            let (product, o1) = value.multipliedReportingOverflow(by: UInt64(base))
            let (sum, o2) = product.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { overflow = true }
            value = sum
            digits += 1
        }
        if overflow { return failure(StandardHelpers.erange) }
        guard digits > 0 else { return failure(StandardHelpers.einval) }
        let consumed = UInt64(index + start + digits)
        if signed {
            if negative {
                guard Int64(bitPattern: 0 &- value) <= 0 else { return failure(StandardHelpers.erange) }
                result.storeBytes(of: 0 &- value, as: UInt64.self)
            } else {
                guard Int64(bitPattern: value) >= 0 else { return failure(StandardHelpers.erange) }
                result.storeBytes(of: value, as: UInt64.self)
            }
        } else {
            guard !negative else { return failure(StandardHelpers.einval) }
            result.storeBytes(of: value, as: UInt64.self)
        }
        return consumed
    }
}
