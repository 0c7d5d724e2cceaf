/// The format language of `bpf_trace_printk`, `bpf_trace_vprintk` and `bpf_snprintf`,
/// following the kernel's `bpf_bprintf_prepare` (kernel/bpf/helpers.c) and `bstr_printf`:
///
/// - every format byte must be printable or a space in the kernel's Latin-1 `ctype`
///   (so 0x80-0x9f are refused, 0xa0-0xff allowed);
/// - conversions: `%d %i %u %x %X` with an optional `l` or `ll` (without, the argument is
///   a 32-bit int), `%c`, `%s`, `%pks`/`%pus` (strings), `%%`, and the pointer forms
///   `%p %pK %px %ps %pS %pB` and `%pI4 %pi4 %pI6 %pi6`; flags `0 + - space` and a width
///   may precede a conversion;
/// - `%s` must be followed by the end, a space or punctuation;
/// - a string that cannot be read prints as nothing; an address that cannot be read
///   prints as zeros (`0.0.0.0`);
/// - the width of an IP address conversion is ignored (the kernel formats it first);
/// - more conversions than arguments, or anything else, fail with -EINVAL.
///
/// `%px` prints the 16 hex digits of the value; the kernel prints `%p` and `%pK` hashed
/// and `%ps`/`%pS`/`%pB` as symbols, which bpfsim cannot do: it prints all of them like `%px`.
public enum BPFPrintf {
    public struct Failure: Error {
        public let message: String
    }

    /// Formats `format` (without its NUL) with `arguments`. `readString` reads a NUL-
    /// terminated string at a guest address (for `%s`); `readBytes` reads raw bytes (for
    /// `%pI4` and friends).
    public static func format(
        _ format: [UInt8], arguments: [UInt64], maxArguments: Int,
        readString: (UInt64) -> [UInt8]?, readBytes: (UInt64, Int) -> [UInt8]?
    ) -> Result<[UInt8], Failure> {
        var out: [UInt8] = []
        let available = min(arguments.count, maxArguments)
        var argumentIndex = 0
        var i = 0
        func character(_ index: Int) -> UInt8 { index < format.count ? format[index] : 0 }
        func fail(_ message: String) -> Result<[UInt8], Failure> { .failure(Failure(message: message)) }
        while i < format.count {
            let c = format[i]
            guard Ctype.isPrintable(c) || Ctype.isSpace(c) else {
                return fail("format has an unprintable byte 0x\(String(c, radix: 16))")
            }
            guard c == UInt8(ascii: "%") else {
                out.append(c)
                i += 1
                continue
            }
            if character(i + 1) == UInt8(ascii: "%") {
                out.append(c)
                i += 2
                continue
            }
            guard argumentIndex < available else { return fail("more conversions than the \(available) arguments given") }
            let argument = arguments[argumentIndex]
            argumentIndex += 1
            i += 1
            // Flags and width.
            var leftAlign = false
            var zeroPad = false
            var plus = false
            var space = false
            flags: while true {
                switch character(i) {
                case UInt8(ascii: "-"): leftAlign = true
                case UInt8(ascii: "0"): zeroPad = true
                case UInt8(ascii: "+"): plus = true
                case UInt8(ascii: " "): space = true
                default: break flags
                }
                i += 1
            }
            var width = 0
            if character(i) >= UInt8(ascii: "1") && character(i) <= UInt8(ascii: "9") {
                while character(i) >= UInt8(ascii: "0") && character(i) <= UInt8(ascii: "9") {
                    width = width * 10 + Int(character(i) - UInt8(ascii: "0"))
                    i += 1
                }
            }
            func pad(_ text: [UInt8], numeric: Bool) -> [UInt8] {
                guard text.count < width else { return text }
                let fill = width - text.count
                if leftAlign { return text + [UInt8](repeating: UInt8(ascii: " "), count: fill) }
                if zeroPad && numeric {
                    if let first = text.first,
                        first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: " ")
                    {
                        return [first] + [UInt8](repeating: UInt8(ascii: "0"), count: fill) + text.dropFirst()
                    }
                    return [UInt8](repeating: UInt8(ascii: "0"), count: fill) + text
                }
                return [UInt8](repeating: UInt8(ascii: " "), count: fill) + text
            }
            /// `%s` and `%pks`/`%pus` need the end, a space or punctuation after them.
            func stringConversion(endingAt index: Int) -> Result<[UInt8], Failure>? {
                let next = character(index + 1)
                guard next == 0 || Ctype.isSpace(next) || Ctype.isPunctuation(next) else {
                    return fail("a string conversion must be followed by a space, punctuation or the end")
                }
                out += pad(readString(argument) ?? [], numeric: false)
                i = index + 1
                return nil
            }
            let conversion = character(i)
            switch conversion {
            case UInt8(ascii: "c"):
                out += pad([UInt8(truncatingIfNeeded: argument)], numeric: false)
                i += 1
            case UInt8(ascii: "s"):
                if let failure = stringConversion(endingAt: i) { return failure }
            case UInt8(ascii: "p"):
                let next = character(i + 1)
                if (next == UInt8(ascii: "k") || next == UInt8(ascii: "u")) && character(i + 2) == UInt8(ascii: "s") {
                    if let failure = stringConversion(endingAt: i + 2) { return failure }
                } else if next == 0 || Ctype.isSpace(next) || Ctype.isPunctuation(next)
                    || [UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "s"), UInt8(ascii: "S")].contains(next)
                {
                    out += pad(Array(hex16(argument).utf8), numeric: false)
                    // `%p` followed by punctuation or a space keeps that character.
                    i += [UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "s"), UInt8(ascii: "S")].contains(next) ? 2 : 1
                } else if next == UInt8(ascii: "B") {
                    out += Array(hex16(argument).utf8)
                    i += 2
                } else if (next == UInt8(ascii: "i") || next == UInt8(ascii: "I"))
                    && (character(i + 2) == UInt8(ascii: "4") || character(i + 2) == UInt8(ascii: "6"))
                {
                    let count = character(i + 2) == UInt8(ascii: "4") ? 4 : 16
                    let bytes = readBytes(argument, count) ?? [UInt8](repeating: 0, count: count)
                    out += Array(formatAddress(bytes, padded: next == UInt8(ascii: "i")).utf8)
                    i += 3
                } else {
                    return fail("unsupported pointer conversion %p\(Character(UnicodeScalar(next)))")
                }
            default:
                var long = 0
                while character(i) == UInt8(ascii: "l") && long < 2 {
                    long += 1
                    i += 1
                }
                let value = long == 0 ? UInt64(UInt32(truncatingIfNeeded: argument)) : argument
                var text: String
                switch character(i) {
                case UInt8(ascii: "d"), UInt8(ascii: "i"):
                    let signed = long == 0 ? Int64(Int32(truncatingIfNeeded: argument)) : Int64(bitPattern: argument)
                    text = String(signed)
                    if signed >= 0 && plus { text = "+" + text } else if signed >= 0 && space { text = " " + text }
                case UInt8(ascii: "u"): text = String(value)
                case UInt8(ascii: "x"): text = String(value, radix: 16)
                case UInt8(ascii: "X"): text = String(value, radix: 16).uppercased()
                default:
                    return fail("unsupported conversion at byte \(i) of the format")
                }
                out += pad(Array(text.utf8), numeric: true)
                i += 1
            }
        }
        return .success(out)
    }

    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// `%pI4` "1.2.3.4", `%pi4` "001.002.003.004", `%pI6` "2001:0db8:...", `%pi6` 32 hex digits.
    static func formatAddress(_ bytes: [UInt8], padded: Bool) -> String {
        if bytes.count == 4 {
            return bytes.map { padded ? String(repeating: "0", count: 3 - String($0).count) + String($0) : String($0) }
                .joined(separator: ".")
        }
        let hex = bytes.map { String(repeating: "0", count: $0 < 16 ? 1 : 0) + String($0, radix: 16) }
        if padded { return hex.joined() }
        return stride(from: 0, to: 16, by: 2).map { hex[$0] + hex[$0 + 1] }.joined(separator: ":")
    }
}

/// The kernel's `ctype` classes (lib/ctype.c), which cover Latin-1: 0x80-0x9f are control
/// characters, 0xa0 is a space, 0xa1-0xbf and 0xd7/0xf7 punctuation, the rest letters.
public enum Ctype {
    public static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0d) || c == 0xa0 }
    public static func isPrintable(_ c: UInt8) -> Bool { (c >= 0x20 && c < 0x7f) || c >= 0xa0 }
    public static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    public static func isAlpha(_ c: UInt8) -> Bool {
        (c | 0x20 >= 0x61 && c | 0x20 <= 0x7a) || (c >= 0xc0 && c != 0xd7 && c != 0xf7)
    }
    public static func isPunctuation(_ c: UInt8) -> Bool {
        if c >= 0x21 && c < 0x7f { return !isDigit(c) && !isAlpha(c) }
        return (c >= 0xa1 && c <= 0xbf) || c == 0xd7 || c == 0xf7
    }
}
