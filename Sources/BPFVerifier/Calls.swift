import BPFCore
import BPFRuntime

/// Helper calls (`check_helper_call`) and bpf-to-bpf calls (`check_func_call`).
extension Analysis {
    struct CallMeta {
        var map: Int?
        var memoryRegister: Int?
        var memoryWrite = false
        var memoryNullable = false
        var releaseRegister: Int?
        var referenceID: UInt32 = 0
        var allocationSize: Int32 = 0
        var callback: Int?
        var callbackContext: RegisterState?
        var constantKey: Int64?
        var sizeMax: UInt64 = 0
    }

    static let callerSaved = 0...5

    /// Returns the callback's entry when the helper calls one now.
    func checkHelperCall(_ state: inout VerifierState, _ insn: DecodedInstruction, at index: Int) throws(VerifierError) -> Int? {
        let id = Int32(truncatingIfNeeded: insn.immediate)
        let name = HelperNames.name(of: id).map { $0.hasPrefix("bpf_") ? $0 : "bpf_" + $0 } ?? "unknown"
        guard HelperNames.name(of: id) != nil, id > 0 else { throw Rejections.invalidFunction(name, id, at: index) }
        guard HelperPrototype.allowed(id, for: type) else {
            throw Rejections.helperNotAllowed(name, id, type.kernelName, at: index)
        }
        if state.heldLock != nil && id != 94 { throw Rejections.callWhileLocked(at: index) }
        guard let proto = HelperPrototype.find(id) else {
            // A helper bpfsim has no prototype for: taken to return a number.
            for r in Self.callerSaved { state.regs[r] = .notInitialized }
            state.regs[0] = .unknownScalar()
            return nil
        }
        if proto.gplOnly && !options.gplCompatible { throw Rejections.gplOnly(at: index) }
        var meta = CallMeta()
        for (position, argument) in proto.arguments.enumerated() {
            try checkArgument(&state, argument, register: position + 1, meta: &meta, helper: id, name: name, at: index)
        }
        if let map = meta.map, !HelperPrototype.compatible(id, maps[map].type) {
            throw Rejections.mapTypeMismatch(maps[map].type, name, id, at: index)
        }
        if let release = meta.releaseRegister {
            let refID = state.regs[release].refObjID
            if refID != 0 {
                guard state.references.contains(where: { $0.kind == .pointer && $0.id == refID }) else {
                    throw Rejections.make("reference", "func \(name)#\(id) reference has not been acquired before", at: index, "The record was already submitted or discarded.")
                }
                state.references.removeAll { $0.kind == .pointer && $0.id == refID }
                invalidateReference(&state, refID)
            }
        }
        switch id {
        case 12:
            let leaks = state.references.filter { $0.kind == .pointer }
            if !leaks.isEmpty { throw Rejections.referenceLeak(leaks, prefix: "tail_call", at: index) }
            if state.heldLock != nil { throw Rejections.lockHeld(prefix: "tail_call", at: index) }
        case 93, 94:
            try checkSpinLock(&state, lock: id == 93, at: index)
        default:
            break
        }
        var callbackState: VerifierState? = nil
        if id == 181 { markPrecise(&state, registers: 1 << 1) }
        if let callback = meta.callback {
            if !options.hasFunctionInfo { throw Rejections.missingFuncInfo(at: index) }
            // The callback runs in a new frame; the caller goes on after the call too (as
            // if the callback had not run), pushed to be explored later.
            if state.frames.count >= 8 { throw Rejections.callStackTooDeep(state.frames.count + 1, at: index) }
            var entered = state
            let caller = entered.regs
            var frame = FrameState(function: flow.functionOf[callback], callsite: index, frameNumber: entered.frames.count)
            frame.isCallback = true
            if id == 181 {
                var loopIndex = RegisterState.unknownScalar()
                loopIndex.truncate(toBytes: 4)
                frame.regs[1] = loopIndex
                frame.regs[2] = caller[3]
            } else {
                frame.regs[1] = caller[1]
                var key = RegisterState.pointer(.mapKey, aux: Int32(meta.map ?? 0))
                key.aux = Int32(meta.map ?? 0)
                frame.regs[2] = key
                frame.regs[3] = .pointer(.mapValue, aux: Int32(meta.map ?? 0))
                frame.regs[4] = caller[3]
            }
            calls.insert([flow.functionOf[index], flow.functionOf[callback]])
            entered.frames.append(frame)
            callbackState = entered
        }
        for r in Self.callerSaved { state.regs[r] = .notInitialized }
        var r0 = RegisterState.unknownScalar()
        switch proto.returns {
        case .integer:
            switch id {
            case 45, 114, 115:
                r0.smax = Int64(meta.sizeMax)
                r0.s32max = Int32(truncatingIfNeeded: meta.sizeMax)
                r0.smin = -4095
                r0.s32min = -4095
                r0.syncBounds()
            case 8:
                let last = UInt64(max(options.cpuCount - 1, 0))
                r0.umin = 0
                r0.umax = last
                r0.smin = 0
                r0.smax = Int64(last)
                r0.u32min = 0
                r0.u32max = UInt32(last)
                r0.s32min = 0
                r0.s32max = Int32(last)
                r0.syncBounds()
            default:
                break
            }
        case .void:
            r0 = .notInitialized
        case .mapValueOrNull:
            guard let map = meta.map else { throw Rejections.unsupported("map helper without a map", at: index) }
            r0 = .pointer(.mapValue, aux: Int32(map))
            let info = maps[map]
            let elides = info.type == .array || info.type == .percpuArray
            if id == 1 && elides, let key = meta.constantKey, key >= 0 && key < Int64(info.maxEntries) {
                if info.spinLockOffset != nil { r0.id = nextID() }
            } else {
                r0.maybeNull = true
                r0.id = nextID()
            }
        case .ringbufRecordOrNull:
            r0 = .pointer(.ringbufMemory, aux: meta.allocationSize)
            r0.maybeNull = true
            r0.id = nextID()
            let reference = nextID()
            r0.id = reference
            r0.refObjID = reference
            state.references.append(Reference(kind: .pointer, id: reference, instruction: index))
        }
        state.regs[0] = r0
        if proto.changesPacket { clearPacketPointers(&state) }
        if var entered = callbackState {
            // Explore the path after the call later; go into the callback now.
            entered.path = state.path
            var after = state
            after.path = state.path
            try pushBranch(after, at: index + 1, from: index, taken: false)
            state = entered
            return meta.callback
        }
        return nil
    }

    func invalidateReference(_ state: inout VerifierState, _ refID: UInt32) {
        for f in 0..<state.frames.count {
            for r in 0..<11 where state.frames[f].regs[r].refObjID == refID {
                state.frames[f].regs[r] = options.privileged ? .unknownScalar() : .notInitialized
            }
            for s in 0..<state.frames[f].stack.count
            where state.frames[f].stack[s].isSpill && state.frames[f].stack[s].spilled.refObjID == refID {
                state.frames[f].stack[s].spilled = .unknownScalar()
            }
        }
    }

    func clearPacketPointers(_ state: inout VerifierState) {
        for f in 0..<state.frames.count {
            for r in 0..<11 where state.frames[f].regs[r].type.isPacket || state.frames[f].regs[r].type == .packetEnd {
                state.frames[f].regs[r] = .unknownScalar()
            }
            for s in 0..<state.frames[f].stack.count where state.frames[f].stack[s].isSpill {
                let t = state.frames[f].stack[s].spilled.type
                if t.isPacket || t == .packetEnd { state.frames[f].stack[s].spilled = .unknownScalar() }
            }
        }
    }

    func checkArgument(
        _ state: inout VerifierState, _ argument: HelperPrototype.Argument, register: Int, meta: inout CallMeta,
        helper: Int32, name: String, at index: Int
    ) throws(VerifierError) {
        try checkRegisterReadable(state, register, at: index)
        let reg = state.regs[register]
        func expect(_ names: [String]) throws(VerifierError) -> Never {
            throw Rejections.argumentType(register, reg.typeName, expected: names, at: index)
        }
        // The kernel's mem_types: ARG_PTR_TO_MEM, ARG_PTR_TO_MAP_KEY and ARG_PTR_TO_MAP_VALUE
        // all take them (pinned by Tests/verifier/programs/map-key-ctx.s and ringbuf-as-map-*.s).
        let memoryTypes = ["fp", "pkt", "pkt_meta", "map_key", "map_value", "mem", "ringbuf_mem", "buf", "trusted_ptr_"]
        func isMemory(_ r: RegisterState) -> Bool {
            !r.maybeNull && [.stack, .packet, .packetMeta, .mapKey, .mapValue, .memory, .ringbufMemory].contains(r.type)
        }
        switch argument {
        case .anything:
            return
        case .mapPointer:
            guard reg.type == .mapPointer && !reg.maybeNull else { try expect(["map_ptr"]) }
            meta.map = reg.mapIndex
        case .mapKey:
            guard isMemory(reg) else { try expect(memoryTypes) }
            guard let map = meta.map else { throw Rejections.make("helper_argument", "invalid map_ptr to access map->key", at: index, "The map argument must come first.") }
            try checkPacketHelperAccess(reg, at: index)
            try checkHelperMemory(&state, register: register, size: maps[map].keySize, write: false, zeroSizeAllowed: false, at: index)
            let info = maps[map]
            if reg.type == .stack && reg.varOff.isConstant && (info.type == .array || info.type == .percpuArray) {
                meta.constantKey = constantStackValue(state, reg, size: info.keySize)
                if meta.constantKey != nil, let slot = stackSlot(state, register: register, offset: 0) {
                    markPrecise(&state, registers: 0, slots: [slot])
                }
            }
        case .mapValue(let uninit):
            guard isMemory(reg) else { try expect(memoryTypes) }
            guard let map = meta.map else { throw Rejections.make("helper_argument", "invalid map_ptr to access map->value", at: index, "The map argument must come first.") }
            try checkPacketHelperAccess(reg, at: index)
            try checkHelperMemory(&state, register: register, size: maps[map].valueSize, write: uninit, zeroSizeAllowed: false, at: index)
        case .memory(let write, let nullable):
            meta.memoryRegister = register
            meta.memoryWrite = write
            meta.memoryNullable = nullable && reg.isNullConstant
            if nullable && reg.isNullConstant { return }
            guard isMemory(reg) else { try expect(memoryTypes) }
            try checkPacketHelperAccess(reg, at: index)
        case .size(let zeroAllowed):
            guard reg.type == .scalar else { try expect(["scalar"]) }
            markPrecise(&state, registers: 1 << UInt16(register))
            meta.sizeMax = reg.umax
            if reg.smin < 0 { throw Rejections.sizeNegative(register, at: index) }
            if reg.umin == 0 && !zeroAllowed { throw Rejections.zeroSize(register, umin: reg.umin, umax: reg.umax, at: index) }
            if reg.umax >= maxVariableSize { throw Rejections.unboundedSize(register, at: index) }
            if let memory = meta.memoryRegister {
                if meta.memoryNullable { return }
                try checkHelperMemory(
                    &state, register: memory, size: Int(reg.umax), write: meta.memoryWrite,
                    zeroSizeAllowed: zeroAllowed || reg.umin == 0, at: index)
            }
        case .context:
            guard reg.type == .context && !reg.maybeNull else { try expect(["ctx"]) }
            if reg.offset != 0 || !reg.varOff.isConstant || reg.varOff.value != 0 {
                throw Rejections.modifiedContext(register, offset: reg.offset, at: index)
            }
        case .function:
            guard reg.type == .function else { try expect(["func"]) }
            meta.callback = Int(reg.aux)
        case .stackOrNull:
            if reg.isNullConstant { meta.callbackContext = reg; return }
            guard reg.type == .stack else { try expect(["fp"]) }
            meta.callbackContext = reg
        case .ringbufRecord:
            guard reg.type == .ringbufMemory && !reg.maybeNull else { try expect(["ringbuf_mem"]) }
            if reg.offset != 0 || !reg.varOff.isConstant || reg.varOff.value != 0 {
                throw Rejections.releaseOffset(register, at: index)
            }
            if reg.refObjID == 0 { throw Rejections.releaseUnreferenced(register, at: index) }
            meta.releaseRegister = register
        case .spinLock:
            guard reg.type == .mapValue && !reg.maybeNull else { try expect(["map_value", "ptr_"]) }
        case .allocationSize:
            guard reg.type == .scalar else { try expect(["scalar"]) }
            if !reg.varOff.isConstant { throw Rejections.notConstant(register, at: index) }
            markPrecise(&state, registers: 1 << UInt16(register))
            meta.allocationSize = Int32(truncatingIfNeeded: reg.varOff.value)
        case .long:
            guard isMemory(reg) && reg.type != .memory && reg.type != .ringbufMemory else {
                try expect(["fp", "pkt", "pkt_meta", "map_key", "map_value"])
            }
            try checkHelperMemory(&state, register: register, size: 8, write: true, zeroSizeAllowed: false, at: index)
        case .constString:
            guard reg.type == .mapValue && !reg.maybeNull else { try expect(["map_value"]) }
            let map = maps[reg.mapIndex]
            if map.frozenValue == nil {
                throw Rejections.make("helper_argument", "R\(register) does not point to a readonly map'", at: index, "The format string must be a constant (in .rodata).")
            }
        }
    }

    /// The value of a constant key on the stack (`get_constant_map_key`): zero bytes
    /// tracked as zero, or a spilled constant scalar of exactly the key's size.
    func constantStackValue(_ state: VerifierState, _ reg: RegisterState, size: Int) -> Int64? {
        let frame = frameIndex(state, reg)
        let off = Int(reg.offset) + Int(Int64(bitPattern: reg.varOff.value))
        guard off < 0 else { return nil }
        let slotIndex = (-off - 1) / 8
        let byte = (-off - 1) % 8
        guard slotIndex < state.frames[frame].stack.count else { return nil }
        let slot = state.frames[frame].stack[slotIndex]
        var zeros = 0
        var i = byte
        while i >= 0 && slot[i] == .zero {
            zeros += 1
            i -= 1
        }
        if zeros >= size { return 0 }
        guard slot.isSpilledScalar else { return nil }
        var spills = 0
        i = byte
        while i >= 0 && slot[i] == .spill {
            spills += 1
            i -= 1
        }
        guard spills == size, slot.spilled.varOff.isConstant else { return nil }
        return Int64(bitPattern: slot.spilled.varOff.value)
    }

    func checkPacketHelperAccess(_ reg: RegisterState, at index: Int) throws(VerifierError) {
        if reg.type.isPacket {
            switch type {
            case .xdp, .schedCls, .schedAct, .lwtIn, .lwtOut, .lwtXmit, .skSkb, .skMsg, .cgroupSkb, .flowDissector: break
            default:
                throw Rejections.make("packet", "helper access to the packet is not allowed", at: index, "This program type may not pass packet pointers to helpers.")
            }
        }
    }

    func checkSpinLock(_ state: inout VerifierState, lock: Bool, at index: Int) throws(VerifierError) {
        let reg = state.regs[1]
        let map = maps[reg.mapIndex]
        if !reg.varOff.isConstant { throw Rejections.lockNotConstant(1, at: index) }
        if !map.hasBTF { throw Rejections.lockNoBTF(map.name, at: index) }
        guard let lockOffset = map.spinLockOffset else { throw Rejections.lockNotInMap(map.name, at: index) }
        let offset = Int64(bitPattern: reg.varOff.value) + Int64(reg.offset)
        if offset != Int64(lockOffset) { throw Rejections.lockWrongOffset(offset, lockOffset, at: index) }
        if lock {
            if state.heldLock != nil { throw Rejections.twoLocks(at: index) }
            state.references.append(Reference(kind: .lock(pointerID: reg.id, map: reg.mapIndex), id: 0, instruction: index))
        } else {
            guard let held = state.heldLock else { throw Rejections.unlockWithoutLock(at: index) }
            guard held.kind == .lock(pointerID: reg.id, map: reg.mapIndex) else { throw Rejections.unlockDifferent(at: index) }
            state.references.removeAll { $0.kind == held.kind }
        }
    }

    // MARK: bpf-to-bpf calls

    func checkLocalCall(_ state: inout VerifierState, _ insn: DecodedInstruction, at index: Int) throws(VerifierError) {
        if state.frames.count >= 8 { throw Rejections.callStackTooDeep(state.frames.count + 1, at: index) }
        let target = Int(insn.offset)
        let callee = flow.functionOf[target]
        calls.insert([flow.functionOf[index], callee])
        var frame = FrameState(function: callee, callsite: index, frameNumber: state.frames.count)
        for r in 1...5 { frame.regs[r] = state.regs[r] }
        state.frames.append(frame)
        record(&state, index, register: -1)
    }
}
