import BPFCore
import BPFRuntime

/// Loads and stores (`check_mem_access`): by the base register's type, the bounds the
/// access must stay in and the value a load produces.
extension Analysis {
    func checkMemoryAccess(
        _ state: inout VerifierState, register: Int, offset insnOffset: Int, size: Int, write: Bool,
        valueRegister: Int, signExtend: Bool = false, storedImmediate: Int64? = nil, at index: Int
    ) throws(VerifierError) {
        let reg = state.regs[register]
        let offset = insnOffset + Int(reg.offset)
        var loaded: RegisterState? = nil
        if reg.maybeNull || reg.type == .scalar || reg.type == .notInit || reg.type == .packetEnd
            || reg.type == .mapPointer || reg.type == .function || reg.type == .socketCommon
        {
            if reg.type == .notInit { throw Rejections.notReadable(register, at: index) }
            throw Rejections.invalidMemoryAccess(register, reg.typeName, at: index)
        }
        switch reg.type {
        case .context:
            if reg.offset != 0 { throw Rejections.modifiedContext(register, offset: reg.offset, at: index) }
            if !reg.varOff.isConstant || reg.varOff.value != 0 {
                throw Rejections.variableContext(varOff: reg.varOff, offset: insnOffset, size: size, at: index)
            }
            guard let access = ContextRules.access(type, offset: insnOffset, size: size, write: write, options: options)
            else {
                throw Rejections.contextAccess(offset: insnOffset, size: size, at: index)
            }
            if !write {
                if let pointer = access {
                    var value = RegisterState.pointer(pointer)
                    if pointer == .socketCommon { value.maybeNull = true; value.id = nextID() }
                    loaded = value
                } else {
                    var value = RegisterState.unknownScalar()
                    value.truncate(toBytes: size)
                    loaded = value
                }
            }
        case .stack:
            try checkStackAccess(&state, reg, register: register, offset: offset, size: size, write: write,
                valueRegister: valueRegister, storedImmediate: storedImmediate, kind: write ? " write to" : " read from",
                at: index, loaded: &loaded)
        case .packet, .packetMeta:
            if write && !ContextRules.canWritePacket(type) { throw Rejections.cannotWritePacket(at: index) }
            try checkPacketAccess(reg, register: register, offset: offset, size: size, at: index)
            if !write { loaded = .unknownScalar() }
        case .mapValue:
            let map = maps[reg.mapIndex]
            if write && map.flags & MapFlags.rdonlyProg != 0 {
                throw Rejections.mapWriteForbidden(valueSize: map.valueSize, offset: Int64(offset), size: size, at: index)
            }
            try checkRegionAccess(reg, register: register, offset: offset, size: size, limit: map.valueSize, at: index) {
                (value, which) in
                Rejections.mapValueAccess(valueSize: map.valueSize, offset: value, size: size, register: register, which: which, at: index)
            }
            if let lock = map.spinLockOffset {
                let low = Int64(offset) + reg.smin
                let high = Int64(offset) + Int64(bitPattern: reg.umax) + Int64(size)
                if low < Int64(lock + 4) && high > Int64(lock) { throw Rejections.spinLockDirectAccess(at: index) }
            }
            if !write {
                var value = RegisterState.unknownScalar()
                if let bytes = map.frozenValue, reg.varOff.isConstant {
                    let start = offset + Int(Int64(bitPattern: reg.varOff.value))
                    if start >= 0 && start + size <= bytes.count {
                        var number: UInt64 = 0
                        for i in 0..<size { number |= UInt64(bytes[start + i]) << UInt64(8 * i) }
                        value = .constant(number)
                    }
                }
                loaded = value
            }
        case .mapKey:
            if write { throw Rejections.invalidMemoryAccess(register, reg.typeName, at: index) }
            let map = maps[reg.mapIndex]
            try checkRegionAccess(reg, register: register, offset: offset, size: size, limit: map.keySize, at: index) {
                (value, which) in
                Rejections.make("map_key_bounds", "invalid access to map key, key_size=\(map.keySize) off=\(value) size=\(size)", at: index, "The access reaches outside the map key.")
            }
            loaded = .unknownScalar()
        case .memory, .ringbufMemory:
            if write && reg.readOnly { throw Rejections.invalidMemoryAccess(register, reg.typeName, at: index) }
            let limit = Int(reg.aux)
            try checkRegionAccess(reg, register: register, offset: offset, size: size, limit: limit, at: index) {
                (value, which) in
                Rejections.memoryAccess(memSize: limit, offset: value, size: size, register: register, which: which, at: index)
            }
            if !write { loaded = .unknownScalar() }
        default:
            throw Rejections.invalidMemoryAccess(register, reg.typeName, at: index)
        }
        if write, valueRegister >= 0, reg.type != .stack {
            // Privileged programs may store pointers anywhere they may store numbers.
            _ = state.regs[valueRegister]
        }
        if var value = loaded, valueRegister >= 0 {
            if value.type == .scalar && size < 8 && !(reg.type == .stack && value.isConstant && size == 8) {
                if signExtend { value.signExtend(fromBytes: size) } else if reg.type != .context { value.truncate(toBytes: size) }
            }
            state.regs[valueRegister] = value
        }
    }

    /// `check_mem_region_access`: a pointer with a variable offset into an object of
    /// `limit` bytes.
    func checkRegionAccess(
        _ reg: RegisterState, register: Int, offset: Int, size: Int, limit: Int, zeroSizeAllowed: Bool = false,
        at index: Int, _ failure: (Int64, String) -> VerifierError
    ) throws(VerifierError) {
        let off = Int64(offset)
        if reg.smin < 0
            && (reg.smin == .min || off + reg.smin != Int64(Int32(truncatingIfNeeded: off + reg.smin)) || reg.smin + off < 0)
        {
            throw Rejections.minNegative(register, at: index)
        }
        let sizeOK = size > 0 || (size == 0 && zeroSizeAllowed)
        let low = reg.smin + off
        if !(sizeOK && low >= 0 && low + Int64(size) <= Int64(limit)) { throw failure(low, "min") }
        if reg.umax >= UInt64(maxVariableOffset) { throw Rejections.unboundedAccess(register, at: index) }
        let high = Int64(reg.umax) + off
        if !(sizeOK && high >= 0 && high + Int64(size) <= Int64(limit)) { throw failure(high, "max") }
    }

    /// `check_packet_access`.
    func checkPacketAccess(_ reg: RegisterState, register: Int, offset: Int, size: Int, zeroSizeAllowed: Bool = false, at index: Int)
        throws(VerifierError)
    {
        if reg.smin < 0 { throw Rejections.packetMinNegative(register, at: index) }
        let sizeOK = size > 0 || (size == 0 && zeroSizeAllowed)
        if reg.range < 0 || !(sizeOK && offset >= 0 && offset + size <= Int(reg.range)) {
            throw Rejections.packetAccess(
                offset: offset, size: size, register: register, id: reg.id, range: max(reg.range, 0), at: index)
        }
    }

    // MARK: The stack

    /// The frame a stack pointer points into, as an index in `state.frames`.
    func frameIndex(_ state: VerifierState, _ reg: RegisterState) -> Int {
        state.frames.firstIndex { $0.frameNumber == Int(reg.frame) } ?? state.currentFrame
    }

    func checkStackBounds(_ reg: RegisterState, register: Int, offset: Int, size: Int, kind: String, at index: Int)
        throws(VerifierError) -> (Int64, Int64)
    {
        let minOff: Int64
        let maxOff: Int64
        if reg.varOff.isConstant {
            minOff = Int64(bitPattern: reg.varOff.value) + Int64(offset)
            maxOff = minOff + Int64(size)
        } else {
            if reg.smax >= maxVariableOffset || reg.smin <= -maxVariableOffset {
                throw Rejections.make(
                    "stack_bounds", "invalid unbounded variable-offset\(kind) stack R\(register)", at: index,
                    "The offset into the stack has no bound.")
            }
            minOff = reg.smin + Int64(offset)
            maxOff = reg.smax + Int64(offset) + Int64(size)
        }
        if minOff < -512 || minOff >= 0 || maxOff > 0 || size < 0 {
            throw Rejections.stackAccess(
                kind, register: register, offset: Int64(offset), size: size,
                varOff: reg.varOff.isConstant ? nil : reg.varOff, at: index)
        }
        return (minOff, maxOff)
    }

    func checkStackAccess(
        _ state: inout VerifierState, _ reg: RegisterState, register: Int, offset: Int, size: Int, write: Bool,
        valueRegister: Int, storedImmediate: Int64?, kind: String, at index: Int, loaded: inout RegisterState?
    ) throws(VerifierError) {
        // Stack accesses must be aligned to their size (`check_ptr_alignment`, strict for the stack).
        let address = reg.varOff + .constant(UInt64(bitPattern: Int64(offset)))
        if size > 1 && (address.value | address.mask) & UInt64(size - 1) != 0 {
            throw Rejections.misalignedStack(varOff: reg.varOff, regOffset: reg.offset, offset: offset - Int(reg.offset), size: size, at: index)
        }
        let (minOff, maxOff) = try checkStackBounds(reg, register: register, offset: offset, size: size, kind: kind, at: index)
        let frame = frameIndex(state, reg)
        let function = state.frames[frame].function
        stackDepth[function] = max(stackDepth[function], Int(-minOff))
        state.frames[frame].growStack(to: Int(-minOff))
        if !reg.varOff.isConstant {
            // A variable offset: the bytes it may touch become plain data on a write; a
            // read gives an unknown number.
            if write {
                for byteOffset in minOff..<maxOff { setStackByte(&state.frames[frame], Int(byteOffset), .misc) }
            } else {
                loaded = .unknownScalar()
            }
            return
        }
        let off = Int(minOff)
        let slotIndex = (-off - 1) / 8
        if write {
            let valueReg: RegisterState? = valueRegister >= 0 ? state.regs[valueRegister] : nil
            var slot = state.frames[frame].stack[slotIndex]
            if off % 8 == 0, let value = valueReg, value.type == .scalar {
                var spilled = value
                let fits = size == 8 || (value.umax < (UInt64(1) << UInt64(size * 8)))
                if fits && value.id == 0 && !value.varOff.isConstant && valueRegister >= 0 && size == 8 {
                    spilled.id = nextID()
                    state.regs[valueRegister].id = spilled.id
                }
                if !fits { spilled.id = 0 }
                saveSpill(&slot, spilled, size: size)
            } else if off % 8 == 0, valueReg == nil, let immediate = storedImmediate {
                saveSpill(&slot, .constant(UInt64(bitPattern: immediate)), size: size)
            } else if let value = valueReg, value.type != .scalar {
                if size != 8 { throw Rejections.invalidSpillSize(at: index) }
                if frame != state.currentFrame && value.type == .stack {
                    throw Rejections.spillStackPointerToCaller(at: index)
                }
                saveSpill(&slot, value, size: 8)
            } else {
                let isZero = (valueReg.map { $0.isNullConstant } ?? false) || (valueReg == nil && storedImmediate == 0)
                slot.spilled = .notInitialized
                if slot.isSpill || (0..<8).contains(where: { slot[$0] == .spill }) {
                    for byte in 0..<8 where slot[byte] == .spill { slot[byte] = .misc }
                }
                let slotByte = (-off - 1) % 8
                for i in 0..<size { slot[slotByte - i] = isZero ? .zero : .misc }
            }
            state.frames[frame].stack[slotIndex] = slot
            return
        }
        // A read.
        let slot = state.frames[frame].stack[slotIndex]
        let slotByte = (-off - 1) % 8
        if slot.isSpill {
            var spillSize = 1
            var i = 7
            while i > 0 && slot[i - 1] == .spill {
                spillSize += 1
                i -= 1
            }
            if size != 8 || spillSize != 8 {
                if slot.spilled.type != .scalar { throw Rejections.invalidFillSize(at: index) }
                if size <= spillSize && off % 8 == 0 {
                    var value = slot.spilled
                    if size < 8 { value.id = 0 }
                    loaded = value
                } else {
                    var spills = 0
                    var zeros = 0
                    for b in 0..<size {
                        switch slot[slotByte - b] {
                        case .spill: spills += 1
                        case .zero: zeros += 1
                        default: break
                        }
                    }
                    if (spills == size && slot.spilled.isNullConstant) || zeros == size {
                        loaded = .constant(0)
                    } else {
                        loaded = .unknownScalar()
                    }
                }
            } else {
                loaded = slot.spilled
            }
            return
        }
        var allZero = true
        for b in 0..<size {
            let t = slot[slotByte - b]
            if t != .zero { allZero = false }
            if t == .invalid && !options.privileged {
                throw Rejections.invalidStackRead(offset: off, byte: b, size: size, at: index)
            }
        }
        loaded = allZero ? .constant(0) : .unknownScalar()
    }

    func saveSpill(_ slot: inout StackSlot, _ value: RegisterState, size: Int) {
        slot.spilled = value
        for i in stride(from: 8, to: 8 - size, by: -1) { slot[i - 1] = .spill }
        var i = 8 - size
        while i > 0 {
            if slot[i - 1] != .zero && !(slot[i - 1] == .invalid && options.privileged) { slot[i - 1] = .misc }
            if slot[i - 1] == .spill { slot[i - 1] = .misc }
            i -= 1
        }
    }

    func setStackByte(_ frame: inout FrameState, _ offset: Int, _ type: SlotType) {
        let slotIndex = (-offset - 1) / 8
        guard slotIndex >= 0 && slotIndex < frame.stack.count else { return }
        var slot = frame.stack[slotIndex]
        if slot.isSpill || (0..<8).contains(where: { slot[$0] == .spill }) {
            for byte in 0..<8 where slot[byte] == .spill { slot[byte] = .misc }
            slot.spilled = .notInitialized
        }
        slot[(-offset - 1) % 8] = type
        frame.stack[slotIndex] = slot
    }

    /// Helper access to `size` bytes at a pointer (`check_helper_mem_access`).
    func checkHelperMemory(
        _ state: inout VerifierState, register: Int, size: Int, write: Bool, zeroSizeAllowed: Bool, variableSize: Bool = false,
        at index: Int
    ) throws(VerifierError) {
        let reg = state.regs[register]
        switch reg.type {
        case .packet, .packetMeta:
            try checkPacketAccess(reg, register: register, offset: Int(reg.offset), size: size, zeroSizeAllowed: zeroSizeAllowed, at: index)
        case .mapKey:
            if write { throw Rejections.make("helper_argument", "R\(register) cannot write into map_key", at: index, "Map keys are read-only.") }
            let map = maps[reg.mapIndex]
            try checkRegionAccess(reg, register: register, offset: Int(reg.offset), size: size, limit: map.keySize, zeroSizeAllowed: zeroSizeAllowed, at: index) { (value, which) in
                Rejections.make("map_key_bounds", "invalid access to map key, key_size=\(map.keySize) off=\(value) size=\(size)", at: index, "The access reaches outside the map key.")
            }
        case .mapValue:
            let map = maps[reg.mapIndex]
            if write && map.flags & MapFlags.rdonlyProg != 0 {
                throw Rejections.mapWriteForbidden(valueSize: map.valueSize, offset: Int64(reg.offset), size: size, at: index)
            }
            try checkRegionAccess(reg, register: register, offset: Int(reg.offset), size: size, limit: map.valueSize, zeroSizeAllowed: zeroSizeAllowed, at: index) { (value, which) in
                Rejections.mapValueAccess(valueSize: map.valueSize, offset: value, size: size, register: register, which: which, at: index)
            }
        case .memory, .ringbufMemory:
            if write && reg.readOnly {
                throw Rejections.make("helper_argument", "R\(register) cannot write into \(reg.typeName)", at: index, "This memory is read-only.")
            }
            let limit = Int(reg.aux)
            try checkRegionAccess(reg, register: register, offset: Int(reg.offset), size: size, limit: limit, zeroSizeAllowed: zeroSizeAllowed, at: index) { (value, which) in
                Rejections.memoryAccess(memSize: limit, offset: value, size: size, register: register, which: which, at: index)
            }
        case .stack:
            if size == 0 && zeroSizeAllowed { return }
            if size == 0 {
                throw Rejections.make("helper_size", "invalid zero-sized read", at: index, "The helper would access 0 bytes (a map with a 0-byte key?).")
            }
            let (minOff, maxOff) = try checkStackBounds(
                reg, register: register, offset: Int(reg.offset), size: size, kind: write ? " write to" : " read from", at: index)
            let frame = frameIndex(state, reg)
            let function = state.frames[frame].function
            stackDepth[function] = max(stackDepth[function], Int(-minOff))
            state.frames[frame].growStack(to: Int(-minOff))
            if write {
                for offset in minOff..<maxOff { setStackByte(&state.frames[frame], Int(offset), .misc) }
            }
        default:
            if zeroSizeAllowed && size == 0 && reg.isNullConstant { return }
            throw Rejections.make(
                "helper_argument", "R\(register) type=\(reg.typeName) expected=fp", at: index,
                "The helper needs a pointer to memory here.")
        }
    }

    // MARK: Atomics

    func checkAtomic(_ state: inout VerifierState, _ insn: DecodedInstruction, _ spec: InstructionSpec, at index: Int)
        throws(VerifierError)
    {
        let dst = Int(insn.dst)
        let src = Int(insn.src)
        try checkRegisterReadable(state, src, at: index)
        try checkRegisterReadable(state, dst, at: index)
        let isCmpxchg = insn.operation == .atomicCmpxchg32 || insn.operation == .atomicCmpxchg64
        if isCmpxchg { try checkRegisterReadable(state, 0, at: index) }
        let base = state.regs[dst]
        switch base.type {
        case .context, .packet, .packetMeta, .socketCommon:
            throw Rejections.atomicNotAllowed(dst, base.typeName, at: index)
        default:
            break
        }
        let fetches = isCmpxchg || spec.mnemonic.contains("fetch") || spec.mnemonic.contains("xchg")
        var loaded: RegisterState? = nil
        let value = state.regs[src]
        if value.type != .scalar && !options.privileged {
            throw Rejections.make("atomic", "R\(src) leaks addr into mem", at: index, "Atomic operations take numbers.")
        }
        // Read, then write, the location.
        try checkMemoryAccess(&state, register: dst, offset: Int(insn.offset), size: spec.accessSize, write: false, valueRegister: -1, at: index)
        var scratch = state
        try checkMemoryAccess(&scratch, register: dst, offset: Int(insn.offset), size: spec.accessSize, write: true, valueRegister: -1, at: index)
        if base.type == .stack {
            // The location now holds some number.
            let frame = frameIndex(state, base)
            let off = Int(insn.offset) + Int(base.offset) + Int(Int64(bitPattern: base.varOff.value))
            for b in 0..<spec.accessSize { setStackByte(&state.frames[frame], off + b, .misc) }
        }
        loaded = .unknownScalar()
        if spec.accessSize == 4 { loaded?.truncate(toBytes: 4) }
        if fetches, let result = loaded {
            state.regs[isCmpxchg ? 0 : src] = result
        }
    }

    // MARK: lddw

    func checkLoadImmediate(_ state: inout VerifierState, _ insn: DecodedInstruction, at index: Int) throws(VerifierError) {
        let dst = Int(insn.dst)
        try checkWritableRegister(dst, at: index)
        let low = Int(Int32(truncatingIfNeeded: insn.immediate))
        let high = Int(Int32(truncatingIfNeeded: insn.immediate >> 32))
        switch insn.pseudo {
        case 0:
            state.regs[dst] = .constant(UInt64(bitPattern: insn.immediate))
        case OpcodeField.pseudoMapFD, OpcodeField.pseudoMapIndex:
            guard low >= 0 && low < maps.count else {
                throw Rejections.make("map", "fd \(low) is not pointing to valid bpf_map", at: index, "The instruction names a map the program does not have.")
            }
            state.regs[dst] = .pointer(.mapPointer, aux: Int32(low))
        case OpcodeField.pseudoMapValue, OpcodeField.pseudoMapIndexValue:
            guard low >= 0 && low < maps.count else {
                throw Rejections.make("map", "fd \(low) is not pointing to valid bpf_map", at: index, "The instruction names a map the program does not have.")
            }
            let map = maps[low]
            if map.type != .array {
                throw Rejections.make("map", "no direct value access support for this map type", at: index, "Only array maps (global data) have direct value addresses.")
            }
            if map.maxEntries != 1 || high < 0 || high >= map.valueSize {
                throw Rejections.make("map_value_bounds", "invalid access to map value pointer, value_size=\(map.valueSize) off=\(UInt32(bitPattern: Int32(high)))", at: index, "The address is past the end of the map value, or the array has more than one element.")
            }
            var reg = RegisterState.pointer(.mapValue, aux: Int32(low))
            reg.offset = Int32(high)
            state.regs[dst] = reg
        case OpcodeField.pseudoFunc:
            if !options.hasFunctionInfo { throw Rejections.missingFuncInfo(at: index) }
            let target = program.pseudoLoads.first { $0.index == index }?.functionTarget ?? 0
            state.regs[dst] = .pointer(.function, aux: Int32(target))
        default:
            throw Rejections.unsupported("lddw of a kernel object (BTF id) is not supported", at: index)
        }
    }

    // MARK: Legacy packet loads

    func checkLegacyLoad(_ state: inout VerifierState, _ insn: DecodedInstruction, at index: Int) throws(VerifierError) {
        switch type {
        case .socketFilter, .schedCls, .schedAct: break
        default: throw Rejections.ldAbsNotAllowed(at: index)
        }
        if flow.functions.count > 1 {
            throw Rejections.make("ld_abs", "BPF_LD_[ABS|IND] cannot be mixed with bpf-to-bpf calls", at: index, "Legacy packet loads cannot be used in programs with functions.")
        }
        try checkRegisterReadable(state, 6, at: index)
        if insn.operation == .ldindb || insn.operation == .ldindh || insn.operation == .ldindw {
            try checkRegisterReadable(state, Int(insn.src), at: index)
        }
        if state.heldLock != nil { throw Rejections.lockHeld(prefix: "BPF_LD_[ABS|IND]", at: index) }
        let leaks = state.references.filter { $0.kind == .pointer }
        if !leaks.isEmpty { throw Rejections.referenceLeak(leaks, prefix: "BPF_LD_[ABS|IND]", at: index) }
        if state.regs[6].type != .context { throw Rejections.ldAbsContext(at: index) }
        for r in 1...5 { state.regs[r] = .notInitialized }
        var value = RegisterState.unknownScalar()
        let size = insn.operation == .ldabsb || insn.operation == .ldindb ? 1 : insn.operation == .ldabsh || insn.operation == .ldindh ? 2 : 4
        value.truncate(toBytes: size)
        state.regs[0] = value
    }
}

