import BPFCore
import BPFRuntime

/// Every refusal's wording, in one place. The first line is the kernel's (Linux 6.18,
/// kernel/bpf/verifier.c), so it can be searched for; the explanation is bpfsim's.
enum Rejections {
    static func make(_ code: String, _ message: String, _ details: [String] = [], at index: Int?, _ explanation: String)
        -> VerifierError
    {
        VerifierError(code: code, message: message, details: details, index: index, explanation: explanation)
    }

    // MARK: Program structure

    static func invalidProgram(_ error: ProgramError) -> VerifierError {
        let index = error.instructionIndex
        switch error.code {
        case "jump_out_of_range", "jump_into_lddw":
            return make("cfg", error.message, at: index, "A jump or call leaves the program.")
        case "unknown_opcode", "invalid_modifier":
            return make("unknown_opcode", "unknown opcode", [error.message], at: index, "This is not an instruction the kernel knows.")
        case "invalid_register":
            return make("invalid_register", "R11 is invalid", [error.message], at: index, "Registers are r0 to r10.")
        case "write_to_r10":
            return make("frame_pointer", "frame pointer is read only", at: index, "r10 is the frame pointer; no instruction may write it.")
        case "lddw_incomplete", "falls_off_end":
            return make("cfg", "last insn is not an exit or jmp", at: index, "Execution could run past the last instruction.")
        case "invalid_pseudo_source", "lddw_bad_second_slot":
            return make("invalid_lddw", "unrecognized bpf_ld_imm64 insn", at: index, "This 64-bit load is malformed.")
        default:
            return make("invalid_instruction", error.message, at: index, "The instruction is malformed.")
        }
    }

    static func unknownOpcode(_ opcode: UInt8, at index: Int) -> VerifierError {
        make(
            "unknown_opcode", "unknown opcode \(hex2(opcode))", at: index,
            "The kernel has no instruction with this opcode (callx, 0x8d, is bpfsim's and the conformance suite's only).")
    }

    static func jumpOutOfRange(from: Int, to: Int) -> VerifierError {
        make(
            "cfg", "jump out of range from insn \(from) to \(to)", at: from,
            "A jump leaves its function: every jump must land on an instruction of the same function.")
    }

    static func callToInvalidDestination(at index: Int) -> VerifierError {
        make("cfg", "call to invalid destination", at: index, "A bpf-to-bpf call leaves the program.")
    }

    static func lastInstructionNotExit(at index: Int) -> VerifierError {
        make(
            "cfg", "last insn is not an exit or jmp", at: index,
            "A function's last instruction must be an exit or a jump, so execution cannot run past its end.")
    }

    static func unreachable(_ index: Int) -> VerifierError {
        make(
            "unreachable", "unreachable insn \(index)", at: index,
            "No path from the program's start reaches this instruction; the kernel refuses dead code.")
    }

    static func backEdge(from: Int, to: Int) -> VerifierError {
        make(
            "back_edge", "back-edge from insn \(from) to \(to)", at: from,
            "Loops are refused for an unprivileged loader (bounded loops need CAP_BPF).")
    }

    static func infiniteLoop(at index: Int) -> VerifierError {
        make(
            "infinite_loop", "infinite loop detected at insn \(index)", at: index,
            "The program came back to this instruction in exactly the state it had before, so it can loop forever. Make the loop's condition depend on a value that changes each iteration.")
    }

    static func tooLarge(_ processed: Int) -> VerifierError {
        make(
            "too_complex", "BPF program is too large. Processed \(processed) insn", at: nil,
            "The verifier walks every path; this program has more than the kernel's 1,000,000 instructions of paths. Bound loops more tightly, or split the work (tail calls, bpf_loop).")
    }

    static func jumpSequenceTooComplex(_ count: Int, at index: Int) -> VerifierError {
        make(
            "too_complex", "The sequence of \(count) jumps is too complex.", at: index,
            "Too many branches are pending at once.")
    }

    static func stackTooLarge(calls: Int, size: Int) -> VerifierError {
        make(
            "stack_depth", "combined stack size of \(calls) calls is \(size). Too large", at: nil,
            "Each function's stack is rounded up to 16 bytes and the chain of calls may use 512 bytes in all. Use less stack in the functions that call each other, or a per-CPU array map as scratch space.")
    }

    static func callStackTooDeep(_ frames: Int, at index: Int) -> VerifierError {
        make(
            "call_depth", "the call stack of \(frames) frames is too deep", at: index,
            "At most 8 functions may be active at once.")
    }

    // MARK: Registers

    static func notReadable(_ register: Int, at index: Int) -> VerifierError {
        make(
            "uninitialized_register", "R\(register) !read_ok", at: index,
            register == 0
                ? "r0 is read (returned) before anything was written to it on this path."
                : "r\(register) is read before anything was written to it on this path (calls clobber r1-r5).")
    }

    static func invalidRegister(_ register: Int, at index: Int) -> VerifierError {
        make("invalid_register", "R\(register) is invalid", at: index, "Registers are r0 to r10.")
    }

    static func reservedFields(_ what: String, at index: Int) -> VerifierError {
        make("reserved_fields", "\(what) uses reserved fields", at: index, "A field this instruction does not use is not zero.")
    }

    static func framePointerReadOnly(at index: Int) -> VerifierError {
        make("frame_pointer", "frame pointer is read only", at: index, "r10 is the frame pointer; no instruction may write it.")
    }

    static func invalidShift(_ amount: Int64, at index: Int) -> VerifierError {
        make("invalid_shift", "invalid shift \(amount)", at: index, "A shift by a constant must be less than the operand's width.")
    }

    static func divisionByZero(at index: Int) -> VerifierError {
        make("division_by_zero", "div by zero", at: index, "Division or modulo by the constant 0.")
    }

    // MARK: Pointer arithmetic

    static func pointerArithmetic(_ register: Int, _ typeName: String, at index: Int) -> VerifierError {
        let nullable = typeName.hasSuffix("_or_null")
        return make(
            "pointer_arithmetic",
            "R\(register) pointer arithmetic on \(typeName) prohibited\(nullable ? ", null-check it first" : "")",
            at: index,
            nullable
                ? "The pointer may be NULL: compare it with 0 and only do arithmetic on the non-NULL branch."
                : "The kernel does not allow arithmetic on this kind of pointer.")
    }

    static func pointerOperator(_ register: Int, _ op: String, bitwise: Bool, at index: Int) -> VerifierError {
        make(
            "pointer_arithmetic",
            bitwise
                ? "R\(register) bitwise operator \(op) on pointer prohibited"
                : "R\(register) pointer arithmetic with \(op) operator prohibited", at: index,
            "Only + and - are allowed on pointers.")
    }

    static func pointer32(_ register: Int, at index: Int) -> VerifierError {
        make("pointer_arithmetic", "R\(register) 32-bit pointer arithmetic prohibited", at: index, "Pointer arithmetic must be 64-bit.")
    }

    static func pointerPointer(_ register: Int, _ op: String, at index: Int) -> VerifierError {
        make("pointer_arithmetic", "R\(register) pointer \(op) pointer prohibited", at: index, "Two pointers may only be subtracted.")
    }

    static func subtractPointerFromScalar(_ register: Int, at index: Int) -> VerifierError {
        make("pointer_arithmetic", "R\(register) tried to subtract pointer from scalar", at: index, "A number minus a pointer is not allowed.")
    }

    static func subtractFromStack(_ register: Int, at index: Int) -> VerifierError {
        make(
            "pointer_arithmetic", "R\(register) subtraction from stack pointer prohibited", at: index,
            "A variable may not be subtracted from a stack pointer; add a negative constant instead.")
    }

    static func unboundedMin(_ typeName: String, at index: Int) -> VerifierError {
        make(
            "unbounded_offset", "math between \(typeName) pointer and register with unbounded min value is not allowed",
            at: index,
            "A value added to a pointer may be negative without bound. Check it against a limit (if (x < N)) or mask it (x &= N-1) before adding it.")
    }

    static func offsetTooLarge(_ typeName: String, _ value: Int64, at index: Int) -> VerifierError {
        make(
            "unbounded_offset", "math between \(typeName) pointer and \(value) is not allowed", at: index,
            "The constant added to the pointer is too large (the limit is 2^29).")
    }

    static func pointerOffsetOutOfBounds(_ typeName: String, _ value: Int64, at index: Int) -> VerifierError {
        make(
            "unbounded_offset", "value \(value) makes \(typeName) pointer be out of bounds", at: index,
            "The offset added to the pointer may be too large (the limit is 2^29).")
    }

    static func fixedOffsetTooLarge(_ typeName: String, _ value: Int32, at index: Int) -> VerifierError {
        make(
            "unbounded_offset", "\(typeName) pointer offset \(value) is not allowed", at: index,
            "The pointer's offset is too large (the limit is 2^29).")
    }

    // MARK: Memory

    static func invalidMemoryAccess(_ register: Int, _ typeName: String, at index: Int) -> VerifierError {
        let explanation: String
        if typeName.hasSuffix("_or_null") {
            explanation =
                "r\(register) may be NULL here (a map lookup or reservation can fail). Compare it with 0 first and use it only on the non-NULL branch."
        } else if typeName == "scalar" {
            explanation = "r\(register) holds a number, not a pointer the verifier can check; memory is reached only through typed pointers."
        } else if typeName == "pkt_end" {
            explanation = "data_end marks the end of the packet; it can be compared with, not read through."
        } else {
            explanation = "r\(register) does not point to memory the program may access this way."
        }
        return make("invalid_memory_access", "R\(register) invalid mem access '\(typeName)'", at: index, explanation)
    }

    static func packetAccess(offset: Int, size: Int, register: Int, id: UInt32, range: Int32, at index: Int)
        -> VerifierError
    {
        make(
            "packet_bounds",
            "invalid access to packet, off=\(offset) size=\(size), R\(register)(id=\(id),off=\(offset),r=\(range))",
            ["R\(register) offset is outside of the packet"], at: index,
            range <= 0
                ? "The program reads the packet without first checking that it is long enough. Compare data + \(offset + size) with data_end (if (data + \(offset + size) > data_end) return ...) before the access."
                : "The packet is known to be \(range) bytes long here, but the access reaches byte \(offset + size). Check data + \(offset + size) against data_end first.")
    }

    static func packetMinNegative(_ register: Int, at index: Int) -> VerifierError {
        make(
            "packet_bounds",
            "R\(register) min value is negative, either use unsigned index or do a if (index >=0) check.", at: index,
            "The offset added to the packet pointer may be negative.")
    }

    static func mapValueAccess(valueSize: Int, offset: Int64, size: Int, register: Int, which: String, at index: Int)
        -> VerifierError
    {
        make(
            "map_value_bounds", "invalid access to map value, value_size=\(valueSize) off=\(offset) size=\(size)",
            ["R\(register) \(which) value is outside of the allowed memory range"], at: index,
            "The access reaches outside the \(valueSize)-byte map value. Check the offset against the value's size first.")
    }

    static func memoryAccess(memSize: Int, offset: Int64, size: Int, register: Int, which: String, at index: Int)
        -> VerifierError
    {
        make(
            "memory_bounds", "invalid access to memory, mem_size=\(memSize) off=\(offset) size=\(size)",
            ["R\(register) \(which) value is outside of the allowed memory range"], at: index,
            "The access reaches outside the \(memSize) bytes this pointer covers.")
    }

    static func minNegative(_ register: Int, at index: Int) -> VerifierError {
        make(
            "unbounded_offset",
            "R\(register) min value is negative, either use unsigned index or do a if (index >=0) check.", at: index,
            "The variable offset may be negative; check it (or use an unsigned type) before the access.")
    }

    static func unboundedAccess(_ register: Int, at index: Int) -> VerifierError {
        make(
            "unbounded_offset", "R\(register) unbounded memory access, make sure to bounds check any such access", at: index,
            "The variable offset has no upper bound; compare it with the size of the object first.")
    }

    static func stackAccess(_ kind: String, register: Int, offset: Int64, size: Int, varOff: Tnum?, at index: Int)
        -> VerifierError
    {
        let message =
            varOff.map {
                "invalid variable-offset\(kind) stack R\(register) var_off=\($0.description) off=\(offset) size=\(size)"
            } ?? "invalid\(kind) stack R\(register) off=\(offset) size=\(size)"
        return make(
            "stack_bounds", message, at: index,
            "Each function has 512 bytes of stack, at offsets -512 to -1 from r10; this access reaches outside it.")
    }

    static func misalignedStack(varOff: Tnum, regOffset: Int32, offset: Int, size: Int, at index: Int) -> VerifierError {
        make(
            "misaligned_stack", "misaligned stack access off \(varOff.isConstant ? String(Int64(bitPattern: varOff.value)) : varOff.description)+\(regOffset)+\(offset) size \(size)",
            at: index, "Stack accesses must be aligned to their size.")
    }

    static func invalidStackRead(offset: Int, byte: Int, size: Int, at index: Int) -> VerifierError {
        make(
            "uninitialized_stack", "invalid read from stack off \(offset)+\(byte) size \(size)", at: index,
            "These stack bytes were not written on this path.")
    }

    static func invalidSpillSize(at index: Int) -> VerifierError {
        make("stack_spill", "invalid size of register spill", at: index, "A pointer may only be saved to the stack whole (8 bytes).")
    }

    static func invalidFillSize(at index: Int) -> VerifierError {
        make(
            "stack_spill", "invalid size of register fill", at: index,
            "A pointer saved on the stack may only be loaded back whole (8 bytes).")
    }

    static func contextAccess(offset: Int, size: Int, at index: Int) -> VerifierError {
        make(
            "context_access", "invalid bpf_context access off=\(offset) size=\(size)", at: index,
            "This program type may not access its context at this offset with this size (fields are read with their own size; most cannot be written).")
    }

    static func modifiedContext(_ register: Int, offset: Int32, at index: Int) -> VerifierError {
        make(
            "context_access", "dereference of modified ctx ptr R\(register) off=\(offset) disallowed", at: index,
            "The context must be accessed through r1 (or a copy) with the field offset in the instruction, not through a pointer moved by arithmetic.")
    }

    static func variableContext(varOff: Tnum, offset: Int, size: Int, at index: Int) -> VerifierError {
        make(
            "context_access", "variable ctx access var_off=\(varOff.description) off=\(offset) size=\(size)", at: index,
            "The context may only be accessed at constant offsets.")
    }

    static func mapWriteForbidden(valueSize: Int, offset: Int64, size: Int, at index: Int) -> VerifierError {
        make(
            "read_only_map", "write into map forbidden, value_size=\(valueSize) off=\(offset) size=\(size)", at: index,
            "The map is read-only to programs (const global data, BPF_F_RDONLY_PROG).")
    }

    static func cannotWritePacket(at index: Int) -> VerifierError {
        make("packet_write", "cannot write into packet", at: index, "This program type may not write the packet directly.")
    }

    static func atomicNotAllowed(_ register: Int, _ typeName: String, at index: Int) -> VerifierError {
        make(
            "atomic", "BPF_ATOMIC stores into R\(register) \(typeName) is not allowed", at: index,
            "Atomic operations work on the stack and map values only.")
    }

    static func spinLockDirectAccess(at index: Int) -> VerifierError {
        make(
            "spin_lock", "bpf_spin_lock cannot be accessed directly by load/store", at: index,
            "Use bpf_spin_lock() and bpf_spin_unlock(), never loads or stores, on the lock.")
    }

    // MARK: Helpers and calls

    static func invalidFunction(_ name: String, _ id: Int32, at index: Int) -> VerifierError {
        make("unknown_helper", "invalid func \(name)#\(id)", at: index, "The kernel has no helper with this id.")
    }

    static func helperNotAllowed(_ name: String, _ id: Int32, _ type: String, at index: Int) -> VerifierError {
        make(
            "helper_not_allowed", "program of this type cannot use helper \(name)#\(id)", at: index,
            "\(name) is not available to \(type) programs.")
    }

    static func gplOnly(at index: Int) -> VerifierError {
        make(
            "gpl_only", "cannot call GPL-restricted function from non-GPL compatible program", at: index,
            "This helper is GPL-only; declare a GPL-compatible license.")
    }

    static func argumentType(_ register: Int, _ typeName: String, expected: [String], at index: Int) -> VerifierError {
        make(
            "helper_argument", "R\(register) type=\(typeName) expected=\(expected.joined(separator: ", "))", at: index,
            typeName.hasSuffix("_or_null")
                ? "r\(register) may be NULL; check it against 0 before passing it."
                : "The helper expects \(expected.joined(separator: " or ")) in r\(register).")
    }

    static func mapTypeMismatch(_ mapType: MapType, _ name: String, _ id: Int32, at index: Int) -> VerifierError {
        make(
            "helper_map", "cannot pass map_type \(mapType.rawValue) into func \(name)#\(id)", at: index,
            "\(name) does not work on \(mapType.kernelName) maps.")
    }

    static func sizeNegative(_ register: Int, at index: Int) -> VerifierError {
        make(
            "helper_size", "R\(register) min value is negative, either use unsigned or 'var &= const'", at: index,
            "The size passed to the helper may be negative.")
    }

    static func zeroSize(_ register: Int, umin: UInt64, umax: UInt64, at index: Int) -> VerifierError {
        make(
            "helper_size", "R\(register) invalid zero-sized read: u64=[\(umin),\(umax)]", at: index,
            "The size passed to the helper may be zero; make sure it is at least 1.")
    }

    static func unboundedSize(_ register: Int, at index: Int) -> VerifierError {
        make(
            "helper_size", "R\(register) unbounded memory access, use 'var &= const' or 'if (var < const)'", at: index,
            "The size passed to the helper has no upper bound.")
    }

    static func notConstant(_ register: Int, at index: Int) -> VerifierError {
        make("helper_size", "R\(register) is not a known constant'", at: index, "This size must be a constant.")
    }

    static func referenceLeak(_ references: [Reference], prefix: String, at index: Int) -> VerifierError {
        let lines = references.map { "Unreleased reference id=\($0.id) alloc_insn=\($0.instruction)" }
        return make(
            "reference_leak", lines[0], Array(lines.dropFirst()) + ["\(prefix) would lead to reference leak"],
            at: index,
            "A ring-buffer record reserved at instruction \(references[0].instruction) is neither submitted nor discarded on this path. Call bpf_ringbuf_submit() or bpf_ringbuf_discard() on every path.")
    }

    static func lockHeld(prefix: String, at index: Int) -> VerifierError {
        make(
            "spin_lock", "\(prefix) cannot be used inside bpf_spin_lock-ed region", at: index,
            "A bpf_spin_lock is still held here; unlock it first on every path.")
    }

    static func callWhileLocked(at index: Int) -> VerifierError {
        make(
            "spin_lock", "function calls are not allowed while holding a lock", at: index,
            "Only bpf_spin_unlock may be called while a bpf_spin_lock is held.")
    }

    static func releaseUnreferenced(_ register: Int, at index: Int) -> VerifierError {
        make(
            "reference", "R\(register) must be referenced when passed to release function", at: index,
            "Pass the pointer bpf_ringbuf_reserve returned (checked against NULL), unchanged.")
    }

    static func releaseOffset(_ register: Int, at index: Int) -> VerifierError {
        make(
            "reference", "R\(register) must have zero-offset when passed to release func or trusted arg to kfunc", at: index,
            "Pass the record pointer exactly as bpf_ringbuf_reserve returned it.")
    }

    static func lockNotConstant(_ register: Int, at index: Int) -> VerifierError {
        make(
            "spin_lock",
            "R\(register) doesn't have constant offset. bpf_spin_lock has to be at the constant offset", at: index,
            "Pass the address of the lock field of a map value.")
    }

    static func lockNoBTF(_ name: String, at index: Int) -> VerifierError {
        make("spin_lock", "map '\(name)' has to have BTF in order to use bpf_spin_lock", at: index, "Spin locks need the map's BTF.")
    }

    static func lockNotInMap(_ name: String, at index: Int) -> VerifierError {
        make("spin_lock", "map '\(name)' has no valid bpf_spin_lock", at: index, "The map value has no struct bpf_spin_lock.")
    }

    static func lockWrongOffset(_ offset: Int64, _ lockOffset: Int, at index: Int) -> VerifierError {
        make(
            "spin_lock", "off \(offset) doesn't point to 'struct bpf_spin_lock' that is at \(lockOffset)", at: index,
            "Pass the address of the value's bpf_spin_lock field.")
    }

    static func twoLocks(at index: Int) -> VerifierError {
        make("spin_lock", "Locking two bpf_spin_locks are not allowed", at: index, "Only one spin lock may be held at a time.")
    }

    static func unlockWithoutLock(at index: Int) -> VerifierError {
        make("spin_lock", "bpf_spin_unlock without taking a lock", at: index, "This path did not take the lock it releases.")
    }

    static func unlockDifferent(at index: Int) -> VerifierError {
        make("spin_lock", "bpf_spin_unlock of different lock", at: index, "The lock released is not the one held.")
    }

    static func returnValue(_ description: String, at index: Int) -> VerifierError {
        make(
            "return_value", "At program exit the register R0 \(description)", at: index,
            "This program type's return value must be in a fixed range.")
    }

    static func callbackReturn(_ description: String, at index: Int) -> VerifierError {
        make(
            "return_value", "At callback return the register R0 \(description)", at: index,
            "A bpf_loop or bpf_for_each_map_elem callback must return 0 (continue) or 1 (stop).")
    }

    static func ldAbsNotAllowed(at index: Int) -> VerifierError {
        make(
            "ld_abs", "BPF_LD_[ABS|IND] instructions not allowed for this program type", at: index,
            "Legacy packet loads exist only for socket filters and tc programs.")
    }

    static func ldAbsContext(at index: Int) -> VerifierError {
        make(
            "ld_abs", "at the time of BPF_LD_ABS|IND R6 != pointer to skb", at: index,
            "Legacy packet loads read the packet through r6, which must hold the context.")
    }

    static func missingFuncInfo(at index: Int) -> VerifierError {
        make("btf", "missing btf func_info", at: index, "Callbacks need the program's BTF function info.")
    }

    static func directValueAccess(at index: Int) -> VerifierError {
        make(
            "map_value_bounds", "invalid access to map value pointer", at: index,
            "A direct map value address must lie inside the value.")
    }

    static func unsupported(_ what: String, at index: Int?) -> VerifierError {
        make("unsupported", what, at: index, "bpfsim's verifier does not model this yet; the kernel's may accept it.")
    }

    static func stackPointerToCaller(at index: Int) -> VerifierError {
        make(
            "stack_escape", "cannot return stack pointer to the caller frame", at: index,
            "A function may not return a pointer into its own stack frame.")
    }

    static func spillStackPointerToCaller(at index: Int) -> VerifierError {
        make(
            "stack_escape", "cannot spill pointers to stack into stack frame of the caller", at: index,
            "A function may not save a pointer to its stack into its caller's frame.")
    }

    static func hex2(_ value: UInt8) -> String {
        let text = String(value, radix: 16)
        return text.count == 1 ? "0" + text : text
    }
}
