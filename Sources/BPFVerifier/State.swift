/// What one byte of a stack slot holds (`enum bpf_stack_slot_type`).
enum SlotType: UInt8 {
    /// `STACK_INVALID`: never written.
    case invalid = 0
    /// `STACK_SPILL`: part of a register saved whole (its state is kept).
    case spill = 1
    /// `STACK_MISC`: some data.
    case misc = 2
    /// `STACK_ZERO`: known zero.
    case zero = 3
}

/// One 8-byte stack slot (`struct bpf_stack_state`): the type of each byte, indexed as the
/// kernel does (byte `i` of the slot is at the lower address for higher `i`), and the
/// spilled register when the slot holds one.
struct StackSlot: Hashable, Sendable {
    var types: UInt64 = 0
    var spilled = RegisterState.notInitialized

    subscript(byte: Int) -> SlotType {
        get { SlotType(rawValue: UInt8(truncatingIfNeeded: types >> UInt64(byte * 8)))! }
        set {
            let shift = UInt64(byte * 8)
            types = (types & ~(0xff << shift)) | (UInt64(newValue.rawValue) << shift)
        }
    }

    /// The last byte (index 7) holds a spill: the whole slot is a spilled register.
    var isSpill: Bool { self[7] == .spill }
    var isFullSpill: Bool { (0..<8).allSatisfy { self[$0] == .spill } }
    var isSpilledScalar: Bool { isSpill && spilled.type == .scalar }
}

/// One function's frame (`struct bpf_func_state`).
struct FrameState: Hashable, Sendable {
    var regs: [RegisterState]
    var stack: [StackSlot] = []
    /// The call instruction in the caller (-1 for the main frame).
    var callsite: Int
    /// The index of the function in `Analysis.functions`.
    var function: Int
    var frameNumber: Int
    /// Set for a callback frame (bpf_loop and friends): its return value is checked
    /// against `[0, 1]` and it returns to after the helper call.
    var isCallback = false

    init(function: Int, callsite: Int, frameNumber: Int) {
        regs = Array(repeating: .notInitialized, count: 11)
        self.function = function
        self.callsite = callsite
        self.frameNumber = frameNumber
        var fp = RegisterState.pointer(.stack)
        fp.frame = UInt8(frameNumber)
        regs[10] = fp
    }

    /// Bytes of stack in use (`allocated_stack`).
    var allocatedStack: Int { stack.count * 8 }

    mutating func growStack(to bytes: Int) {
        let slots = (bytes + 7) / 8
        if slots > stack.count { stack += Array(repeating: StackSlot(), count: slots - stack.count) }
    }
}

/// A reference the program holds and must release (`struct bpf_reference_state`).
struct Reference: Hashable, Sendable {
    enum Kind: Hashable, Sendable {
        /// A pointer from an acquiring helper (bpf_ringbuf_reserve).
        case pointer
        /// A held bpf_spin_lock: the map value's pointer id and the map.
        case lock(pointerID: UInt32, map: Int)
    }
    var kind: Kind
    var id: UInt32
    /// The instruction that acquired it.
    var instruction: Int
}

/// The state of one path through the program (`struct bpf_verifier_state`).
struct VerifierState: Sendable {
    var frames: [FrameState]
    var references: [Reference] = []
    /// Where this path's state was last saved for pruning, for the branch counts.
    var parent: Checkpoint?
    /// The instructions this path went through, newest first.
    var path: PathNode?
    /// The may_goto nesting on this path.
    var mayGotoDepth = 0

    var currentFrame: Int { frames.count - 1 }

    var regs: [RegisterState] {
        get { frames[frames.count - 1].regs }
        _modify { yield &frames[frames.count - 1].regs }
    }

    var heldLock: Reference? {
        references.first { if case .lock = $0.kind { return true } else { return false } }
    }
}

/// A state saved at a pruning point (`struct bpf_verifier_state_list`), with the count of
/// paths below it still being explored; a state with paths pending is on the current
/// path (or a sibling's), so reaching it again with the same state is an infinite loop.
final class Checkpoint: @unchecked Sendable {
    var state: VerifierState
    let parent: Checkpoint?
    let instruction: Int
    /// The last step of the path when the state was saved: where, walking a path back,
    /// this checkpoint sits (for precision marks).
    let pathNode: PathNode?
    var branches = 1
    var hits = 0
    var misses = 0

    init(state: VerifierState, parent: Checkpoint?, instruction: Int, pathNode: PathNode?) {
        self.state = state
        self.parent = parent
        self.instruction = instruction
        self.pathNode = pathNode
    }
}

/// One step of a path: the instruction, and the register it wrote with its new state.
final class PathNode: @unchecked Sendable {
    let instruction: Int32
    let register: Int8
    let frame: Int8
    let value: RegisterState?
    /// For a conditional jump: whether it was taken.
    let taken: Bool?
    /// For a load or store at a constant stack offset: the slot (`spi`) and its frame.
    let stackSlot: Int16
    let stackFrame: Int8
    let previous: PathNode?

    init(
        instruction: Int, register: Int, frame: Int, value: RegisterState?, taken: Bool?, previous: PathNode?,
        stackSlot: Int = -1, stackFrame: Int = 0
    ) {
        self.instruction = Int32(instruction)
        self.register = Int8(register)
        self.frame = Int8(frame)
        self.value = value
        self.taken = taken
        self.previous = previous
        self.stackSlot = Int16(stackSlot)
        self.stackFrame = Int8(stackFrame)
    }
}
