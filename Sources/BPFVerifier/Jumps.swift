import BPFCore

/// Conditional jumps (`check_cond_jmp_op`): a branch whose outcome the bounds decide is
/// followed one way; otherwise both ways, each with the bounds, NULL-ness or packet range
/// the condition implies.
extension Analysis {
    enum Condition: Equatable {
        case eq, ne, gt, ge, lt, le, sgt, sge, slt, sle, set, notSet

        /// The condition that holds on the fall-through branch (`rev_opcode`).
        var negated: Condition {
            switch self {
            case .eq: .ne
            case .ne: .eq
            case .gt: .le
            case .ge: .lt
            case .lt: .ge
            case .le: .gt
            case .sgt: .sle
            case .sge: .slt
            case .slt: .sge
            case .sle: .sgt
            case .set: .notSet
            case .notSet: .set
            }
        }

        /// The condition with its operands swapped (`flip_opcode`).
        var flipped: Condition {
            switch self {
            case .gt: .lt
            case .ge: .le
            case .lt: .gt
            case .le: .ge
            case .sgt: .slt
            case .sge: .sle
            case .slt: .sgt
            case .sle: .sge
            default: self
            }
        }
    }

    static func condition(_ operation: Operation) -> (Condition, is32: Bool) {
        switch operation {
        case .jeq64Imm, .jeq64Reg: (.eq, false)
        case .jeq32Imm, .jeq32Reg: (.eq, true)
        case .jne64Imm, .jne64Reg: (.ne, false)
        case .jne32Imm, .jne32Reg: (.ne, true)
        case .jgt64Imm, .jgt64Reg: (.gt, false)
        case .jgt32Imm, .jgt32Reg: (.gt, true)
        case .jge64Imm, .jge64Reg: (.ge, false)
        case .jge32Imm, .jge32Reg: (.ge, true)
        case .jlt64Imm, .jlt64Reg: (.lt, false)
        case .jlt32Imm, .jlt32Reg: (.lt, true)
        case .jle64Imm, .jle64Reg: (.le, false)
        case .jle32Imm, .jle32Reg: (.le, true)
        case .jsgt64Imm, .jsgt64Reg: (.sgt, false)
        case .jsgt32Imm, .jsgt32Reg: (.sgt, true)
        case .jsge64Imm, .jsge64Reg: (.sge, false)
        case .jsge32Imm, .jsge32Reg: (.sge, true)
        case .jslt64Imm, .jslt64Reg: (.slt, false)
        case .jslt32Imm, .jslt32Reg: (.slt, true)
        case .jsle64Imm, .jsle64Reg: (.sle, false)
        case .jsle32Imm, .jsle32Reg: (.sle, true)
        case .jset64Imm, .jset64Reg: (.set, false)
        default: (.set, true)
        }
    }

    func checkConditionalJump(_ state: inout VerifierState, _ insn: DecodedInstruction, _ index: inout Int)
        throws(VerifierError)
    {
        let at = index
        let target = Int(insn.offset)
        let (condition, is32) = Self.condition(insn.operation)
        let usesRegister = InstructionSet.spec(for: insn.operation).form == .jumpRegister
        let dst = Int(insn.dst)
        try checkRegisterReadable(state, dst, at: at)
        if usesRegister { try checkRegisterReadable(state, Int(insn.src), at: at) }
        let dstReg = state.regs[dst]
        var srcReg: RegisterState
        if usesRegister {
            srcReg = state.regs[Int(insn.src)]
        } else {
            srcReg = .constant(is32 ? UInt64(UInt32(truncatingIfNeeded: insn.immediate)) : UInt64(bitPattern: insn.immediate))
        }
        let sameRegister = usesRegister && insn.src == insn.dst
        let prediction = branchTaken(dstReg, srcReg, condition, is32: is32, same: sameRegister)
        if prediction >= 0 {
            var precise: UInt16 = 0
            if dstReg.type == .scalar { precise |= 1 << UInt16(dst) }
            if usesRegister && srcReg.type == .scalar { precise |= 1 << UInt16(insn.src) }
            if precise != 0 { markPrecise(&state, registers: precise) }
        }
        if prediction == 1 {
            record(&state, at, register: -1, taken: true)
            index = target
            return
        }
        if prediction == 0 {
            record(&state, at, register: -1, taken: false)
            index = at + 1
            return
        }
        var other = state
        // Bounds from the comparison, for scalars.
        if dstReg.type == .scalar && srcReg.type == .scalar {
            var trueDst = dstReg
            var trueSrc = srcReg
            var falseDst = dstReg
            var falseSrc = srcReg
            refine(&falseDst, &falseSrc, condition.negated, is32: is32)
            refine(&trueDst, &trueSrc, condition, is32: is32)
            if sameRegister {
                trueSrc = trueDst
                falseSrc = falseDst
            }
            other.regs[dst] = trueDst
            state.regs[dst] = falseDst
            if usesRegister {
                other.regs[Int(insn.src)] = sameRegister ? trueDst : trueSrc
                state.regs[Int(insn.src)] = sameRegister ? falseDst : falseSrc
                if srcReg.id != 0 {
                    syncLinked(&state, state.regs[Int(insn.src)])
                    syncLinked(&other, other.regs[Int(insn.src)])
                }
            }
            if dstReg.id != 0 {
                syncLinked(&state, state.regs[dst])
                syncLinked(&other, other.regs[dst])
            }
        }
        if !is32 && !usesRegister && insn.immediate == 0 && (condition == .eq || condition == .ne) && dstReg.maybeNull {
            markNullChecked(&state, id: dstReg.id, isNull: condition == .eq ? false : true)
            markNullChecked(&other, id: dstReg.id, isNull: condition == .eq)
        } else if !is32 && usesRegister {
            matchPacketPointers(&state, &other, condition, dst: dst, src: Int(insn.src))
        }
        if !options.privileged && dstReg.type.isPointer && !(dstReg.maybeNull && insn.immediate == 0) {
            throw Rejections.make("pointer_comparison", "R\(dst) pointer comparison prohibited", at: at, "An unprivileged program may not compare pointers.")
        }
        try pushBranch(other, at: target, from: at, taken: true)
        record(&state, at, register: -1, taken: false)
        index = at + 1
    }

    // MARK: Predicting a branch (is_branch_taken)

    func branchTaken(_ a: RegisterState, _ b: RegisterState, _ condition: Condition, is32: Bool, same: Bool) -> Int {
        if a.type.isPacket || a.type == .packetEnd, b.type.isPacket || b.type == .packetEnd, !is32 {
            return packetBranchTaken(a, b, condition)
        }
        if a.type != .scalar || b.type != .scalar {
            var pointer = a
            var other = b
            var condition = condition
            if !other.isConstant(is32: is32) || other.type != .scalar {
                swap(&pointer, &other)
                condition = condition.flipped
            }
            guard other.type == .scalar, other.isConstant(is32: is32) else { return -1 }
            guard pointer.isNotNull else { return -1 }
            guard other.constantValue(is32: is32) == 0 else { return -1 }
            switch condition {
            case .eq: return 0
            case .ne: return 1
            default: return -1
            }
        }
        return scalarBranchTaken(a, b, condition, is32: is32, same: same)
    }

    func packetBranchTaken(_ a: RegisterState, _ b: RegisterState, _ condition: Condition) -> Int {
        let pkt: RegisterState
        var condition = condition
        if b.type == .packetEnd {
            pkt = a
        } else if a.type == .packetEnd {
            pkt = b
            condition = condition.flipped
        } else {
            return -1
        }
        guard pkt.range < 0 else { return -1 }
        switch condition {
        case .le, .gt:
            if pkt.range == PacketRange.beyondEnd { return condition == .gt ? 1 : 0 }
        case .lt, .ge:
            if pkt.range == PacketRange.beyondEnd || pkt.range == PacketRange.atEnd { return condition == .ge ? 1 : 0 }
        default:
            break
        }
        return -1
    }

    func scalarBranchTaken(_ r1: RegisterState, _ r2: RegisterState, _ condition: Condition, is32: Bool, same: Bool) -> Int {
        let t1 = is32 ? r1.varOff.subreg : r1.varOff
        let t2 = is32 ? r2.varOff.subreg : r2.varOff
        let umin1 = is32 ? UInt64(r1.u32min) : r1.umin
        let umax1 = is32 ? UInt64(r1.u32max) : r1.umax
        let smin1 = is32 ? Int64(r1.s32min) : r1.smin
        let smax1 = is32 ? Int64(r1.s32max) : r1.smax
        let umin2 = is32 ? UInt64(r2.u32min) : r2.umin
        let umax2 = is32 ? UInt64(r2.u32max) : r2.umax
        let smin2 = is32 ? Int64(r2.s32min) : r2.smin
        let smax2 = is32 ? Int64(r2.s32max) : r2.smax
        if same {
            switch condition {
            case .ge, .le, .sge, .sle, .eq: return 1
            case .gt, .lt, .sgt, .slt, .ne: return 0
            case .set:
                if t1.isConstant { return t1.value != 0 ? 1 : 0 }
                return smin1 <= 0 && smax1 >= 0 ? -1 : 1
            case .notSet: return -1
            }
        }
        switch condition {
        case .eq, .ne:
            let equalResult = condition == .eq ? 1 : 0
            if t1.isConstant && t2.isConstant { return (t1.value == t2.value) == (condition == .eq) ? 1 : 0 }
            if !t1.overlaps(t2) { return 1 - equalResult }
            if umin1 > umax2 || umax1 < umin2 { return 1 - equalResult }
            if smin1 > smax2 || smax1 < smin2 { return 1 - equalResult }
            if !is32 {
                if r1.u32min > r2.u32max || r1.u32max < r2.u32min { return 1 - equalResult }
                if r1.s32min > r2.s32max || r1.s32max < r2.s32min { return 1 - equalResult }
            }
        case .set:
            var a = t1
            var b = t2
            if !r2.isConstant(is32: is32) { swap(&a, &b) }
            if !(b.isConstant) { return -1 }
            if (~a.mask & a.value) & b.value != 0 { return 1 }
            if (a.mask | a.value) & b.value == 0 { return 0 }
        case .notSet:
            return -1
        case .gt:
            if umin1 > umax2 { return 1 } else if umax1 <= umin2 { return 0 }
        case .sgt:
            if smin1 > smax2 { return 1 } else if smax1 <= smin2 { return 0 }
        case .lt:
            if umax1 < umin2 { return 1 } else if umin1 >= umax2 { return 0 }
        case .slt:
            if smax1 < smin2 { return 1 } else if smin1 >= smax2 { return 0 }
        case .ge:
            if umin1 >= umax2 { return 1 } else if umax1 < umin2 { return 0 }
        case .sge:
            if smin1 >= smax2 { return 1 } else if smax1 < smin2 { return 0 }
        case .le:
            if umax1 <= umin2 { return 1 } else if umin1 > umax2 { return 0 }
        case .sle:
            if smax1 <= smin2 { return 1 } else if smin1 > smax2 { return 0 }
        }
        // Both ways look possible: a branch whose refined bounds are empty is dead.
        var f1 = r1
        var f2 = r2
        refine(&f1, &f2, condition.negated, is32: is32)
        if f1.boundsViolated || f2.boundsViolated { return 1 }
        var g1 = r1
        var g2 = r2
        refine(&g1, &g2, condition, is32: is32)
        if g1.boundsViolated || g2.boundsViolated { return 0 }
        return -1
    }

    // MARK: Refining bounds (regs_refine_cond_op)

    func refine(_ a: inout RegisterState, _ b: inout RegisterState, _ condition: Condition, is32: Bool) {
        var condition = condition
        var swapped = false
        switch condition {
        case .ge, .gt, .sge, .sgt:
            condition = condition.flipped
            swapped = true
        default:
            break
        }
        if swapped {
            refineOrdered(&b, &a, condition, is32: is32)
        } else {
            refineOrdered(&a, &b, condition, is32: is32)
        }
        a.syncBounds()
        b.syncBounds()
    }

    private func refineOrdered(_ r1: inout RegisterState, _ r2: inout RegisterState, _ condition: Condition, is32: Bool) {
        switch condition {
        case .eq:
            if is32 {
                r1.u32min = max(r1.u32min, r2.u32min)
                r1.u32max = min(r1.u32max, r2.u32max)
                r1.s32min = max(r1.s32min, r2.s32min)
                r1.s32max = min(r1.s32max, r2.s32max)
                r2.u32min = r1.u32min
                r2.u32max = r1.u32max
                r2.s32min = r1.s32min
                r2.s32max = r1.s32max
                let t = r1.varOff.subreg.intersect(r2.varOff.subreg)
                r1.varOff = r1.varOff.withSubreg(t)
                r2.varOff = r2.varOff.withSubreg(t)
            } else {
                r1.umin = max(r1.umin, r2.umin)
                r1.umax = min(r1.umax, r2.umax)
                r1.smin = max(r1.smin, r2.smin)
                r1.smax = min(r1.smax, r2.smax)
                r2.umin = r1.umin
                r2.umax = r1.umax
                r2.smin = r1.smin
                r2.smax = r1.smax
                r1.varOff = r1.varOff.intersect(r2.varOff)
                r2.varOff = r1.varOff
            }
        case .ne:
            if !r2.isConstant(is32: is32) {
                if r1.isConstant(is32: is32) { refineNotEqual(&r2, r1, is32: is32) }
                return
            }
            refineNotEqual(&r1, r2, is32: is32)
        case .set:
            var target = r1
            var constant = r2
            let swapped = !r2.isConstant(is32: is32)
            if swapped { swap(&target, &constant) }
            guard constant.isConstant(is32: is32) else { return }
            let value = constant.constantValue(is32: is32)
            guard value != 0 && value & (value - 1) == 0 else { return }
            if is32 {
                target.varOff = target.varOff.withSubreg(target.varOff.subreg | .constant(value))
            } else {
                target.varOff = target.varOff | .constant(value)
            }
            if swapped { r2 = target } else { r1 = target }
        case .notSet:
            var target = r1
            var constant = r2
            let swapped = !r2.isConstant(is32: is32)
            if swapped { swap(&target, &constant) }
            guard constant.isConstant(is32: is32) else { return }
            let value = constant.constantValue(is32: is32)
            target.markUnbounded()
            if is32 {
                target.varOff = target.varOff.withSubreg(target.varOff.subreg & .constant(~value))
            } else {
                target.varOff = target.varOff & .constant(~value)
            }
            if swapped { r2 = target } else { r1 = target }
        case .le:
            if is32 {
                r1.u32max = min(r1.u32max, r2.u32max)
                r2.u32min = max(r1.u32min, r2.u32min)
            } else {
                r1.umax = min(r1.umax, r2.umax)
                r2.umin = max(r1.umin, r2.umin)
            }
        case .lt:
            if is32 {
                r1.u32max = min(r1.u32max, r2.u32max &- 1)
                r2.u32min = max(r1.u32min &+ 1, r2.u32min)
            } else {
                r1.umax = min(r1.umax, r2.umax &- 1)
                r2.umin = max(r1.umin &+ 1, r2.umin)
            }
        case .sle:
            if is32 {
                r1.s32max = min(r1.s32max, r2.s32max)
                r2.s32min = max(r1.s32min, r2.s32min)
            } else {
                r1.smax = min(r1.smax, r2.smax)
                r2.smin = max(r1.smin, r2.smin)
            }
        case .slt:
            if is32 {
                r1.s32max = min(r1.s32max, r2.s32max &- 1)
                r2.s32min = max(r1.s32min &+ 1, r2.s32min)
            } else {
                r1.smax = min(r1.smax, r2.smax &- 1)
                r2.smin = max(r1.smin &+ 1, r2.smin)
            }
        default:
            break
        }
    }

    private func refineNotEqual(_ r: inout RegisterState, _ constant: RegisterState, is32: Bool) {
        let value = constant.constantValue(is32: is32)
        if is32 {
            if r.u32min == UInt32(truncatingIfNeeded: value) { r.u32min &+= 1 }
            if r.u32max == UInt32(truncatingIfNeeded: value) { r.u32max &-= 1 }
            if r.s32min == Int32(truncatingIfNeeded: value) { r.s32min &+= 1 }
            if r.s32max == Int32(truncatingIfNeeded: value) { r.s32max &-= 1 }
        } else {
            if r.umin == value { r.umin &+= 1 }
            if r.umax == value { r.umax &-= 1 }
            if r.smin == Int64(bitPattern: value) { r.smin &+= 1 }
            if r.smax == Int64(bitPattern: value) { r.smax &-= 1 }
        }
    }

    /// Copies refined bounds to every scalar sharing the id (`sync_linked_regs`).
    func syncLinked(_ state: inout VerifierState, _ known: RegisterState) {
        guard known.id != 0 else { return }
        for f in 0..<state.frames.count {
            for r in 0..<11 where state.frames[f].regs[r].type == .scalar && state.frames[f].regs[r].id == known.id {
                state.frames[f].regs[r] = known
            }
            for s in 0..<state.frames[f].stack.count
            where state.frames[f].stack[s].isSpill && state.frames[f].stack[s].spilled.type == .scalar
                && state.frames[f].stack[s].spilled.id == known.id
            {
                state.frames[f].stack[s].spilled = known
            }
        }
    }

    // MARK: NULL checks (mark_ptr_or_null_regs)

    func markNullChecked(_ state: inout VerifierState, id: UInt32, isNull: Bool) {
        guard id != 0 else { return }
        func update(_ reg: inout RegisterState) {
            guard reg.maybeNull && reg.id == id else { return }
            if isNull {
                reg = .constant(0)
                return
            }
            reg.maybeNull = false
            if reg.type == .mapValue, let inner = innerMapIndex[reg.mapIndex] {
                reg = .pointer(.mapPointer, aux: Int32(inner))
                return
            }
            if !(reg.type == .mapValue && maps[reg.mapIndex].spinLockOffset != nil) { reg.id = 0 }
        }
        for f in 0..<state.frames.count {
            for r in 0..<11 { update(&state.frames[f].regs[r]) }
            for s in 0..<state.frames[f].stack.count where state.frames[f].stack[s].isSpill {
                update(&state.frames[f].stack[s].spilled)
            }
        }
        if isNull {
            // A reference that is NULL was never taken.
            state.references.removeAll { $0.kind == .pointer && $0.id == id }
        }
    }

    // MARK: Packet bounds (try_match_pkt_pointers)

    func matchPacketPointers(_ fall: inout VerifierState, _ taken: inout VerifierState, _ condition: Condition, dst: Int, src: Int) {
        let d = fall.regs[dst]
        let s = fall.regs[src]
        let dataVsEnd = (d.type == .packet && s.type == .packetEnd) || (d.type == .packetMeta && isInitialPacket(s))
        let endVsData = (d.type == .packetEnd && s.type == .packet) || (isInitialPacket(d) && s.type == .packetMeta)
        switch condition {
        case .gt:
            if dataVsEnd {
                findGoodPacketPointers(&fall, d, rightOpen: false)
                markPacketEnd(&taken, dst, rangeOpen: true)
            } else if endVsData {
                findGoodPacketPointers(&taken, s, rightOpen: true)
                markPacketEnd(&fall, src, rangeOpen: false)
            }
        case .lt:
            if dataVsEnd {
                findGoodPacketPointers(&taken, d, rightOpen: true)
                markPacketEnd(&fall, dst, rangeOpen: false)
            } else if endVsData {
                findGoodPacketPointers(&fall, s, rightOpen: false)
                markPacketEnd(&taken, src, rangeOpen: true)
            }
        case .ge:
            if dataVsEnd {
                findGoodPacketPointers(&fall, d, rightOpen: true)
                markPacketEnd(&taken, dst, rangeOpen: false)
            } else if endVsData {
                findGoodPacketPointers(&taken, s, rightOpen: false)
                markPacketEnd(&fall, src, rangeOpen: true)
            }
        case .le:
            if dataVsEnd {
                findGoodPacketPointers(&taken, d, rightOpen: false)
                markPacketEnd(&fall, dst, rangeOpen: true)
            } else if endVsData {
                findGoodPacketPointers(&fall, s, rightOpen: true)
                markPacketEnd(&taken, src, rangeOpen: false)
            }
        default:
            break
        }
    }

    func isInitialPacket(_ reg: RegisterState) -> Bool {
        reg.type == .packet && reg.offset == 0 && reg.varOff.isConstant && reg.varOff.value == 0
    }

    func findGoodPacketPointers(_ state: inout VerifierState, _ reg: RegisterState, rightOpen: Bool) {
        if reg.offset < 0 || (rightOpen && reg.offset == 0) { return }
        if reg.umax > maxPacketOffset || reg.umax + UInt64(reg.offset) > maxPacketOffset { return }
        var newRange = reg.offset
        if rightOpen { newRange += 1 }
        func update(_ other: inout RegisterState) {
            if other.type == reg.type && other.id == reg.id { other.range = max(other.range, newRange) }
        }
        for f in 0..<state.frames.count {
            for r in 0..<11 { update(&state.frames[f].regs[r]) }
            for s in 0..<state.frames[f].stack.count where state.frames[f].stack[s].isSpill {
                update(&state.frames[f].stack[s].spilled)
            }
        }
    }

    func markPacketEnd(_ state: inout VerifierState, _ register: Int, rangeOpen: Bool) {
        guard state.regs[register].type == .packet else { return }
        state.regs[register].range = rangeOpen ? PacketRange.beyondEnd : PacketRange.atEnd
    }
}
