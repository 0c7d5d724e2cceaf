/// State pruning (`is_state_visited`, `states_equal`): a path that reaches a pruning
/// point in a state no more general than one saved there, whose paths were all verified,
/// is safe and stops. A path that reaches a state saved on its own way, unchanged, loops.
extension Analysis {
    /// Consistent renaming of ids between an old and a current state (`check_ids`).
    struct IDMap {
        var pairs: [(UInt32, UInt32)] = []
        var temporary: UInt32 = 1 << 31

        mutating func check(_ old: UInt32, _ current: UInt32) -> Bool {
            if old == 0 && current == 0 { return true }
            if old == 0 || current == 0 { return false }
            for (a, b) in pairs {
                if a == old { return b == current }
                if b == current { return false }
            }
            pairs.append((old, current))
            return true
        }

        mutating func checkScalar(_ old: UInt32, _ current: UInt32) -> Bool {
            var old = old
            var current = current
            if old == 0 {
                temporary += 1
                old = temporary
            }
            if current == 0 {
                temporary += 1
                current = temporary
            }
            return check(old, current)
        }
    }

    func isStateVisited(_ state: inout VerifierState, _ index: Int) throws(VerifierError) -> Bool {
        var addNew =
            (jumpsProcessed - previousJumpsProcessed >= 2
                && statistics.processedInstructions - previousInstructionsProcessed >= 8)
        var position = 0
        while position < explored[index].count {
            let checkpoint = explored[index][position]
            if checkpoint.branches > 0 {
                // On the current path (or a pending sibling's): an identical state loops.
                if maybeLooping(checkpoint.state, state) && statesEqual(checkpoint.state, state, at: index, exact: true) {
                    throw Rejections.infiniteLoop(at: index)
                }
                // Inside a loop, save states less often.
                if jumpsProcessed - previousJumpsProcessed < 20
                    && statistics.processedInstructions - previousInstructionsProcessed < 100
                {
                    addNew = false
                }
            } else if statesEqual(checkpoint.state, state, at: index, exact: false) {
                checkpoint.hits += 1
                propagatePrecision(from: checkpoint.state, to: &state)
                return true
            }
            // A miss. States that keep missing are forgotten, as the kernel forgets them.
            if addNew { checkpoint.misses += 1 }
            if checkpoint.misses > checkpoint.hits * 3 + 3 {
                explored[index].remove(at: position)
                storedStates -= 1
                continue
            }
            position += 1
        }
        guard addNew else { return false }
        previousJumpsProcessed = jumpsProcessed
        previousInstructionsProcessed = statistics.processedInstructions
        var saved = state
        saved.path = nil
        saved.parent = nil
        let checkpoint = Checkpoint(state: saved, parent: state.parent, instruction: index, pathNode: state.path)
        explored[index].append(checkpoint)
        state.parent = checkpoint
        storedStates += 1
        statistics.totalStates += 1
        statistics.peakStates = max(statistics.peakStates, storedStates)
        statistics.maxStatesPerInstruction = max(statistics.maxStatesPerInstruction, explored[index].count)
        return false
    }

    /// A cheap first look (`states_maybe_looping`): the current frame's registers hold
    /// the same values.
    func maybeLooping(_ old: VerifierState, _ current: VerifierState) -> Bool {
        guard old.frames.count == current.frames.count else { return false }
        let a = old.frames[old.frames.count - 1].regs
        let b = current.frames[current.frames.count - 1].regs
        for r in 0..<11 {
            if a[r].type != b[r].type || a[r].varOff != b[r].varOff || a[r].offset != b[r].offset || a[r].aux != b[r].aux {
                return false
            }
        }
        return true
    }

    func statesEqual(_ old: VerifierState, _ current: VerifierState, at index: Int, exact: Bool) -> Bool {
        guard old.frames.count == current.frames.count else { return false }
        guard old.mayGotoDepth == current.mayGotoDepth || !exact else { return false }
        var ids = IDMap()
        for frame in 0..<old.frames.count {
            let a = old.frames[frame]
            let b = current.frames[frame]
            if a.callsite != b.callsite || a.isCallback != b.isCallback { return false }
            // Registers live at this point of this frame.
            let live: UInt16
            if frame == old.frames.count - 1 {
                live = flow.liveBefore[index]
            } else {
                let returnPoint = old.frames[frame + 1].callsite + 1
                live = (returnPoint < flow.liveBefore.count ? flow.liveBefore[returnPoint] : 0x7ff) & 0b11_1100_0000 | 0x400
            }
            for r in 0...10 {
                if !exact && live & (1 << UInt16(r)) == 0 { continue }
                if !registerSafe(a.regs[r], b.regs[r], exact: exact, ids: &ids) { return false }
            }
            if !stackSafe(a, b, exact: exact, ids: &ids) { return false }
        }
        // References must match, up to renaming.
        if old.references.count != current.references.count { return false }
        for (a, b) in zip(old.references, current.references) {
            switch (a.kind, b.kind) {
            case (.pointer, .pointer):
                if !ids.check(a.id, b.id) { return false }
            case (.lock(let pa, let ma), .lock(let pb, let mb)):
                if ma != mb || !ids.check(pa, pb) { return false }
            default:
                return false
            }
        }
        return true
    }

    func rangeWithin(_ old: RegisterState, _ current: RegisterState) -> Bool {
        old.umin <= current.umin && old.umax >= current.umax && old.smin <= current.smin && old.smax >= current.smax
            && old.u32min <= current.u32min && old.u32max >= current.u32max && old.s32min <= current.s32min
            && old.s32max >= current.s32max
    }

    func registersExact(_ old: RegisterState, _ current: RegisterState, ids: inout IDMap) -> Bool {
        var a = old
        var b = current
        a.id = 0
        b.id = 0
        a.refObjID = 0
        b.refObjID = 0
        a.precise = false
        b.precise = false
        return a == b && ids.check(old.id, current.id) && ids.check(old.refObjID, current.refObjID)
    }

    /// `regsafe`: whether every value `current` allows, `old` allowed.
    func registerSafe(_ old: RegisterState, _ current: RegisterState, exact: Bool, ids: inout IDMap) -> Bool {
        if old.type == .notInit { return !exact || current.type == .notInit }
        if exact { return registersExact(old, current, ids: &ids) }
        if old.type != current.type || old.maybeNull != current.maybeNull || old.readOnly != current.readOnly {
            return false
        }
        switch old.type {
        case .scalar:
            if !old.precise { return true }
            return ids.checkScalar(old.id, current.id) && rangeWithin(old, current) && old.varOff.contains(current.varOff)
        case .mapValue, .mapKey, .memory, .ringbufMemory:
            return old.offset == current.offset && old.aux == current.aux && rangeWithin(old, current)
                && old.varOff.contains(current.varOff) && ids.check(old.id, current.id)
                && ids.check(old.refObjID, current.refObjID)
        case .packet, .packetMeta:
            if old.range > current.range { return false }
            if old.offset != current.offset { return false }
            if !ids.check(old.id, current.id) { return false }
            return rangeWithin(old, current) && old.varOff.contains(current.varOff)
        case .stack:
            return registersExact(old, current, ids: &ids)
        default:
            return registersExact(old, current, ids: &ids)
        }
    }

    /// `stacksafe`.
    func stackSafe(_ old: FrameState, _ current: FrameState, exact: Bool, ids: inout IDMap) -> Bool {
        for slot in 0..<old.stack.count {
            let a = old.stack[slot]
            let b = slot < current.stack.count ? current.stack[slot] : StackSlot()
            if exact {
                if a.types != b.types { return false }
                if a.isSpill && !registersExact(a.spilled, b.spilled, ids: &ids) { return false }
                continue
            }
            if a.types == 0 { continue }
            if a.isFullSpill && a.spilled.type == .scalar && !b.isSpill {
                // A spilled scalar against plain data: compare with an unknown scalar,
                // or zero for all-zero bytes.
                var fake = RegisterState.unknownScalar()
                if (0..<8).allSatisfy({ b[$0] == .zero }) { fake = .constant(0) }
                if (0..<8).allSatisfy({ b[$0] == .misc || b[$0] == .zero || b[$0] == .invalid }) {
                    if registerSafe(a.spilled, fake, exact: false, ids: &ids) { continue }
                }
                return false
            }
            for byte in 0..<8 {
                let t = a[byte]
                if t == .invalid { continue }
                if options.privileged && t == .misc { continue }
                if slot >= current.stack.count { return false }
                let u = b[byte]
                if t == .zero && u == .zero { continue }
                if t == .misc && (u == .zero || u == .misc) { continue }
                if t != u { return false }
            }
            if a.isSpill {
                if !registerSafe(a.spilled, b.spilled, exact: false, ids: &ids) { return false }
            }
        }
        return true
    }
}
