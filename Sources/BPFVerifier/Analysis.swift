import BPFCore
import BPFRuntime

/// One run of the verifier over one program: the kernel's `do_check` — a depth-first
/// walk of every path, with states saved at pruning points so that a path reaching a
/// state no more general than one already verified stops there.
final class Analysis {
    let program: Program
    let insns: [DecodedInstruction]
    let type: ProgramType
    var maps: [VerifierMap]
    let options: VerifierOptions
    var flow: ControlFlow!
    var statistics = VerifierStatistics()

    /// Saved states per instruction.
    var explored: [[Checkpoint]]
    var storedStates = 0
    /// Branches waiting to be explored.
    var pending: [(VerifierState, Int)] = []
    var idGenerator: UInt32 = 0
    var jumpsProcessed = 0
    var previousJumpsProcessed = 0
    var previousInstructionsProcessed = 0
    /// The deepest stack each function uses.
    var stackDepth: [Int] = []
    /// The calls between functions seen (caller, callee), for the combined stack size.
    var calls: Set<[Int]> = []
    /// The state the error was found in, for the report.
    var failingState: VerifierState?
    /// Index of an inner map description for each map-in-map.
    var innerMapIndex: [Int: Int] = [:]

    init(program: Program, type: ProgramType, maps: [VerifierMap], options: VerifierOptions) {
        self.program = program
        self.insns = program.decoded
        self.type = type
        self.maps = maps
        self.options = options
        self.explored = Array(repeating: [], count: program.decoded.count)
        for (index, map) in maps.enumerated() {
            if let inner = map.inner {
                innerMapIndex[index] = self.maps.count
                self.maps.append(VerifierMap(inner))
            }
        }
    }

    func nextID() -> UInt32 {
        idGenerator += 1
        return idGenerator
    }

    // MARK: The walk

    func run() throws(VerifierError) {
        flow = try ControlFlow(program: program, privileged: options.privileged)
        stackDepth = Array(repeating: 0, count: flow.functions.count)
        var state = VerifierState(frames: [FrameState(function: 0, callsite: -1, frameNumber: 0)])
        state.regs[1] = RegisterState.pointer(.context)
        var index = 0
        while true {
            do {
                let finished = try step(&state, &index)
                if !finished { continue }
            } catch {
                failingState = state
                throw error
            }
            // The path ended (exit or pruned): go on with a pending branch.
            updateBranchCounts(state.parent)
            guard let (next, at) = pending.popLast() else { break }
            state = next
            index = at
        }
        try checkStackDepth()
    }

    /// Verifies instruction `index` of the current path and moves to the next; returns
    /// true when the path is finished.
    func step(_ state: inout VerifierState, _ index: inout Int) throws(VerifierError) -> Bool {
        statistics.processedInstructions += 1
        if statistics.processedInstructions > options.complexityLimit {
            throw Rejections.tooLarge(statistics.processedInstructions)
        }
        if flow.prunePoints[index] {
            if try isStateVisited(&state, index) {
                statistics.prunedPaths += 1
                return true
            }
        }
        let insn = insns[index]
        let spec = InstructionSet.spec(for: insn.operation)
        switch spec.form {
        case .aluImmediate, .aluRegister, .aluUnary:
            try checkALU(&state, insn, spec, at: index)
            record(&state, index, register: Int(insn.dst))
            index += 1
        case .load, .loadAcquire:
            try checkRegisterReadable(state, Int(insn.src), at: index)
            try checkWritableRegister(Int(insn.dst), at: index)
            let signExtend = insn.operation == .ldxsb || insn.operation == .ldxsh || insn.operation == .ldxsw
            let slot = stackSlot(state, register: Int(insn.src), offset: Int(insn.offset))
            try checkMemoryAccess(
                &state, register: Int(insn.src), offset: Int(insn.offset), size: spec.accessSize, write: false,
                valueRegister: Int(insn.dst), signExtend: signExtend, at: index)
            record(&state, index, register: Int(insn.dst), stack: slot)
            index += 1
        case .storeImmediate:
            try checkRegisterReadable(state, Int(insn.dst), at: index)
            let slot = stackSlot(state, register: Int(insn.dst), offset: Int(insn.offset))
            try checkMemoryAccess(
                &state, register: Int(insn.dst), offset: Int(insn.offset), size: spec.accessSize, write: true,
                valueRegister: -1, storedImmediate: insn.immediate, at: index)
            record(&state, index, register: -1, stack: slot)
            index += 1
        case .storeRegister, .storeRelease:
            try checkRegisterReadable(state, Int(insn.src), at: index)
            try checkRegisterReadable(state, Int(insn.dst), at: index)
            let slot = stackSlot(state, register: Int(insn.dst), offset: Int(insn.offset))
            try checkMemoryAccess(
                &state, register: Int(insn.dst), offset: Int(insn.offset), size: spec.accessSize, write: true,
                valueRegister: Int(insn.src), at: index)
            record(&state, index, register: -1, stack: slot)
            index += 1
        case .atomic:
            try checkAtomic(&state, insn, spec, at: index)
            record(&state, index, register: -1)
            index += 1
        case .loadImmediate64:
            try checkLoadImmediate(&state, insn, at: index)
            record(&state, index, register: Int(insn.dst))
            index += 2
        case .loadAbsolute, .loadIndirect:
            try checkLegacyLoad(&state, insn, at: index)
            record(&state, index, register: 0)
            index += 1
        case .jumpAlways, .jumpLong:
            jumpsProcessed += 1
            if insn.operation == .mayGoto {
                // may_goto: both ways; the jump is taken when the loop budget is spent.
                var other = state
                other.mayGotoDepth += 1
                try pushBranch(other, at: Int(insn.offset), from: index, taken: true)
                state.mayGotoDepth += 1
                index += 1
            } else {
                index = Int(insn.offset)
            }
        case .jumpImmediate, .jumpRegister:
            jumpsProcessed += 1
            try checkConditionalJump(&state, insn, &index)
        case .callHelper:
            let callback = try checkHelperCall(&state, insn, at: index)
            record(&state, index, register: 0)
            index = callback ?? index + 1
        case .callLocal:
            try checkLocalCall(&state, insn, at: index)
            index = Int(insn.offset)
        case .callKfunc:
            throw Rejections.unsupported("kernel function calls (kfuncs) are not supported", at: index)
        case .callx:
            throw Rejections.unknownOpcode(0x8d, at: index)
        case .exit:
            return try checkExit(&state, &index)
        }
        return false
    }

    func record(_ state: inout VerifierState, _ index: Int, register: Int, taken: Bool? = nil, stack: (Int, Int)? = nil) {
        let frame = state.currentFrame
        let value = register >= 0 ? state.frames[frame].regs[register] : nil
        state.path = PathNode(
            instruction: index, register: register, frame: frame, value: value, taken: taken, previous: state.path,
            stackSlot: stack?.1 ?? -1, stackFrame: stack?.0 ?? 0)
    }

    /// The stack slot a load or store through `register` at `offset` reaches, when fixed.
    func stackSlot(_ state: VerifierState, register: Int, offset: Int) -> (Int, Int)? {
        let base = state.regs[register]
        guard base.type == .stack, base.varOff.isConstant else { return nil }
        let off = offset + Int(base.offset) + Int(Int64(bitPattern: base.varOff.value))
        guard off < 0 && off >= -512 else { return nil }
        return (frameIndex(state, base), (-off - 1) / 8)
    }

    func pushBranch(_ state: VerifierState, at index: Int, from: Int, taken: Bool) throws(VerifierError) {
        var copy = state
        copy.path = PathNode(
            instruction: from, register: -1, frame: state.currentFrame, value: nil, taken: taken, previous: state.path)
        state.parent?.branches += 1
        pending.append((copy, index))
        if pending.count > 8192 { throw Rejections.jumpSequenceTooComplex(pending.count, at: from) }
    }

    func updateBranchCounts(_ checkpoint: Checkpoint?) {
        var current = checkpoint
        while let node = current {
            node.branches -= 1
            if node.branches > 0 { break }
            current = node.parent
        }
    }

    // MARK: Registers

    func checkRegisterReadable(_ state: VerifierState, _ register: Int, at index: Int) throws(VerifierError) {
        if state.regs[register].type == .notInit { throw Rejections.notReadable(register, at: index) }
    }

    func checkWritableRegister(_ register: Int, at index: Int) throws(VerifierError) {
        if register == 10 { throw Rejections.framePointerReadOnly(at: index) }
    }

    // MARK: Exit

    func checkExit(_ state: inout VerifierState, _ index: inout Int) throws(VerifierError) -> Bool {
        let at = index
        if state.currentFrame > 0 {
            // Return from a function (or a callback) to the caller.
            let callee = state.frames[state.currentFrame]
            try checkRegisterReadable(state, 0, at: at)
            let r0 = callee.regs[0]
            if r0.type == .stack && Int(r0.frame) == callee.frameNumber {
                throw Rejections.stackPointerToCaller(at: at)
            }
            if callee.isCallback {
                markPrecise(&state, registers: 1)
                if r0.type != .scalar || r0.smin < 0 || r0.smax > 1 {
                    throw Rejections.callbackReturn(Self.describeScalar(r0, range: "[0, 1]"), at: at)
                }
            }
            state.frames.removeLast()
            let frame = state.currentFrame
            if callee.isCallback {
                state.frames[frame].regs[0] = .unknownScalar()
            } else {
                state.frames[frame].regs[0] = r0
            }
            for r in 1...5 { state.frames[frame].regs[r] = .notInitialized }
            record(&state, at, register: 0)
            index = callee.callsite + 1
            return false
        }
        if let _ = state.heldLock {
            throw Rejections.lockHeld(prefix: "BPF_EXIT instruction in main prog", at: at)
        }
        let leaks = state.references.filter { $0.kind == .pointer }
        if !leaks.isEmpty {
            throw Rejections.referenceLeak(leaks, prefix: "BPF_EXIT instruction in main prog", at: at)
        }
        try checkRegisterReadable(state, 0, at: at)
        if returnRange != nil { markPrecise(&state, registers: 1) }
        try checkReturnValue(state.regs[0], at: at)
        return true
    }

    static func describeScalar(_ reg: RegisterState, range: String) -> String {
        if reg.type != .scalar { return "is not a known value (\(reg.typeName))" }
        if reg.varOff.isUnknown { return "has unknown scalar value should have been in \(range)" }
        return "has smin=\(reg.smin) smax=\(reg.smax) should have been in \(range)"
    }

    /// The return values some program types must keep to (`check_return_code`).
    var returnRange: (Int64, Int64)? {
        switch type {
        case .cgroupSkb: (0, 3)
        case .cgroupSock, .sockOps, .cgroupDevice, .cgroupSysctl, .cgroupSockopt, .cgroupSockAddr: (0, 1)
        case .skLookup: (0, 1)
        case .netfilter: (0, 1)
        default: nil
        }
    }

    func checkReturnValue(_ r0: RegisterState, at index: Int) throws(VerifierError) {
        guard let (low, high) = returnRange else { return }
        if r0.type != .scalar {
            throw Rejections.returnValue("is not a known value (\(r0.typeName))", at: index)
        }
        if r0.smin < low || r0.smax > high {
            throw Rejections.returnValue(Self.describeScalar(r0, range: "[\(low), \(high)]"), at: index)
        }
    }

    // MARK: Stack depth over calls

    func checkStackDepth() throws(VerifierError) {
        // Longest chain of calls from the main function, by rounded stack size.
        var callees: [Int: Set<Int>] = [:]
        for pair in calls { callees[pair[0], default: []].insert(pair[1]) }
        func rounded(_ depth: Int) -> Int { (depth + 15) / 16 * 16 }
        func walk(_ function: Int, _ depth: Int, _ frames: Int, _ seen: Set<Int>) throws(VerifierError) {
            let total = depth + rounded(stackDepth[function])
            if total > 512 { throw Rejections.stackTooLarge(calls: frames, size: total) }
            for callee in (callees[function] ?? []).sorted() where !seen.contains(callee) {
                try walk(callee, total, frames + 1, seen.union([callee]))
            }
        }
        try walk(0, 0, 1, [0])
    }
}
