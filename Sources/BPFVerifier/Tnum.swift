/// A tristate number (the kernel's `struct tnum`, kernel/bpf/tnum.c): what is known about
/// each bit of a 64-bit value. A bit whose `mask` bit is 0 is known and equals the bit of
/// `value`; a bit whose `mask` bit is 1 is unknown (its `value` bit is then 0).
struct Tnum: Hashable, Sendable {
    var value: UInt64
    var mask: UInt64

    init(value: UInt64, mask: UInt64) {
        self.value = value
        self.mask = mask
    }

    static let unknown = Tnum(value: 0, mask: .max)

    static func constant(_ value: UInt64) -> Tnum { Tnum(value: value, mask: 0) }

    /// The smallest tnum holding every value of `[min, max]` (`tnum_range`).
    static func range(_ min: UInt64, _ max: UInt64) -> Tnum {
        let chi = min ^ max
        let bits = chi == 0 ? 0 : 64 - chi.leadingZeroBitCount
        // Every bit at or below the highest differing bit is unknown.
        if bits > 63 { return .unknown }
        let delta = (UInt64(1) << UInt64(bits)) &- 1
        return Tnum(value: min & ~delta, mask: delta)
    }

    var isConstant: Bool { mask == 0 }
    var isUnknown: Bool { mask == .max }

    /// The low 32 bits (`tnum_subreg`).
    var subreg: Tnum { Tnum(value: value & 0xffff_ffff, mask: mask & 0xffff_ffff) }
    /// The high 32 bits, with the low bits known zero (`tnum_clear_subreg`).
    var clearingSubreg: Tnum { Tnum(value: value & ~0xffff_ffff, mask: mask & ~0xffff_ffff) }
    /// This tnum's high half with `low`'s low half (`tnum_with_subreg`).
    func withSubreg(_ low: Tnum) -> Tnum { clearingSubreg | low.subreg }

    static func + (a: Tnum, b: Tnum) -> Tnum {
        let sm = a.mask &+ b.mask
        let sv = a.value &+ b.value
        let sigma = sm &+ sv
        let chi = sigma ^ sv
        let mu = chi | a.mask | b.mask
        return Tnum(value: sv & ~mu, mask: mu)
    }

    static func - (a: Tnum, b: Tnum) -> Tnum {
        let dv = a.value &- b.value
        let alpha = dv &+ a.mask
        let beta = dv &- b.mask
        let chi = alpha ^ beta
        let mu = chi | a.mask | b.mask
        return Tnum(value: dv & ~mu, mask: mu)
    }

    static func & (a: Tnum, b: Tnum) -> Tnum {
        let alpha = a.value | a.mask
        let beta = b.value | b.mask
        let v = a.value & b.value
        return Tnum(value: v, mask: alpha & beta & ~v)
    }

    static func | (a: Tnum, b: Tnum) -> Tnum {
        let v = a.value | b.value
        let mu = a.mask | b.mask
        return Tnum(value: v, mask: mu & ~v)
    }

    static func ^ (a: Tnum, b: Tnum) -> Tnum {
        let v = a.value ^ b.value
        let mu = a.mask | b.mask
        return Tnum(value: v & ~mu, mask: mu)
    }

    /// Multiplication by shift-and-add over the known and unknown bits (`tnum_mul`).
    static func * (a: Tnum, b: Tnum) -> Tnum {
        var a = a
        var b = b
        var accV = a.value &* b.value
        var accM = Tnum(value: 0, mask: 0)
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                accM = accM + Tnum(value: 0, mask: b.mask)
            } else if a.mask & 1 != 0 {
                accM = accM + Tnum(value: 0, mask: b.value | b.mask)
            }
            a = a.shiftedRight(1)
            b = b.shiftedLeft(1)
        }
        accV = accV & ~0  // the known part of the product
        return Tnum(value: accV, mask: 0) + accM
    }

    func shiftedLeft(_ amount: UInt64) -> Tnum {
        Tnum(value: value &<< amount, mask: mask &<< amount)
    }

    func shiftedRight(_ amount: UInt64) -> Tnum {
        Tnum(value: value &>> amount, mask: mask &>> amount)
    }

    /// Arithmetic shift right of the low `bits` (32 or 64) bits (`tnum_arshift`).
    func arithmeticShiftedRight(_ amount: UInt64, bits: Int) -> Tnum {
        if bits == 32 {
            let v = UInt64(UInt32(bitPattern: Int32(bitPattern: UInt32(truncatingIfNeeded: value)) >> Int32(amount)))
            let m = UInt64(UInt32(bitPattern: Int32(bitPattern: UInt32(truncatingIfNeeded: mask)) >> Int32(amount)))
            return Tnum(value: v, mask: m)
        }
        return Tnum(
            value: UInt64(bitPattern: Int64(bitPattern: value) >> Int64(amount)),
            mask: UInt64(bitPattern: Int64(bitPattern: mask) >> Int64(amount)))
    }

    /// The values both tnums allow (`tnum_intersect`).
    func intersect(_ other: Tnum) -> Tnum {
        let v = value | other.value
        let mu = mask & other.mask
        return Tnum(value: v & ~mu, mask: mu)
    }

    /// Whether some value is allowed by both (`tnum_overlap`).
    func overlaps(_ other: Tnum) -> Bool {
        let mu = ~mask & ~other.mask
        return (value & mu) == (other.value & mu)
    }

    /// Whether every value `other` allows, this one allows too (`tnum_in`).
    func contains(_ other: Tnum) -> Bool {
        if other.mask & ~mask != 0 { return false }
        return value == other.value & ~mask
    }

    /// Keeps the low `size` bytes (`tnum_cast`).
    func truncated(toBytes size: Int) -> Tnum {
        if size >= 8 { return self }
        let keep = (UInt64(1) << UInt64(size * 8)) &- 1
        return Tnum(value: value & keep, mask: mask & keep)
    }

    /// The kernel's `tnum_strn` form: `(0x0; 0xff)`.
    var description: String {
        "(0x\(String(value, radix: 16)); 0x\(String(mask, radix: 16)))"
    }
}
