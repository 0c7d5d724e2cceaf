import BPFJIT
import Testing
import X86Disassembly

/// The encoder, byte for byte against capstone: each encoder function is run with many
/// registers (including r8-r15 and the registers x86 encodes specially: rsp and r12 need
/// a SIB byte as a base, rbp and r13 a displacement, spl/bpl/sil/dil a REX prefix) and
/// the disassembly must be exactly the instruction meant, with every byte consumed. The
/// expected text is built from register names here, never from the encoder.
struct EncoderTests {
    static let all = X86Register.allCases
    static let notRSP = X86Register.allCases.filter { $0 != .rsp }

    /// Memory operands covering every ModRM/SIB special case.
    static let memories: [X86Memory] = [
        .at(.rax), .at(.rsp), .at(.rbp), .at(.r12), .at(.r13), .at(.r11, -8), .at(.rdi, 127), .at(.rsi, 128),
        .at(.rbp, -300), .at(.r12, index: .rcx, 8), .at(.rbx, index: .r13, scale: 8, -128),
        .at(.r13, index: .r14, scale: 2), .at(.rbp, index: .rax, scale: 4), .rip(0x1000), .rip(-4096),
    ]

    /// Assembles one instruction and checks capstone reads it back as `expected`.
    func check(
        _ expected: (Int) -> String, _ emit: (inout X86Assembler) -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var assembler = X86Assembler()
        emit(&assembler)
        let bytes = assembler.finish()
        let decoded = (try? X86Disassembler.disassemble(bytes)) ?? []
        let text = decoded.map(\.text).joined(separator: "; ")
        let want = expected(bytes.count)
        #expect(
            decoded.count == 1 && text == want, "\(hex(bytes)): got \(text), want \(want)",
            sourceLocation: sourceLocation)
    }

    func check(
        _ expected: String, _ emit: (inout X86Assembler) -> Void, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        check({ _ in expected }, emit, sourceLocation: sourceLocation)
    }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16) }.joined(separator: " ") }

    /// An immediate as capstone prints it: signed when it is a sign-extended imm8 (`short`)
    /// or a 64-bit operand's sign-extended imm32, otherwise unsigned at the operand's
    /// width; decimal up to 9, hex above.
    /// Logical operations (and, or, xor) show the sign-extended immediate unsigned.
    func imm(_ value: Int64, _ width: X86Width = .qword, short: Bool = false, logical: Bool = false) -> String {
        if logical {
            let bits = UInt64(bitPattern: value) & (width == .qword ? ~0 : (1 << (8 * UInt64(width.bytes))) - 1)
            return bits <= 9 ? String(bits) : "0x" + String(bits, radix: 16)
        }
        let shown: Int64 =
            if short || width == .qword {
                value
            } else {
                switch width {
                case .byte: Int64(UInt8(truncatingIfNeeded: value))
                case .word: Int64(UInt16(truncatingIfNeeded: value))
                default: Int64(UInt32(truncatingIfNeeded: value))
                }
            }
        let magnitude = shown.magnitude
        let digits = magnitude <= 9 ? String(magnitude) : "0x" + String(magnitude, radix: 16)
        return (shown < 0 ? "-" : "") + digits
    }

    func ptr(_ width: X86Width) -> String {
        switch width {
        case .byte: "byte ptr "
        case .word: "word ptr "
        case .dword: "dword ptr "
        case .qword: "qword ptr "
        }
    }

    /// `[base + index*scale + disp]`; a RIP-relative operand's displacement is measured
    /// from the end of the instruction, which is `length` bytes long and starts at 0.
    func memory(_ m: X86Memory, length: Int) -> String {
        var text = "["
        var displacement = Int64(m.displacement)
        switch m.base {
        case .register(let base): text += base.name(.qword)
        case .rip(let target):
            text += "rip"
            displacement += Int64(target - length)
        }
        if let index = m.index { text += " + " + index.name(.qword) + (m.scale > 1 ? "*\(m.scale)" : "") }
        if displacement != 0 { text += (displacement < 0 ? " - " : " + ") + imm(Int64(displacement.magnitude)) }
        return text + "]"
    }

    @Test func movRegisterToRegister() {
        for width in X86Width.allCases {
            for d in Self.all {
                for s in Self.all {
                    check("mov \(d.name(width)), \(s.name(width))") { $0.mov(width, d, s) }
                }
            }
        }
    }

    @Test func loadsAndStores() {
        for m in Self.memories {
            for r in Self.all {
                for width in X86Width.allCases {
                    check({ "mov \(ptr(width))\(memory(m, length: $0)), \(r.name(width))" }) { $0.mov(width, m, r) }
                }
                for width in [X86Width.dword, .qword] {
                    check({ "mov \(r.name(width)), \(ptr(width))\(memory(m, length: $0))" }) { $0.mov(width, r, m) }
                }
                check({ "movzx \(r.name(.dword)), byte ptr \(memory(m, length: $0))" }) {
                    $0.movzx(r, .memory(m), from: .byte)
                }
                check({ "movzx \(r.name(.dword)), word ptr \(memory(m, length: $0))" }) {
                    $0.movzx(r, .memory(m), from: .word)
                }
                check({ "movsx \(r.name(.qword)), byte ptr \(memory(m, length: $0))" }) {
                    $0.movsx(.qword, r, .memory(m), from: .byte)
                }
                check({ "movsx \(r.name(.qword)), word ptr \(memory(m, length: $0))" }) {
                    $0.movsx(.qword, r, .memory(m), from: .word)
                }
                check({ "movsxd \(r.name(.qword)), dword ptr \(memory(m, length: $0))" }) {
                    $0.movsx(.qword, r, .memory(m), from: .dword)
                }
                check({ "lea \(r.name(.qword)), \(memory(m, length: $0))" }) { $0.lea(.qword, r, m) }
                check({ "lea \(r.name(.dword)), \(memory(m, length: $0))" }) { $0.lea(.dword, r, m) }
            }
        }
    }

    @Test func storeImmediates() {
        for m in Self.memories {
            for value: Int32 in [0, 1, -1, 127, -128, 0x1234, -0x8000_0000] {
                for width in X86Width.allCases {
                    let shown: Int64 =
                        switch width {
                        case .byte: Int64(Int8(truncatingIfNeeded: value))
                        case .word: Int64(Int16(truncatingIfNeeded: value))
                        default: Int64(value)
                        }
                    check({ "mov \(ptr(width))\(memory(m, length: $0)), \(imm(shown, width))" }) {
                        $0.mov(width, m, immediate: value)
                    }
                }
            }
        }
    }

    @Test func extendingRegisterMoves() {
        for d in Self.all {
            for s in Self.all {
                check("movzx \(d.name(.dword)), \(s.name(.byte))") { $0.movzx(d, .register(s), from: .byte) }
                check("movzx \(d.name(.dword)), \(s.name(.word))") { $0.movzx(d, .register(s), from: .word) }
                for width in [X86Width.dword, .qword] {
                    check("movsx \(d.name(width)), \(s.name(.byte))") { $0.movsx(width, d, .register(s), from: .byte) }
                    check("movsx \(d.name(width)), \(s.name(.word))") { $0.movsx(width, d, .register(s), from: .word) }
                }
                check("movsxd \(d.name(.qword)), \(s.name(.dword))") { $0.movsx(.qword, d, .register(s), from: .dword) }
            }
        }
    }

    @Test func constants() {
        for r in Self.all {
            for value: UInt32 in [1, 9, 10, 0x7fff_ffff, 0xffff_ffff] {
                check("mov \(r.name(.dword)), \(imm(Int64(value)))") { $0.mov32(r, immediate: value) }
            }
            for value: Int32 in [-1, -5, Int32.min, 0x1234] {
                check("mov \(r.name(.qword)), \(imm(Int64(value)))") { $0.mov64(r, signExtended: value) }
            }
            for value: UInt64 in [0x1_0000_0000, 0x1234_5678_9abc_def0, 0x8000_0000_0000_0000] {
                check("movabs \(r.name(.qword)), 0x\(String(value, radix: 16))") { $0.movabs(r, value) }
            }
            // The shortest form for each kind of constant.
            check("xor \(r.name(.dword)), \(r.name(.dword))") { $0.load(r, constant: 0) }
            check("mov \(r.name(.dword)), 0xffffffff") { $0.load(r, constant: 0xffff_ffff) }
            check("mov \(r.name(.qword)), -2") { $0.load(r, constant: UInt64(bitPattern: -2)) }
            check("movabs \(r.name(.qword)), 0x100000000") { $0.load(r, constant: 0x1_0000_0000) }
        }
    }

    @Test func arithmetic() {
        for op in X86Arithmetic.allCases {
            for d in Self.all {
                for width in X86Width.allCases {
                    for s in Self.all {
                        check("\(op.mnemonic) \(d.name(width)), \(s.name(width))") {
                            $0.arithmetic(op, width, .register(d), s)
                        }
                    }
                    for value: Int32 in [0, 1, -1, 127, -128, 128, 300, -300, Int32.max, Int32.min] {
                        if width == .byte && !(-128...127).contains(value) { continue }
                        if width == .word && !(-32768...32767).contains(value) { continue }
                        let short = width != .byte && (-128...127).contains(value)
                        let logical = [.and, .or, .xor].contains(op)
                        let shown = imm(Int64(value), width, short: short, logical: logical)
                        check("\(op.mnemonic) \(d.name(width)), \(shown)") {
                            $0.arithmetic(op, width, .register(d), immediate: value)
                        }
                    }
                }
            }
            for m in Self.memories {
                for r in [X86Register.rax, .rsi, .r8, .r15] {
                    for width in [X86Width.dword, .qword] {
                        check({ "\(op.mnemonic) \(r.name(width)), \(ptr(width))\(memory(m, length: $0))" }) {
                            $0.arithmetic(op, width, r, m)
                        }
                        check({ "\(op.mnemonic) \(ptr(width))\(memory(m, length: $0)), \(r.name(width))" }) {
                            $0.arithmetic(op, width, .memory(m), r)
                        }
                        if op == .cmp { continue }  // not lockable: #UD
                        check({ "lock \(op.mnemonic) \(ptr(width))\(memory(m, length: $0)), \(r.name(width))" }) {
                            $0.arithmetic(op, width, .memory(m), r, lock: true)
                        }
                    }
                }
                for value: Int32 in [0, 1, -1, 1000] {
                    let shown = imm(Int64(value), .qword, logical: [.and, .or, .xor].contains(op))
                    check({ "\(op.mnemonic) qword ptr \(memory(m, length: $0)), \(shown)" }) {
                        $0.arithmetic(op, .qword, .memory(m), immediate: value)
                    }
                }
            }
        }
    }

    @Test func testMultiplyShiftUnary() {
        for d in Self.all {
            for width in [X86Width.dword, .qword] {
                for s in Self.all {
                    check("test \(d.name(width)), \(s.name(width))") { $0.test(width, d, s) }
                    check("imul \(d.name(width)), \(s.name(width))") { $0.imul(width, d, s) }
                    for value: Int32 in [3, -7, 1000, Int32.min] {
                        let short = (-128...127).contains(value)
                        check("imul \(d.name(width)), \(s.name(width)), \(imm(Int64(value), width, short: short))") {
                            $0.imul(width, d, s, immediate: value)
                        }
                    }
                }
                for value: Int32 in [1, -1, 0x100, Int32.min] {
                    check("test \(d.name(width)), \(imm(Int64(value), width))") { $0.test(width, d, immediate: value) }
                }
                for op in X86Shift.allCases {
                    for amount: UInt8 in [1, 8, 31] {
                        check("\(op.mnemonic) \(d.name(width)), \(imm(Int64(amount)))") {
                            $0.shift(op, width, d, by: amount)
                        }
                    }
                    check("\(op.mnemonic) \(d.name(width)), cl") { $0.shiftByCL(op, width, d) }
                }
                for op in X86Unary.allCases {
                    check("\(op.mnemonic) \(d.name(width))") { $0.unary(op, width, d) }
                }
                check("bswap \(d.name(width))") { $0.bswap(width, d) }
            }
            check("ror \(d.name(.word)), 8") { $0.shift(.ror, .word, d, by: 8) }
        }
        check("cqo") { $0.cqo() }
        check("cdq") { $0.cdq() }
    }

    @Test func atomics() {
        for m in Self.memories {
            for r in Self.all {
                for width in [X86Width.dword, .qword] {
                    check({ "lock xadd \(ptr(width))\(memory(m, length: $0)), \(r.name(width))" }) {
                        $0.lockXadd(width, m, r)
                    }
                    check({ "lock cmpxchg \(ptr(width))\(memory(m, length: $0)), \(r.name(width))" }) {
                        $0.lockCmpxchg(width, m, r)
                    }
                    check({ "xchg \(ptr(width))\(memory(m, length: $0)), \(r.name(width))" }) {
                        $0.xchg(width, m, r)
                    }
                }
            }
        }
    }

    @Test func stackAndCalls() {
        for r in Self.all {
            check("push \(r.name(.qword))") { $0.push(r) }
            check("pop \(r.name(.qword))") { $0.pop(r) }
            check("call \(r.name(.qword))") { $0.call(.register(r)) }
            check("jmp \(r.name(.qword))") { $0.jmp(.register(r)) }
        }
        for m in Self.memories {
            check({ "call qword ptr \(memory(m, length: $0))" }) { $0.call(.memory(m)) }
            check({ "jmp qword ptr \(memory(m, length: $0))" }) { $0.jmp(.memory(m)) }
        }
        check("ret") { $0.ret() }
        check("ud2") { $0.ud2() }
    }

    /// Jumps go through the relocation list; a later pass with the previous layout makes
    /// the ones that reach short.
    @Test func jumpsAndRelocations() throws {
        func program(_ previous: X86Layout?) -> X86Assembler {
            var a = X86Assembler(previous: previous)
            let back = a.makeLabel()
            let near = a.makeLabel()
            let far = a.makeLabel()
            a.bind(back)
            a.jcc(.equal, near)  // forward, short once the layout is known
            a.jmp(far)  // forward, more than 127 bytes: stays rel32
            a.bind(near)
            for _ in 0..<200 { a.ret() }
            a.bind(far)
            a.jcc(.less, back)  // backward, beyond rel8
            a.call(near)
            return a
        }
        let first = program(nil)
        let second = program(first.layout)
        let third = program(second.layout)
        #expect(second.offset < first.offset)
        #expect(third.offset == second.offset)
        let lines = try X86Disassembler.disassemble(third.finish())
        let nearOffset = lines.count > 2 ? lines[2].address : 0
        #expect(lines[0].text == "je \(imm(Int64(nearOffset)))")
        #expect(lines[0].bytes.count == 2)
        #expect(lines[1].bytes.count == 5)
        let far = lines[lines.count - 2]
        #expect(far.text == "jl 0")
        #expect(far.bytes.count == 6)
        #expect(lines.last?.text == "call \(imm(Int64(nearOffset)))")
        for condition in X86Condition.allCases {
            // A jump to itself at 0 (capstone prints the absolute target).
            check("j\(condition.suffix) 0") { a in
                let label = a.makeLabel()
                a.bind(label)
                a.jcc(condition, label)
            }
        }
    }
}
