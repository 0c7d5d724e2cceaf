import BPFCore

/// The checks the kernel makes before it interprets anything (`check_subprogs`,
/// `check_cfg`), and the static facts the interpretation uses: functions, pruning
/// points and which registers are live before each instruction.
struct ControlFlow {
    struct Function {
        let start: Int
        let end: Int  // exclusive
    }

    let functions: [Function]
    /// Function index of each instruction.
    let functionOf: [Int]
    /// Instructions where states are saved and compared (`mark_prune_point`).
    let prunePoints: [Bool]
    /// Registers (bit per register) whose value may be read before being written, from
    /// each instruction on (`live_regs_before`).
    let liveBefore: [UInt16]

    /// Checks on raw slots the kernel makes before `Program` validation would: opcodes,
    /// `lddw` pairs, call destinations, jumps and the last instruction of each function.
    static func checkRaw(_ instructions: [Instruction]) -> VerifierError? {
        let count = instructions.count
        guard count > 0 else { return Rejections.lastInstructionNotExit(at: 0) }
        // Function starts: 0 and every local call or function-address target.
        var starts: Set<Int> = [0]
        var secondSlots: Set<Int> = []
        var index = 0
        while index < count {
            let instruction = instructions[index]
            if instruction.opcode == 0x18 {
                secondSlots.insert(index + 1)
                if instruction.src == OpcodeField.pseudoFunc {
                    let target = index + Int(instruction.immediate) + 1
                    if target < 0 || target >= count { return Rejections.callToInvalidDestination(at: index) }
                    starts.insert(target)
                }
                index += 2
                continue
            }
            if instruction.opcode == 0x85 && instruction.src == OpcodeField.pseudoCall {
                let target = index + Int(instruction.immediate) + 1
                if target < 0 || target >= count { return Rejections.callToInvalidDestination(at: index) }
                starts.insert(target)
            }
            index += 1
        }
        let sorted = starts.sorted()
        for (position, start) in sorted.enumerated() {
            let end = position + 1 < sorted.count ? sorted[position + 1] : count
            var i = start
            while i < end {
                let instruction = instructions[i]
                let cls = instruction.opcode & 0x07
                let op = instruction.opcode & 0xf0
                if (cls == 0x05 || cls == 0x06) && op != 0x80 && op != 0x90 && instruction.opcode != 0x8d {
                    let target: Int
                    if instruction.opcode == 0x06 {
                        target = i + Int(instruction.immediate) + 1
                    } else {
                        target = i + Int(instruction.offset) + 1
                    }
                    if target < start || target >= end { return Rejections.jumpOutOfRange(from: i, to: target) }
                }
                i += instruction.opcode == 0x18 ? 2 : 1
            }
            let last = end - 1
            let code = instructions[last].opcode
            if secondSlots.contains(last) || (code != 0x95 && code != 0x05 && code != 0x06) {
                return Rejections.lastInstructionNotExit(at: last)
            }
        }
        index = 0
        while index < count {
            let instruction = instructions[index]
            if instruction.opcode == 0x8d || InstructionSet.byOpcode[Int(instruction.opcode)].isEmpty {
                return Rejections.unknownOpcode(instruction.opcode, at: index)
            }
            if instruction.opcode == 0x18 {
                if instruction.src > 6 { return Rejections.make("invalid_lddw", "unrecognized bpf_ld_imm64 insn", at: index, "This 64-bit load has an unknown pseudo source.") }
                index += 2
            } else {
                index += 1
            }
        }
        return nil
    }

    init(program: Program, privileged: Bool) throws(VerifierError) {
        let decoded = program.decoded
        let count = decoded.count
        let entries = program.functionEntries
        var functions: [Function] = []
        var functionOf = Array(repeating: 0, count: count)
        for (position, start) in entries.enumerated() {
            let end = position + 1 < entries.count ? entries[position + 1] : count
            functions.append(Function(start: start, end: end))
            for i in start..<end { functionOf[i] = position }
        }
        // Jumps stay in their function; each function ends with exit or a jump.
        for function in functions {
            for i in function.start..<function.end {
                let insn = decoded[i]
                if Self.isJump(insn.operation) {
                    let target = Int(insn.offset)
                    if target < function.start || target >= function.end {
                        throw Rejections.jumpOutOfRange(from: i, to: target)
                    }
                }
            }
            let last = decoded[function.end - 1].operation
            if last != .exit && last != .ja && last != .ja32 {
                throw Rejections.lastInstructionNotExit(at: function.end - 1)
            }
        }
        // Depth-first search from the start, following calls into functions.
        var state = Array(repeating: UInt8(0), count: count)  // 0 new, 1 on stack, 2 done
        var prune = Array(repeating: false, count: count)
        var stack: [(Int, [Int], Int)] = []  // (insn, successors, next successor)
        func successors(_ i: Int) -> [Int] {
            let insn = decoded[i]
            switch insn.operation {
            case .exit: return []
            case .ja, .ja32:
                return [Int(insn.offset)]
            case .callLocal:
                return [i + 1, Int(insn.offset)]
            case .lddw:
                if insn.pseudo == OpcodeField.pseudoFunc, let load = program.pseudoLoads.first(where: { $0.index == i }),
                    let target = load.functionTarget
                {
                    return [i + 2, target]
                }
                return [i + 2]
            default:
                if Self.isConditional(insn.operation) || insn.operation == .mayGoto {
                    return [i + 1, Int(insn.offset)]
                }
                return [i + 1]
            }
        }
        stack.append((0, successors(0), 0))
        state[0] = 1
        while !stack.isEmpty {
            let top = stack.count - 1
            let (node, next, position) = stack[top]
            if position < next.count {
                stack[top].2 += 1
                let target = next[position]
                guard target < count else { continue }
                if state[target] == 0 {
                    state[target] = 1
                    stack.append((target, successors(target), 0))
                } else if state[target] == 1 && !privileged && decoded[node].operation != .callLocal {
                    throw Rejections.backEdge(from: node, to: target)
                }
            } else {
                state[node] = 2
                stack.removeLast()
            }
        }
        var i = 0
        while i < count {
            if state[i] == 0 { throw Rejections.unreachable(i) }
            i += decoded[i].operation == .lddw ? 2 : 1
        }
        // Pruning points, as check_cfg marks them.
        for i in 0..<count {
            let insn = decoded[i]
            switch insn.operation {
            case .ja, .ja32:
                prune[Int(insn.offset)] = true
            case .callLocal:
                prune[i] = true
                if i + 1 < count { prune[i + 1] = true }
            case .callHelper, .callKfunc:
                if i + 1 < count { prune[i + 1] = true }
                if [181, 164, 170, 201].contains(insn.immediate) { prune[i] = true }
            case .mayGoto:
                prune[i] = true
            default:
                if Self.isConditional(insn.operation) {
                    prune[i] = true
                    prune[Int(insn.offset)] = true
                }
            }
        }
        self.functions = functions
        self.functionOf = functionOf
        self.prunePoints = prune
        self.liveBefore = Self.liveness(decoded, successors: successors)
    }

    static func isConditional(_ operation: Operation) -> Bool {
        operation.rawValue >= Operation.jeq64Imm.rawValue && operation.rawValue <= Operation.jsle64Reg.rawValue
            || operation.rawValue >= Operation.jeq32Imm.rawValue && operation.rawValue <= Operation.jsle32Reg.rawValue
    }

    static func isJump(_ operation: Operation) -> Bool {
        isConditional(operation) || operation == .ja || operation == .ja32 || operation == .mayGoto
    }

    /// Registers read and written by an instruction, as bit sets.
    static func useDef(_ insn: DecodedInstruction) -> (use: UInt16, def: UInt16) {
        let dst = UInt16(1) << UInt16(insn.dst)
        let src = UInt16(1) << UInt16(insn.src)
        let spec = InstructionSet.spec(for: insn.operation)
        switch spec.form {
        case .aluImmediate:
            if insn.operation == .mov64Imm || insn.operation == .mov32Imm { return (0, dst) }
            return (dst, dst)
        case .aluRegister:
            switch insn.operation {
            case .mov64Reg, .mov32Reg, .movsx8To64, .movsx16To64, .movsx32To64, .movsx8To32, .movsx16To32:
                return (src, dst)
            default: return (dst | src, dst)
            }
        case .aluUnary: return (dst, dst)
        case .load, .loadAcquire: return (src, dst)
        case .storeImmediate: return (dst, 0)
        case .storeRegister, .storeRelease: return (dst | src, 0)
        case .atomic:
            switch insn.operation {
            case .atomicCmpxchg32, .atomicCmpxchg64: return (dst | src | 1, 1)
            case .atomicAdd32, .atomicOr32, .atomicAnd32, .atomicXor32, .atomicAdd64, .atomicOr64, .atomicAnd64,
                .atomicXor64:
                return (dst | src, 0)
            default: return (dst | src, src)
            }
        case .jumpAlways, .jumpLong: return (0, 0)
        case .jumpImmediate: return (dst, 0)
        case .jumpRegister: return (dst | src, 0)
        case .callHelper, .callLocal, .callKfunc, .callx: return (0b11_1110, 0b11_1111)
        case .exit: return (1, 0)
        case .loadImmediate64: return (0, dst)
        case .loadAbsolute: return (1 << 6, 0b11_1111)
        case .loadIndirect: return ((1 << 6) | src, 0b11_1111)
        }
    }

    static func liveness(_ decoded: [DecodedInstruction], successors: (Int) -> [Int]) -> [UInt16] {
        let count = decoded.count
        var live = Array(repeating: UInt16(0), count: count)
        var uses = Array(repeating: UInt16(0), count: count)
        var defs = Array(repeating: UInt16(0), count: count)
        var next: [[Int]] = Array(repeating: [], count: count)
        for i in 0..<count where decoded[i].operation != .lddwSecondSlot {
            (uses[i], defs[i]) = useDef(decoded[i])
            // Calls continue at the next instruction; the callee's liveness is its own.
            if decoded[i].operation == .callLocal {
                next[i] = [i + 1]
            } else if decoded[i].operation == .lddw {
                next[i] = [i + 2]
            } else {
                next[i] = successors(i).filter { $0 < count }
            }
        }
        var changed = true
        while changed {
            changed = false
            for i in stride(from: count - 1, through: 0, by: -1) where decoded[i].operation != .lddwSecondSlot {
                var out: UInt16 = 0
                for s in next[i] { out |= live[s] }
                let value = uses[i] | (out & ~defs[i])
                if value != live[i] {
                    live[i] = value
                    changed = true
                }
            }
        }
        return live
    }
}
