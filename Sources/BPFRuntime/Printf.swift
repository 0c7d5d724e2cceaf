/// The format language of `bpf_trace_printk`, `bpf_trace_vprintk` and `bpf_snprintf`, with
/// the kernel's rules (`bpf_bprintf_prepare` in kernel/bpf/helpers.c): conversions
/// `%d %i %u %x %X` with an optional `l` or `ll`, `%c`, `%s`, `%%`, and the pointer forms
/// `%p %px %pK %pS %ps %pB %pI4 %pi4 %pI6 %pi6`; flags `0 + - space` and a width may
/// precede a conversion. Anything else, an unprintable character, or more arguments
/// than allowed make the helper fail with -EINVAL.
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
        var argumentIndex = 0
        var i = 0
        func nextArgument() -> UInt64? {
            guard argumentIndex < arguments.count, argumentIndex < maxArguments else { return nil }
            defer { argumentIndex += 1 }
            return arguments[argumentIndex]
        }
        func character(_ index: Int) -> UInt8 { index < format.count ? format[index] : 0 }
        while i < format.count {
            let c = format[i]
            guard isPrintable(c) || isSpace(c) else {
                return .failure(Failure(message: "format has an unprintable character 0x\(String(c, radix: 16))"))
            }
            guard c == UInt8(ascii: "%") else {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            if character(i) == UInt8(ascii: "%") {
                out.append(c)
                i += 1
                continue
            }
            // Flags and width.
            var leftAlign = false
            var zeroPad = false
            var plus = false
            var space = false
            while true {
                switch character(i) {
                case UInt8(ascii: "-"): leftAlign = true
                case UInt8(ascii: "0"): zeroPad = true
                case UInt8(ascii: "+"): plus = true
                case UInt8(ascii: " "): space = true
                default: break
                }
                if [UInt8(ascii: "-"), UInt8(ascii: "0"), UInt8(ascii: "+"), UInt8(ascii: " ")].contains(character(i)) {
                    i += 1
                } else {
                    break
                }
            }
            var width = 0
            while character(i) >= UInt8(ascii: "0") && character(i) <= UInt8(ascii: "9") {
                width = width * 10 + Int(character(i) - UInt8(ascii: "0"))
                i += 1
            }
            func pad(_ text: [UInt8], numeric: Bool) -> [UInt8] {
                guard text.count < width else { return text }
                let fill = width - text.count
                if leftAlign { return text + [UInt8](repeating: UInt8(ascii: " "), count: fill) }
                if zeroPad && numeric {
                    // Zeros go after a sign.
                    if let first = text.first,
                        first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: " ")
                    {
                        return [first] + [UInt8](repeating: UInt8(ascii: "0"), count: fill) + text.dropFirst()
                    }
                    return [UInt8](repeating: UInt8(ascii: "0"), count: fill) + text
                }
                return [UInt8](repeating: UInt8(ascii: " "), count: fill) + text
            }
            guard let argument = nextArgument() else {
                return .failure(
                    Failure(message: "more conversions than the \(min(arguments.count, maxArguments)) arguments given"))
            }
            let conversion = character(i)
            switch conversion {
            case UInt8(ascii: "c"):
                out += pad([UInt8(truncatingIfNeeded: argument)], numeric: false)
                i += 1
            case UInt8(ascii: "s"):
                guard let string = readString(argument) else {
                    out += pad(Array("(efault)".utf8), numeric: false)
                    i += 1
                    continue
                }
                out += pad(string, numeric: false)
                i += 1
            case UInt8(ascii: "p"):
                i += 1
                let next = character(i)
                if next == UInt8(ascii: "i") || next == UInt8(ascii: "I") {
                    let version = character(i + 1)
                    guard version == UInt8(ascii: "4") || version == UInt8(ascii: "6") else {
                        return .failure(
                            Failure(
                                message:
                                    "unsupported %p\(Character(UnicodeScalar(next)))\(Character(UnicodeScalar(version)))"
                            ))
                    }
                    let count = version == UInt8(ascii: "4") ? 4 : 16
                    guard let bytes = readBytes(argument, count) else {
                        return .failure(Failure(message: "%p\(Character(UnicodeScalar(next))) reads outside memory"))
                    }
                    out += pad(Array(formatAddress(bytes, padded: next == UInt8(ascii: "i")).utf8), numeric: false)
                    i += 2
                } else if [
                    UInt8(ascii: "x"), UInt8(ascii: "K"), UInt8(ascii: "S"), UInt8(ascii: "s"), UInt8(ascii: "B"),
                ]
                .contains(next) {
                    // %px prints the raw value; symbols and hashed forms are printed raw too,
                    // since guest addresses name no kernel symbol.
                    out += pad(Array(("0x" + hexDigits(argument, upper: false)).utf8), numeric: false)
                    i += 1
                } else if next == 0 || isSpace(next) || isPunctuation(next) {
                    out += pad(Array(("0x" + hexDigits(argument, upper: false)).utf8), numeric: false)
                } else {
                    return .failure(Failure(message: "unsupported %p\(Character(UnicodeScalar(next)))"))
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
                case UInt8(ascii: "x"): text = hexDigits(value, upper: false)
                case UInt8(ascii: "X"): text = hexDigits(value, upper: true)
                default:
                    return .failure(Failure(message: "unsupported conversion in format at byte \(i)"))
                }
                out += pad(Array(text.utf8), numeric: true)
                i += 1
            }
        }
        return .success(out)
    }

    static func isPrintable(_ c: UInt8) -> Bool { c >= 0x20 && c < 0x7f }
    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0d) }
    static func isPunctuation(_ c: UInt8) -> Bool { isPrintable(c) && !isAlphanumeric(c) && c != 0x20 }
    static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z"))
    }

    static func hexDigits(_ value: UInt64, upper: Bool) -> String {
        let text = String(value, radix: 16)
        return upper ? text.uppercased() : text
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
