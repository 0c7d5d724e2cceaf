import BPFCore

/// Arithmetic: scalar bounds through every operation (`adjust_scalar_min_max_vals`) and
/// pointer arithmetic (`adjust_ptr_min_max_vals`).
extension Analysis {
    enum ALUOp {
        case add, sub, mul, div, sdiv, mod, smod, or, and, lsh, rsh, arsh, xor, mov, neg, movsx8, movsx16, movsx32
        case end(Operation)

        /// `bpf_alu_string`.
        var text: String {
            switch self {
            case .add: "+="
            case .sub: "-="
            case .mul: "*="
            case .div, .sdiv: "/="
            case .or: "|="
            case .and: "&="
            case .lsh: "<<="
            case .rsh: ">>="
            case .neg: "neg"
            case .mod, .smod: "%="
            case .xor: "^="
            case .mov, .movsx8, .movsx16, .movsx32: "="
            case .arsh: "s>>="
            case .end: "endian"
            }
        }
    }

    static func aluOp(_ operation: Operation) -> (ALUOp, is32: Bool) {
        switch operation {
        case .add64Imm, .add64Reg: (.add, false)
        case .add32Imm, .add32Reg: (.add, true)
        case .sub64Imm, .sub64Reg: (.sub, false)
        case .sub32Imm, .sub32Reg: (.sub, true)
        case .mul64Imm, .mul64Reg: (.mul, false)
        case .mul32Imm, .mul32Reg: (.mul, true)
        case .div64Imm, .div64Reg: (.div, false)
        case .div32Imm, .div32Reg: (.div, true)
        case .sdiv64Imm, .sdiv64Reg: (.sdiv, false)
        case .sdiv32Imm, .sdiv32Reg: (.sdiv, true)
        case .mod64Imm, .mod64Reg: (.mod, false)
        case .mod32Imm, .mod32Reg: (.mod, true)
        case .smod64Imm, .smod64Reg: (.smod, false)
        case .smod32Imm, .smod32Reg: (.smod, true)
        case .or64Imm, .or64Reg: (.or, false)
        case .or32Imm, .or32Reg: (.or, true)
        case .and64Imm, .and64Reg: (.and, false)
        case .and32Imm, .and32Reg: (.and, true)
        case .lsh64Imm, .lsh64Reg: (.lsh, false)
        case .lsh32Imm, .lsh32Reg: (.lsh, true)
        case .rsh64Imm, .rsh64Reg: (.rsh, false)
        case .rsh32Imm, .rsh32Reg: (.rsh, true)
        case .arsh64Imm, .arsh64Reg: (.arsh, false)
        case .arsh32Imm, .arsh32Reg: (.arsh, true)
        case .xor64Imm, .xor64Reg: (.xor, false)
        case .xor32Imm, .xor32Reg: (.xor, true)
        case .mov64Imm, .mov64Reg: (.mov, false)
        case .mov32Imm, .mov32Reg: (.mov, true)
        case .neg64: (.neg, false)
        case .neg32: (.neg, true)
        case .movsx8To64: (.movsx8, false)
        case .movsx16To64: (.movsx16, false)
        case .movsx32To64: (.movsx32, false)
        case .movsx8To32: (.movsx8, true)
        case .movsx16To32: (.movsx16, true)
        default: (.end(operation), false)
        }
    }

    func checkALU(_ state: inout VerifierState, _ insn: DecodedInstruction, _ spec: InstructionSpec, at index: Int)
        throws(VerifierError)
    {
        let dst = Int(insn.dst)
        let (op, is32) = Self.aluOp(insn.operation)
        let usesRegister = spec.form == .aluRegister
        try checkWritableRegister(dst, at: index)
        if usesRegister { try checkRegisterReadable(state, Int(insn.src), at: index) }
        switch op {
        case .mov, .movsx8, .movsx16, .movsx32:
            try checkMove(&state, insn, op, is32: is32, register: usesRegister, at: index)
            return
        default:
            break
        }
        try checkRegisterReadable(state, dst, at: index)
        // Immediate checks the kernel makes at load.
        if !usesRegister {
            switch op {
            case .div, .sdiv, .mod, .smod:
                if insn.immediate == 0 { throw Rejections.divisionByZero(at: index) }
            case .lsh, .rsh, .arsh:
                let width: Int64 = is32 ? 32 : 64
                let amount = is32 ? Int64(Int32(truncatingIfNeeded: insn.immediate)) : insn.immediate
                if amount < 0 || amount >= width { throw Rejections.invalidShift(amount, at: index) }
            default:
                break
            }
        }
        switch op {
        case .neg:
            let zero = RegisterState.constant(0)
            var reg = state.regs[dst]
            if reg.type != .scalar {
                // Privileged: negating a pointer gives an unknown number.
                reg = .unknownScalar()
                if is32 { reg.zeroExtend32(); reg.syncBounds() }
                state.regs[dst] = reg
                return
            }
            var result = zero
            scalarOp(&result, reg, .sub, is32: is32, insnIs32: is32)
            state.regs[dst] = result
            return
        case .end(let operation):
            var reg = state.regs[dst]
            switch operation {
            case .le64:
                if reg.type != .scalar { reg = .unknownScalar() }
            case .le16, .le32:
                if reg.type != .scalar { reg = .unknownScalar() }
                reg.truncate(toBytes: operation == .le16 ? 2 : 4)
                reg.id = 0
            default:
                if reg.isConstant {
                    let value = reg.varOff.value
                    let swapped: UInt64
                    switch operation {
                    case .be16, .bswap16: swapped = UInt64(UInt16(truncatingIfNeeded: value).byteSwapped)
                    case .be32, .bswap32: swapped = UInt64(UInt32(truncatingIfNeeded: value).byteSwapped)
                    default: swapped = value.byteSwapped
                    }
                    reg = .constant(swapped)
                } else {
                    reg = .unknownScalar()
                    switch operation {
                    case .be16, .bswap16: reg.truncate(toBytes: 2)
                    case .be32, .bswap32: reg.truncate(toBytes: 4)
                    default: break
                    }
                }
            }
            state.regs[dst] = reg
            return
        default:
            break
        }
        var source: RegisterState
        if usesRegister {
            source = state.regs[Int(insn.src)]
        } else {
            source = .constant(UInt64(bitPattern: is32 ? Int64(UInt32(truncatingIfNeeded: insn.immediate)) : insn.immediate))
            if is32 { source.markKnown(UInt64(UInt32(truncatingIfNeeded: insn.immediate))) }
        }
        let destination = state.regs[dst]
        if destination.type != .scalar || source.type != .scalar {
            try pointerArithmetic(&state, dst: dst, destination, source, op, is32: is32, srcRegister: usesRegister ? Int(insn.src) : -1, at: index)
            return
        }
        var result = destination
        scalarOp(&result, source, op, is32: is32, insnIs32: is32)
        result.id = 0
        state.regs[dst] = result
    }

    func checkMove(
        _ state: inout VerifierState, _ insn: DecodedInstruction, _ op: ALUOp, is32: Bool, register: Bool, at index: Int
    ) throws(VerifierError) {
        let dst = Int(insn.dst)
        if !register {
            let value = is32 ? UInt64(UInt32(truncatingIfNeeded: insn.immediate)) : UInt64(bitPattern: insn.immediate)
            state.regs[dst] = .constant(value)
            return
        }
        let src = Int(insn.src)
        var source = state.regs[src]
        switch op {
        case .mov where !is32:
            // A copy of a scalar shares its id, so a later check on one bounds both.
            if source.type == .scalar && source.id == 0 && !source.varOff.isConstant {
                source.id = nextID()
                state.regs[src] = source
            }
            state.regs[dst] = source
        case .mov:
            if source.type != .scalar {
                state.regs[dst] = .unknownScalar()
                state.regs[dst].zeroExtend32()
                state.regs[dst].syncBounds()
                return
            }
            var value = source
            value.id = 0
            value.zeroExtend32()
            value.syncBounds()
            state.regs[dst] = value
        case .movsx8, .movsx16, .movsx32:
            var value = source.type == .scalar ? source : .unknownScalar()
            value.id = 0
            let size: Int
            switch op {
            case .movsx8: size = 1
            case .movsx16: size = 2
            default: size = 4
            }
            if is32 {
                value.signExtend32(fromBytes: size)
            } else {
                value.signExtend(fromBytes: size)
            }
            state.regs[dst] = value
        default:
            break
        }
    }

    // MARK: Scalars

    /// Applies `op` with `source` to the scalar `reg`, as `adjust_scalar_min_max_vals`.
    func scalarOp(_ reg: inout RegisterState, _ source: RegisterState, _ op: ALUOp, is32: Bool, insnIs32: Bool) {
        let width: UInt64 = is32 ? 32 : 64
        // Which operations keep ranges (`is_safe_to_compute_dst_reg_range`).
        let sourceConstant = is32 ? source.varOff.subreg.isConstant : source.varOff.isConstant
        var safe: Bool
        switch op {
        case .add, .sub, .and, .xor, .or, .mul: safe = true
        case .lsh, .rsh, .arsh: safe = sourceConstant && (is32 ? UInt64(source.u32max) : source.umax) < width
        default: safe = false
        }
        if source.boundsViolated { safe = false }
        if !safe {
            reg = .unknownScalar()
            if is32 { reg.zeroExtend32(); reg.syncBounds() }
            return
        }
        let shift = is32 ? UInt64(source.u32min) : source.umin
        switch op {
        case .add:
            add32(&reg, source)
            add64(&reg, source)
            reg.varOff = reg.varOff + source.varOff
        case .sub:
            sub32(&reg, source)
            sub64(&reg, source)
            reg.varOff = reg.varOff - source.varOff
        case .mul:
            reg.varOff = reg.varOff * source.varOff
            mul32(&reg, source)
            mul64(&reg, source)
        case .and:
            reg.varOff = reg.varOff & source.varOff
            and32(&reg, source)
            and64(&reg, source)
        case .or:
            reg.varOff = reg.varOff | source.varOff
            or32(&reg, source)
            or64(&reg, source)
        case .xor:
            reg.varOff = reg.varOff ^ source.varOff
            xor32(&reg, source)
            xor64(&reg, source)
        case .lsh:
            if is32 {
                reg.markUnbounded64()
                lsh32(&reg, shift)
            } else {
                lsh64(&reg, shift)
                reg.markUnbounded32()
                reg.varOff = reg.varOff.shiftedLeft(shift)
                reg.updateBoundsFromTnum()
            }
        case .rsh:
            if is32 {
                let sub = reg.varOff.subreg.shiftedRight(shift)
                reg.s32min = .min
                reg.s32max = .max
                reg.u32min >>= UInt32(shift)
                reg.u32max >>= UInt32(shift)
                reg.varOff = reg.varOff.withSubreg(sub)
                reg.markUnbounded64()
                reg.updateBoundsFromTnum()
            } else {
                reg.smin = .min
                reg.smax = .max
                reg.varOff = reg.varOff.shiftedRight(shift)
                reg.umin >>= shift
                reg.umax >>= shift
                reg.markUnbounded32()
                reg.updateBoundsFromTnum()
            }
        case .arsh:
            if is32 {
                reg.s32min >>= Int32(shift)
                reg.s32max >>= Int32(shift)
                reg.varOff = reg.varOff.withSubreg(reg.varOff.subreg.arithmeticShiftedRight(shift, bits: 32))
                reg.u32min = 0
                reg.u32max = .max
                reg.markUnbounded64()
                reg.updateBoundsFromTnum()
            } else {
                reg.smin >>= Int64(shift)
                reg.smax >>= Int64(shift)
                reg.varOff = reg.varOff.arithmeticShiftedRight(shift, bits: 64)
                reg.umin = 0
                reg.umax = .max
                reg.markUnbounded32()
                reg.updateBoundsFromTnum()
            }
        default:
            break
        }
        if insnIs32 {
            reg.zeroExtend32()
        }
        reg.syncBounds()
    }

    private func add32(_ r: inout RegisterState, _ s: RegisterState) {
        let (smin, o1) = r.s32min.addingReportingOverflow(s.s32min)
        let (smax, o2) = r.s32max.addingReportingOverflow(s.s32max)
        if o1 || o2 {
            r.s32min = .min
            r.s32max = .max
        } else {
            r.s32min = smin
            r.s32max = smax
        }
        let (umin, o3) = r.u32min.addingReportingOverflow(s.u32min)
        let (umax, o4) = r.u32max.addingReportingOverflow(s.u32max)
        if o3 != o4 || (o3 && (umin > umax)) {
            r.u32min = 0
            r.u32max = .max
        } else {
            r.u32min = umin
            r.u32max = umax
        }
    }

    private func add64(_ r: inout RegisterState, _ s: RegisterState) {
        let (smin, o1) = r.smin.addingReportingOverflow(s.smin)
        let (smax, o2) = r.smax.addingReportingOverflow(s.smax)
        if o1 || o2 {
            r.smin = .min
            r.smax = .max
        } else {
            r.smin = smin
            r.smax = smax
        }
        let (umin, o3) = r.umin.addingReportingOverflow(s.umin)
        let (umax, o4) = r.umax.addingReportingOverflow(s.umax)
        if o3 != o4 || (o3 && umin > umax) {
            r.umin = 0
            r.umax = .max
        } else {
            r.umin = umin
            r.umax = umax
        }
    }

    private func sub32(_ r: inout RegisterState, _ s: RegisterState) {
        let (smin, o1) = r.s32min.subtractingReportingOverflow(s.s32max)
        let (smax, o2) = r.s32max.subtractingReportingOverflow(s.s32min)
        if o1 || o2 {
            r.s32min = .min
            r.s32max = .max
        } else {
            r.s32min = smin
            r.s32max = smax
        }
        if r.u32min < s.u32max {
            r.u32min = 0
            r.u32max = .max
        } else {
            r.u32min = r.u32min - s.u32max
            r.u32max = r.u32max - s.u32min
        }
    }

    private func sub64(_ r: inout RegisterState, _ s: RegisterState) {
        let (smin, o1) = r.smin.subtractingReportingOverflow(s.smax)
        let (smax, o2) = r.smax.subtractingReportingOverflow(s.smin)
        if o1 || o2 {
            r.smin = .min
            r.smax = .max
        } else {
            r.smin = smin
            r.smax = smax
        }
        if r.umin < s.umax {
            r.umin = 0
            r.umax = .max
        } else {
            r.umin = r.umin - s.umax
            r.umax = r.umax - s.umin
        }
    }

    private func mul32(_ r: inout RegisterState, _ s: RegisterState) {
        let (umax, o1) = r.u32max.multipliedReportingOverflow(by: s.u32max)
        let (umin, o2) = r.u32min.multipliedReportingOverflow(by: s.u32min)
        if o1 || o2 {
            r.u32min = 0
            r.u32max = .max
        } else {
            r.u32min = umin
            r.u32max = umax
        }
        let products = [
            r.s32min.multipliedReportingOverflow(by: s.s32min), r.s32min.multipliedReportingOverflow(by: s.s32max),
            r.s32max.multipliedReportingOverflow(by: s.s32min), r.s32max.multipliedReportingOverflow(by: s.s32max),
        ]
        if products.contains(where: { $0.overflow }) {
            r.s32min = .min
            r.s32max = .max
        } else {
            r.s32min = products.map(\.partialValue).min()!
            r.s32max = products.map(\.partialValue).max()!
        }
    }

    private func mul64(_ r: inout RegisterState, _ s: RegisterState) {
        let (umax, o1) = r.umax.multipliedReportingOverflow(by: s.umax)
        let (umin, o2) = r.umin.multipliedReportingOverflow(by: s.umin)
        if o1 || o2 {
            r.umin = 0
            r.umax = .max
        } else {
            r.umin = umin
            r.umax = umax
        }
        let products = [
            r.smin.multipliedReportingOverflow(by: s.smin), r.smin.multipliedReportingOverflow(by: s.smax),
            r.smax.multipliedReportingOverflow(by: s.smin), r.smax.multipliedReportingOverflow(by: s.smax),
        ]
        if products.contains(where: { $0.overflow }) {
            r.smin = .min
            r.smax = .max
        } else {
            r.smin = products.map(\.partialValue).min()!
            r.smax = products.map(\.partialValue).max()!
        }
    }

    private func and32(_ r: inout RegisterState, _ s: RegisterState) {
        let low = r.varOff.subreg
        let umaxSource = s.u32max
        r.u32min = UInt32(truncatingIfNeeded: low.value)
        r.u32max = min(r.u32max, umaxSource)
        if Int32(bitPattern: r.u32min) <= Int32(bitPattern: r.u32max) {
            r.s32min = Int32(bitPattern: r.u32min)
            r.s32max = Int32(bitPattern: r.u32max)
        } else {
            r.s32min = .min
            r.s32max = .max
        }
    }

    private func and64(_ r: inout RegisterState, _ s: RegisterState) {
        r.umin = r.varOff.value
        r.umax = min(r.umax, s.umax)
        if Int64(bitPattern: r.umin) <= Int64(bitPattern: r.umax) {
            r.smin = Int64(bitPattern: r.umin)
            r.smax = Int64(bitPattern: r.umax)
        } else {
            r.smin = .min
            r.smax = .max
        }
    }

    private func or32(_ r: inout RegisterState, _ s: RegisterState) {
        let low = r.varOff.subreg
        r.u32min = max(r.u32min, s.u32min)
        r.u32max = UInt32(truncatingIfNeeded: low.value | low.mask)
        if Int32(bitPattern: r.u32min) <= Int32(bitPattern: r.u32max) {
            r.s32min = Int32(bitPattern: r.u32min)
            r.s32max = Int32(bitPattern: r.u32max)
        } else {
            r.s32min = .min
            r.s32max = .max
        }
    }

    private func or64(_ r: inout RegisterState, _ s: RegisterState) {
        r.umin = max(r.umin, s.umin)
        r.umax = r.varOff.value | r.varOff.mask
        if Int64(bitPattern: r.umin) <= Int64(bitPattern: r.umax) {
            r.smin = Int64(bitPattern: r.umin)
            r.smax = Int64(bitPattern: r.umax)
        } else {
            r.smin = .min
            r.smax = .max
        }
    }

    private func xor32(_ r: inout RegisterState, _ s: RegisterState) {
        let low = r.varOff.subreg
        r.u32min = UInt32(truncatingIfNeeded: low.value)
        r.u32max = UInt32(truncatingIfNeeded: low.value | low.mask)
        if Int32(bitPattern: r.u32min) <= Int32(bitPattern: r.u32max) {
            r.s32min = Int32(bitPattern: r.u32min)
            r.s32max = Int32(bitPattern: r.u32max)
        } else {
            r.s32min = .min
            r.s32max = .max
        }
    }

    private func xor64(_ r: inout RegisterState, _ s: RegisterState) {
        r.umin = r.varOff.value
        r.umax = r.varOff.value | r.varOff.mask
        if Int64(bitPattern: r.umin) <= Int64(bitPattern: r.umax) {
            r.smin = Int64(bitPattern: r.umin)
            r.smax = Int64(bitPattern: r.umax)
        } else {
            r.smin = .min
            r.smax = .max
        }
    }

    private func lsh32(_ r: inout RegisterState, _ shift: UInt64) {
        r.s32min = .min
        r.s32max = .max
        if UInt64(r.u32max) > UInt64(1) << (31 - shift) {
            r.u32min = 0
            r.u32max = .max
        } else {
            r.u32min <<= UInt32(shift)
            r.u32max <<= UInt32(shift)
        }
        r.varOff = r.varOff.withSubreg(r.varOff.subreg.shiftedLeft(shift))
        r.updateBoundsFromTnum()
    }

    private func lsh64(_ r: inout RegisterState, _ shift: UInt64) {
        if shift == 32 && r.s32max >= 0 {
            r.smax = Int64(r.s32max) << 32
        } else {
            r.smax = .max
        }
        if shift == 32 && r.s32min >= 0 {
            r.smin = Int64(r.s32min) << 32
        } else {
            r.smin = .min
        }
        if r.umax > UInt64(1) << (63 - shift) {
            r.umin = 0
            r.umax = .max
        } else {
            r.umin <<= shift
            r.umax <<= shift
        }
    }

    // MARK: Pointers

    func pointerArithmetic(
        _ state: inout VerifierState, dst: Int, _ destination: RegisterState, _ source: RegisterState, _ op: ALUOp,
        is32: Bool, srcRegister: Int, at index: Int
    ) throws(VerifierError) {
        if destination.type != .scalar && source.type != .scalar {
            if case .sub = op, options.privileged {
                state.regs[dst] = .unknownScalar()
                if is32 { state.regs[dst].zeroExtend32(); state.regs[dst].syncBounds() }
                return
            }
            throw Rejections.pointerPointer(dst, op.text, at: index)
        }
        let pointerIsDestination = destination.type != .scalar
        let pointer = pointerIsDestination ? destination : source
        let offsetReg = pointerIsDestination ? source : destination
        let scalarRegister = pointerIsDestination ? srcRegister : dst
        if scalarRegister >= 0 { markPrecise(&state, registers: 1 << UInt16(scalarRegister)) }
        if is32 {
            if case .sub = op, options.privileged {
                state.regs[dst] = .unknownScalar()
                state.regs[dst].zeroExtend32()
                state.regs[dst].syncBounds()
                return
            }
            throw Rejections.pointer32(dst, at: index)
        }
        if pointer.maybeNull {
            throw Rejections.pointerArithmetic(dst, pointer.typeName, at: index)
        }
        let known = offsetReg.varOff.isConstant
        let value = offsetReg.smin
        switch pointer.type {
        case .context, .mapValue, .mapKey, .stack, .packetMeta, .packet, .memory, .ringbufMemory, .function:
            break
        case .mapPointer:
            if known && value == 0, case .add = op { break }
            throw Rejections.pointerArithmetic(dst, pointer.typeName, at: index)
        default:
            throw Rejections.pointerArithmetic(dst, pointer.typeName, at: index)
        }
        switch op {
        case .add, .sub: break
        case .and, .or, .xor: throw Rejections.pointerOperator(dst, op.text, bitwise: true, at: index)
        default: throw Rejections.pointerOperator(dst, op.text, bitwise: false, at: index)
        }
        if (known && (offsetReg.smin != offsetReg.smax || offsetReg.umin != offsetReg.umax))
            || offsetReg.smin > offsetReg.smax || offsetReg.umin > offsetReg.umax
        {
            state.regs[dst] = .unknownScalar()
            return
        }
        try checkSaneOffset(offsetReg, pointer.typeName, at: index)
        try checkSaneOffset(pointer, pointer.typeName, at: index)
        var result = pointer
        result.markUnbounded32()
        switch op {
        case .add:
            let (sum, overflow) = pointer.offset.addingReportingOverflow(Int32(truncatingIfNeeded: value))
            if known && !overflow && Int64(Int32(truncatingIfNeeded: value)) == value {
                result.offset = sum
                break
            }
            add64Pointer(&result, pointer, offsetReg)
            if pointer.type.isPacket {
                result.id = nextID()
                result.range = 0
            }
        case .sub:
            if !pointerIsDestination { throw Rejections.subtractPointerFromScalar(dst, at: index) }
            if pointer.type == .stack { throw Rejections.subtractFromStack(dst, at: index) }
            let (difference, overflow) = pointer.offset.subtractingReportingOverflow(Int32(truncatingIfNeeded: value))
            if known && !overflow && Int64(Int32(truncatingIfNeeded: value)) == value {
                result.offset = difference
                break
            }
            sub64Pointer(&result, pointer, offsetReg)
            if pointer.type.isPacket {
                result.id = nextID()
                if offsetReg.smin < 0 { result.range = 0 }
            }
        default:
            break
        }
        try checkSaneOffset(result, pointer.typeName, at: index)
        result.syncBounds()
        // Pointer registers carry no 32-bit bounds.
        state.regs[dst] = result
    }

    private func add64Pointer(_ r: inout RegisterState, _ p: RegisterState, _ s: RegisterState) {
        let (smin, o1) = p.smin.addingReportingOverflow(s.smin)
        let (smax, o2) = p.smax.addingReportingOverflow(s.smax)
        if o1 || o2 { r.smin = .min; r.smax = .max } else { r.smin = smin; r.smax = smax }
        let (umin, o3) = p.umin.addingReportingOverflow(s.umin)
        let (umax, o4) = p.umax.addingReportingOverflow(s.umax)
        if o3 || o4 { r.umin = 0; r.umax = .max } else { r.umin = umin; r.umax = umax }
        r.varOff = p.varOff + s.varOff
    }

    private func sub64Pointer(_ r: inout RegisterState, _ p: RegisterState, _ s: RegisterState) {
        let (smin, o1) = p.smin.subtractingReportingOverflow(s.smax)
        let (smax, o2) = p.smax.subtractingReportingOverflow(s.smin)
        if o1 || o2 { r.smin = .min; r.smax = .max } else { r.smin = smin; r.smax = smax }
        if p.umin < s.umax { r.umin = 0; r.umax = .max } else { r.umin = p.umin - s.umax; r.umax = p.umax - s.umin }
        r.varOff = p.varOff - s.varOff
    }

    /// `check_reg_sane_offset`.
    func checkSaneOffset(_ reg: RegisterState, _ typeName: String, at index: Int) throws(VerifierError) {
        let known = reg.varOff.isConstant
        let value = Int64(bitPattern: reg.varOff.value)
        if known && (value >= maxVariableOffset || value <= -maxVariableOffset) {
            throw Rejections.offsetTooLarge(typeName, value, at: index)
        }
        if Int64(reg.offset) >= maxVariableOffset || Int64(reg.offset) <= -maxVariableOffset {
            throw Rejections.fixedOffsetTooLarge(typeName, reg.offset, at: index)
        }
        if reg.smin == .min { throw Rejections.unboundedMin(typeName, at: index) }
        if reg.smin >= maxVariableOffset || reg.smin <= -maxVariableOffset {
            throw Rejections.pointerOffsetOutOfBounds(typeName, reg.smin, at: index)
        }
    }
}
