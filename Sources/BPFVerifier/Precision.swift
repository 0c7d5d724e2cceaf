import BPFCore

/// Precision tracking (`mark_chain_precision`): when a check depends on a scalar's exact
/// bounds (a branch decided by them, a size, an offset added to a pointer), the scalar and
/// every value it was computed from are marked precise, back along the path and in the
/// states saved on it, so pruning compares those values and ignores the others.
extension Analysis {
    /// Marks registers (bit set) and stack slots (frame index, slot) of the current frame
    /// precise, and what they came from.
    func markPrecise(_ state: inout VerifierState, registers: UInt16, slots: [(Int, Int)] = []) {
        var regs: UInt16 = 0
        let frame = state.currentFrame
        for r in 0..<11 where registers & (1 << UInt16(r)) != 0 && state.frames[frame].regs[r].type == .scalar {
            if !state.frames[frame].regs[r].precise {
                state.frames[frame].regs[r].precise = true
                regs |= 1 << UInt16(r)
            }
        }
        var stack: Set<Int> = []
        for (f, slot) in slots where f == frame && slot < state.frames[f].stack.count {
            if state.frames[f].stack[slot].isSpilledScalar && !state.frames[f].stack[slot].spilled.precise {
                state.frames[f].stack[slot].spilled.precise = true
                stack.insert(slot)
            }
        }
        for (f, slot) in slots where f != frame {
            if slot < state.frames[f].stack.count && state.frames[f].stack[slot].isSpilledScalar {
                state.frames[f].stack[slot].spilled.precise = true
            }
            markAllPrecise(&state)
            return
        }
        if regs == 0 && stack.isEmpty { return }
        backtrack(&state, regs: regs, slots: stack, frame: frame)
    }

    /// Walks the path back from the current state, turning the set of values needing
    /// precision into the values they came from, and marking them in each saved state met.
    private func backtrack(_ state: inout VerifierState, regs startRegs: UInt16, slots startSlots: Set<Int>, frame: Int) {
        var regs = startRegs
        var slots = startSlots
        var node = state.path
        var checkpoint = state.parent
        while regs != 0 || !slots.isEmpty {
            // Apply marks to every checkpoint sitting at this point of the path.
            while let cp = checkpoint, cp.pathNode === node {
                guard cp.state.frames.count == frame + 1 else {
                    markAllPrecise(from: cp)
                    return
                }
                var changed = false
                for r in 0..<11 where regs & (1 << UInt16(r)) != 0 {
                    if cp.state.frames[frame].regs[r].type == .scalar && !cp.state.frames[frame].regs[r].precise {
                        cp.state.frames[frame].regs[r].precise = true
                        changed = true
                    }
                }
                for slot in slots where slot < cp.state.frames[frame].stack.count {
                    if cp.state.frames[frame].stack[slot].isSpilledScalar && !cp.state.frames[frame].stack[slot].spilled.precise {
                        cp.state.frames[frame].stack[slot].spilled.precise = true
                        changed = true
                    }
                }
                checkpoint = cp.parent
                // Already precise here, so already precise further back.
                if !changed { return }
            }
            guard let current = node else { return }
            let insn = insns[Int(current.instruction)]
            if Int(current.frame) != frame {
                markAllPrecise(from: checkpoint)
                return
            }
            let dst = UInt16(1) << UInt16(insn.dst)
            let src = UInt16(1) << UInt16(insn.src)
            switch insn.operation {
            case .callLocal, .exit, .callKfunc, .callx:
                markAllPrecise(from: checkpoint)
                return
            case .callHelper:
                if regs & 0b11_1110 != 0 {
                    markAllPrecise(from: checkpoint)
                    return
                }
                regs &= ~1
            case .lddw:
                regs &= ~dst
            case .ldabsb, .ldabsh, .ldabsw, .ldindb, .ldindh, .ldindw:
                regs &= ~1
            default:
                let spec = InstructionSet.spec(for: insn.operation)
                switch spec.form {
                case .aluImmediate:
                    if regs & dst != 0 && (insn.operation == .mov64Imm || insn.operation == .mov32Imm) { regs &= ~dst }
                case .aluRegister:
                    if regs & dst != 0 {
                        switch insn.operation {
                        case .mov64Reg, .mov32Reg, .movsx8To64, .movsx16To64, .movsx32To64, .movsx8To32, .movsx16To32:
                            regs &= ~dst
                            regs |= src
                        default:
                            regs |= src
                        }
                    }
                case .load, .loadAcquire:
                    if regs & dst != 0 {
                        regs &= ~dst
                        if current.stackSlot >= 0 {
                            if Int(current.stackFrame) != frame {
                                markAllPrecise(from: checkpoint)
                                return
                            }
                            slots.insert(Int(current.stackSlot))
                        }
                    }
                case .storeRegister, .storeRelease:
                    if current.stackSlot >= 0 && Int(current.stackFrame) == frame && slots.contains(Int(current.stackSlot)) {
                        slots.remove(Int(current.stackSlot))
                        regs |= src
                    }
                case .storeImmediate:
                    if current.stackSlot >= 0 && Int(current.stackFrame) == frame { slots.remove(Int(current.stackSlot)) }
                case .jumpRegister:
                    if regs & (dst | src) != 0 { regs |= dst | src }
                default:
                    break
                }
            }
            node = current.previous
        }
    }

    /// The fallback when the path cannot be followed back (calls): every scalar precise.
    func markAllPrecise(_ state: inout VerifierState) {
        for f in 0..<state.frames.count {
            for r in 0..<11 where state.frames[f].regs[r].type == .scalar { state.frames[f].regs[r].precise = true }
            for s in 0..<state.frames[f].stack.count where state.frames[f].stack[s].isSpilledScalar {
                state.frames[f].stack[s].spilled.precise = true
            }
        }
        markAllPrecise(from: state.parent)
    }

    func markAllPrecise(from checkpoint: Checkpoint?) {
        var current = checkpoint
        while let cp = current {
            for f in 0..<cp.state.frames.count {
                for r in 0..<11 where cp.state.frames[f].regs[r].type == .scalar { cp.state.frames[f].regs[r].precise = true }
                for s in 0..<cp.state.frames[f].stack.count where cp.state.frames[f].stack[s].isSpilledScalar {
                    cp.state.frames[f].stack[s].spilled.precise = true
                }
            }
            current = cp.parent
        }
    }

    /// After pruning against `old`: what was precise there must be precise here too, so
    /// the states this path saved keep the distinctions that made `old` safe.
    func propagatePrecision(from old: VerifierState, to state: inout VerifierState) {
        guard old.frames.count == state.frames.count else { return }
        let frame = state.currentFrame
        var regs: UInt16 = 0
        var slots: [(Int, Int)] = []
        for f in 0..<old.frames.count {
            for r in 0..<11 where old.frames[f].regs[r].precise && state.frames[f].regs[r].type == .scalar {
                if f == frame { regs |= 1 << UInt16(r) } else { markAllPrecise(&state); return }
            }
            for s in 0..<old.frames[f].stack.count where old.frames[f].stack[s].isSpilledScalar && old.frames[f].stack[s].spilled.precise {
                if s < state.frames[f].stack.count && state.frames[f].stack[s].isSpilledScalar {
                    slots.append((f, s))
                }
            }
        }
        markPrecise(&state, registers: regs, slots: slots)
    }
}
