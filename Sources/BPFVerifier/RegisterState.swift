/// What a register holds, as the kernel's verifier types it (`enum bpf_reg_type`).
enum RegisterType: UInt8, Hashable, Sendable {
    /// `NOT_INIT`: never written, or clobbered by a call.
    case notInit
    /// `SCALAR_VALUE`: a number, with tracked bounds.
    case scalar
    /// `PTR_TO_CTX`: the program's context (`struct xdp_md`, `struct __sk_buff`, ...).
    case context
    /// `CONST_PTR_TO_MAP`: a map, from `lddw` or a map-in-map lookup.
    case mapPointer
    /// `PTR_TO_MAP_VALUE`: into a map value (or global data).
    case mapValue
    /// `PTR_TO_MAP_KEY`: into a map key (callbacks of bpf_for_each_map_elem).
    case mapKey
    /// `PTR_TO_STACK`: into a stack frame.
    case stack
    /// `PTR_TO_PACKET`: into the packet, from `data`.
    case packet
    /// `PTR_TO_PACKET_META`: into the metadata before the packet.
    case packetMeta
    /// `PTR_TO_PACKET_END`: `data_end`; may only be compared.
    case packetEnd
    /// `PTR_TO_MEM`: memory of a known size (`mem_size`).
    case memory
    /// `PTR_TO_MEM | MEM_RINGBUF`: a ring-buffer record from bpf_ringbuf_reserve.
    case ringbufMemory
    /// `PTR_TO_FUNC`: a function of this program (`lddw func`).
    case function
    /// `PTR_TO_SOCK_COMMON` (`skb->sk`), which bpfsim does not follow further.
    case socketCommon

    var isPointer: Bool { self != .notInit && self != .scalar }
    var isPacket: Bool { self == .packet || self == .packetMeta }

    /// The kernel's `reg_type_str` name.
    var kernelName: String {
        switch self {
        case .notInit: "?"
        case .scalar: "scalar"
        case .context: "ctx"
        case .mapPointer: "map_ptr"
        case .mapValue: "map_value"
        case .mapKey: "map_key"
        case .stack: "fp"
        case .packet: "pkt"
        case .packetMeta: "pkt_meta"
        case .packetEnd: "pkt_end"
        case .memory: "mem"
        case .ringbufMemory: "ringbuf_mem"
        case .function: "func"
        case .socketCommon: "sock_common"
        }
    }
}

/// The kernel's `AT_PKT_END` and `BEYOND_PKT_END`: a packet pointer's `range` after a
/// comparison told that it is at, or past, `data_end`.
enum PacketRange {
    static let atEnd: Int32 = -1
    static let beyondEnd: Int32 = -2
}

let maxPacketOffset: UInt64 = 0xffff  // MAX_PACKET_OFF
let maxVariableOffset: Int64 = 1 << 29  // BPF_MAX_VAR_OFF
let maxVariableSize: UInt64 = 1 << 29  // BPF_MAX_VAR_SIZ

/// One register's abstract value (`struct bpf_reg_state`): a type, for pointers a fixed
/// offset and what they point to, and for scalars and the variable part of pointers the
/// bounds: a tnum, signed and unsigned 64-bit ranges and the same for the low 32 bits.
struct RegisterState: Hashable, Sendable {
    var type: RegisterType = .notInit
    /// `PTR_MAYBE_NULL`: a pointer that may be NULL until checked.
    var maybeNull = false
    /// `MEM_RDONLY`: memory the program may only read.
    var readOnly = false
    /// The fixed part of a pointer's offset.
    var offset: Int32 = 0
    var varOff = Tnum.unknown
    var smin = Int64.min
    var smax = Int64.max
    var umin: UInt64 = 0
    var umax = UInt64.max
    var s32min = Int32.min
    var s32max = Int32.max
    var u32min: UInt32 = 0
    var u32max = UInt32.max
    /// Pointers that must be NULL-checked together, packet pointers that share a variable
    /// offset, and scalars copied from one another share an id.
    var id: UInt32 = 0
    /// The reference this pointer carries (ring-buffer records).
    var refObjID: UInt32 = 0
    /// Packet pointers: the bytes known to be in the packet from this pointer's fixed
    /// offset (`range`). Memory: its size. Map pointers and values: the map's index.
    /// Functions: the entry instruction.
    var aux: Int32 = 0
    /// Stack pointers: the frame they point into.
    var frame: UInt8 = 0
    /// A scalar whose exact bounds matter to some later check (`precise`): only these are
    /// compared when pruning; others match any scalar.
    var precise = false

    static let notInitialized = RegisterState()

    static func unknownScalar() -> RegisterState {
        var reg = RegisterState()
        reg.type = .scalar
        return reg
    }

    static func constant(_ value: UInt64) -> RegisterState {
        var reg = RegisterState()
        reg.type = .scalar
        reg.markKnown(value)
        return reg
    }

    static func pointer(_ type: RegisterType, aux: Int32 = 0) -> RegisterState {
        var reg = RegisterState.constant(0)
        reg.type = type
        reg.aux = aux
        return reg
    }

    var range: Int32 {
        get { aux }
        set { aux = newValue }
    }

    var mapIndex: Int { Int(aux) }

    // MARK: Bounds

    mutating func markKnown(_ value: UInt64) {
        varOff = .constant(value)
        smin = Int64(bitPattern: value)
        smax = smin
        umin = value
        umax = value
        s32min = Int32(truncatingIfNeeded: Int64(bitPattern: value))
        s32max = s32min
        u32min = UInt32(truncatingIfNeeded: value)
        u32max = u32min
    }

    mutating func markUnbounded() {
        smin = .min
        smax = .max
        umin = 0
        umax = .max
        s32min = .min
        s32max = .max
        u32min = 0
        u32max = .max
    }

    mutating func markUnbounded64() {
        smin = .min
        smax = .max
        umin = 0
        umax = .max
    }

    mutating func markUnbounded32() {
        s32min = .min
        s32max = .max
        u32min = 0
        u32max = .max
    }

    /// An unknown scalar (`__mark_reg_unknown`): everything but the type forgotten.
    mutating func markUnknown() {
        self = .unknownScalar()
    }

    var isConstant: Bool { type == .scalar && varOff.isConstant }
    var isNullConstant: Bool { type == .scalar && varOff.isConstant && varOff.value == 0 }

    func isConstant(is32: Bool) -> Bool {
        is32 ? varOff.subreg.isConstant : varOff.isConstant
    }

    func constantValue(is32: Bool) -> UInt64 {
        is32 ? varOff.value & 0xffff_ffff : varOff.value
    }

    /// Whether the known-not-NULL pointer types apply (`reg_not_null`).
    var isNotNull: Bool {
        if maybeNull { return false }
        switch type {
        case .mapValue, .mapKey, .stack, .context, .packet, .packetMeta, .packetEnd, .mapPointer, .function,
            .ringbufMemory, .memory:
            return true
        default:
            return false
        }
    }

    /// The kernel's name of this register's type, with `_or_null`, `rdonly_` and the like.
    var typeName: String {
        var name = type.kernelName
        if readOnly { name = "rdonly_" + name }
        if maybeNull { name += "_or_null" }
        return name
    }

    // MARK: Keeping the bounds consistent (reg_bounds_sync)

    mutating func updateBoundsFromTnum() {
        // 64 bits
        smin = max(smin, Int64(bitPattern: varOff.value | (varOff.mask & (1 << 63))))
        smax = min(smax, Int64(bitPattern: varOff.value | (varOff.mask & ~(1 << 63))))
        umin = max(umin, varOff.value)
        umax = min(umax, varOff.value | varOff.mask)
        // 32 bits
        let low = varOff.subreg
        s32min = max(s32min, Int32(bitPattern: UInt32(truncatingIfNeeded: low.value | (low.mask & 0x8000_0000))))
        s32max = min(s32max, Int32(bitPattern: UInt32(truncatingIfNeeded: low.value | (low.mask & 0x7fff_ffff))))
        u32min = max(u32min, UInt32(truncatingIfNeeded: low.value))
        u32max = min(u32max, UInt32(truncatingIfNeeded: low.value | low.mask))
    }

    private mutating func deduce32() {
        if umin >> 32 == umax >> 32 {
            u32min = max(u32min, UInt32(truncatingIfNeeded: umin))
            u32max = min(u32max, UInt32(truncatingIfNeeded: umax))
            if Int32(truncatingIfNeeded: umin) <= Int32(truncatingIfNeeded: umax) {
                s32min = max(s32min, Int32(truncatingIfNeeded: umin))
                s32max = min(s32max, Int32(truncatingIfNeeded: umax))
            }
        }
        if smin >> 32 == smax >> 32 {
            u32min = max(u32min, UInt32(truncatingIfNeeded: smin))
            u32max = min(u32max, UInt32(truncatingIfNeeded: smax))
            if Int32(truncatingIfNeeded: smin) <= Int32(truncatingIfNeeded: smax) {
                s32min = max(s32min, Int32(truncatingIfNeeded: smin))
                s32max = min(s32max, Int32(truncatingIfNeeded: smax))
            }
        }
        // A 64-bit range that crosses one 2^32 boundary, from negative to positive low halves.
        if UInt32(truncatingIfNeeded: umin >> 32) &+ 1 == UInt32(truncatingIfNeeded: umax >> 32)
            && Int32(truncatingIfNeeded: umin) < 0 && Int32(truncatingIfNeeded: umax) >= 0
        {
            s32min = max(s32min, Int32(truncatingIfNeeded: umin))
            s32max = min(s32max, Int32(truncatingIfNeeded: umax))
        }
        if UInt32(truncatingIfNeeded: UInt64(bitPattern: smin) >> 32) &+ 1
            == UInt32(truncatingIfNeeded: UInt64(bitPattern: smax) >> 32)
            && Int32(truncatingIfNeeded: smin) < 0 && Int32(truncatingIfNeeded: smax) >= 0
        {
            s32min = max(s32min, Int32(truncatingIfNeeded: smin))
            s32max = min(s32max, Int32(truncatingIfNeeded: smax))
        }
        if Int32(bitPattern: u32min) <= Int32(bitPattern: u32max) {
            s32min = max(s32min, Int32(bitPattern: u32min))
            s32max = min(s32max, Int32(bitPattern: u32max))
        }
        if UInt32(bitPattern: s32min) <= UInt32(bitPattern: s32max) {
            u32min = max(u32min, UInt32(bitPattern: s32min))
            u32max = min(u32max, UInt32(bitPattern: s32max))
        }
    }

    private mutating func deduce64() {
        if Int64(bitPattern: umin) <= Int64(bitPattern: umax) {
            smin = max(smin, Int64(bitPattern: umin))
            smax = min(smax, Int64(bitPattern: umax))
        }
        if UInt64(bitPattern: smin) <= UInt64(bitPattern: smax) {
            umin = max(umin, UInt64(bitPattern: smin))
            umax = min(umax, UInt64(bitPattern: smax))
        } else {
            // The signed range wraps the unsigned domain; the unsigned range may touch
            // only one of its ends.
            if umax < UInt64(bitPattern: smin) {
                smin = Int64(bitPattern: umin)
                smax = min(smax, Int64(bitPattern: umax))
            } else if UInt64(bitPattern: smax) < umin {
                smin = max(smin, Int64(bitPattern: umin))
                smax = Int64(bitPattern: umax)
            }
        }
    }

    private mutating func deduceMixed() {
        let newUmin = (umin & ~0xffff_ffff) | UInt64(u32min)
        let newUmax = (umax & ~0xffff_ffff) | UInt64(u32max)
        umin = max(umin, newUmin)
        umax = min(umax, newUmax)
        let newSmin = Int64(bitPattern: (UInt64(bitPattern: smin) & ~0xffff_ffff) | UInt64(u32min))
        let newSmax = Int64(bitPattern: (UInt64(bitPattern: smax) & ~0xffff_ffff) | UInt64(u32max))
        smin = max(smin, newSmin)
        smax = min(smax, newSmax)
        if s32min >= 0 && smin >= Int64(Int32.min) && smax <= Int64(Int32.max) {
            smin = Int64(s32min)
            smax = Int64(s32max)
            umin = UInt64(s32min)
            umax = UInt64(s32max)
            varOff = varOff.intersect(.range(UInt64(bitPattern: smin), UInt64(bitPattern: smax)))
        }
    }

    private mutating func boundOffset() {
        let var64 = varOff.intersect(.range(umin, umax))
        let var32 = var64.subreg.intersect(.range(UInt64(u32min), UInt64(u32max)))
        varOff = var64.clearingSubreg | var32
    }

    /// `reg_bounds_sync`.
    mutating func syncBounds() {
        updateBoundsFromTnum()
        deduce32()
        deduce64()
        deduceMixed()
        deduce32()
        deduce64()
        deduceMixed()
        boundOffset()
        updateBoundsFromTnum()
    }

    /// Whether some range is empty: the branch that produced it cannot happen.
    var boundsViolated: Bool {
        umin > umax || smin > smax || u32min > u32max || s32min > s32max
            || !varOff.contains(.constant(varOff.value)) || (varOff.value & varOff.mask) != 0
    }

    // MARK: Casts

    /// `__reg_assign_32_into_64`: the 64-bit bounds of a zero-extended 32-bit value.
    mutating func assign32Into64() {
        umin = UInt64(u32min)
        umax = UInt64(u32max)
        if s32min >= 0 {
            smin = Int64(s32min)
            smax = Int64(s32max)
        } else {
            smin = 0
            smax = Int64(UInt32.max)
        }
    }

    /// `zext_32_to_64`: after a 32-bit operation.
    mutating func zeroExtend32() {
        varOff = varOff.subreg
        assign32Into64()
    }

    /// `coerce_reg_to_size`: the value zero-extended from `size` bytes.
    mutating func truncate(toBytes size: Int) {
        if size >= 8 { return }
        varOff = varOff.truncated(toBytes: size)
        let mask: UInt64 = (UInt64(1) << UInt64(size * 8)) &- 1
        if umin & ~mask == umax & ~mask {
            umin &= mask
            umax &= mask
        } else {
            umin = 0
            umax = mask
        }
        smin = Int64(bitPattern: umin)
        smax = Int64(bitPattern: umax)
        // Below 32 bits the low half was cut too; its bounds come back from the rest.
        if size < 4 { markUnbounded32() }
        syncBounds()
    }

    /// `coerce_reg_to_size_sx`: the value sign-extended from `size` bytes (to 64 bits).
    mutating func signExtend(fromBytes size: Int) {
        let bits = UInt64(size * 8)
        if varOff.isConstant {
            let shift = 64 - bits
            markKnown(UInt64(bitPattern: Int64(bitPattern: varOff.value << shift) >> Int64(shift)))
            return
        }
        let topSmax = size == 1 ? Int64(Int8.max) : size == 2 ? Int64(Int16.max) : Int64(Int32.max)
        let topSmin = -topSmax - 1
        // Keep the bounds when the value already fits the smaller signed type.
        let shift = 64 - bits
        let lowMin = Int64(bitPattern: UInt64(bitPattern: smin) << shift) >> Int64(shift)
        let lowMax = Int64(bitPattern: UInt64(bitPattern: smax) << shift) >> Int64(shift)
        let fits = smin >= topSmin && smax <= topSmax && lowMin == smin && lowMax == smax
        let (newMin, newMax) = fits ? (smin, smax) : (topSmin, topSmax)
        varOff = .unknown
        markUnbounded()
        smin = newMin
        smax = newMax
        if newMin >= 0 {
            umin = UInt64(newMin)
            umax = UInt64(newMax)
        }
        s32min = Int32(newMin)
        s32max = Int32(newMax)
        if newMin >= 0 {
            u32min = UInt32(newMin)
            u32max = UInt32(newMax)
        }
        syncBounds()
    }

    /// `coerce_subreg_to_size_sx`: the low 32 bits sign-extended from `size` bytes, then
    /// zero-extended (movsx8To32, movsx16To32).
    mutating func signExtend32(fromBytes size: Int) {
        let bits = UInt32(size * 8)
        if varOff.subreg.isConstant {
            let low = UInt32(truncatingIfNeeded: varOff.value)
            let shift = 32 - bits
            let extended = UInt32(bitPattern: Int32(bitPattern: low << shift) >> Int32(shift))
            markKnown(UInt64(extended))
            return
        }
        let topSmax: Int32 = size == 1 ? Int32(Int8.max) : Int32(Int16.max)
        let topSmin = -topSmax - 1
        let fits = s32min >= topSmin && s32max <= topSmax
        let (newMin, newMax) = fits ? (s32min, s32max) : (topSmin, topSmax)
        varOff = .unknown
        markUnbounded()
        s32min = newMin
        s32max = newMax
        if newMin >= 0 {
            u32min = UInt32(newMin)
            u32max = UInt32(newMax)
        }
        zeroExtend32()
        syncBounds()
    }

    // MARK: Kernel-style text

    /// The register as the kernel's verifier log prints it: `scalar(smin=0,smax=255)`,
    /// `pkt(off=14,r=14)`, `map_value_or_null(id=1,map=m,ks=4,vs=8)`.
    func description(maps: [VerifierMap]) -> String {
        switch type {
        case .notInit:
            return "?"
        case .scalar:
            if varOff.isConstant {
                let signed = Int64(bitPattern: varOff.value)
                return id != 0 ? "scalar(id=\(id),imm=\(signed))" : "\(signed)"
            }
            var parts: [String] = []
            if id != 0 { parts.append("id=\(id)") }
            parts += boundParts()
            return "scalar(" + parts.joined(separator: ",") + ")"
        default:
            var parts: [String] = []
            if id != 0 { parts.append("id=\(id)") }
            if refObjID != 0 { parts.append("ref_obj_id=\(refObjID)") }
            if offset != 0 { parts.append("off=\(offset)") }
            switch type {
            case .packet, .packetMeta:
                parts.append("r=\(range)")
            case .mapPointer, .mapValue, .mapKey:
                if mapIndex >= 0 && mapIndex < maps.count {
                    let map = maps[mapIndex]
                    parts.append("map=\(map.name),ks=\(map.keySize),vs=\(map.valueSize)")
                }
            case .memory, .ringbufMemory:
                parts.append("sz=\(aux)")
            default:
                break
            }
            if !varOff.isConstant || varOff.value != 0 { parts += boundParts() }
            let prefix = type == .stack ? "fp" : typeName
            if type == .stack && parts.isEmpty { return "fp\(offset)" }
            if type == .stack { return "fp\(offset)" + "(" + parts.filter { !$0.hasPrefix("off=") }.joined(separator: ",") + ")" }
            return prefix + "(" + parts.joined(separator: ",") + ")"
        }
    }

    private func boundParts() -> [String] {
        var parts: [String] = []
        if smin != .min { parts.append("smin=\(smin)") }
        if smax != .max { parts.append("smax=\(smax)") }
        if umin != 0 { parts.append("umin=\(umin)") }
        if umax != .max { parts.append("umax=\(umax)") }
        if Int64(s32min) != smin, s32min != .min { parts.append("smin32=\(s32min)") }
        if Int64(s32max) != smax, s32max != .max { parts.append("smax32=\(s32max)") }
        if UInt64(u32min) != umin, u32min != 0 { parts.append("umin32=\(u32min)") }
        if UInt64(u32max) != umax, u32max != .max { parts.append("umax32=\(u32max)") }
        if !varOff.isUnknown { parts.append("var_off=\(varOff.description)") }
        return parts
    }
}
