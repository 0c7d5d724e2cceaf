import BPFFuzz
import BPFSim
import Testing

/// Runs assembly on both engines (fresh machines, optionally with extra helpers) and
/// expects no divergence in fault, r0, memory, printk or instruction count.
func expectAgreement(
    _ text: String, memory: [UInt8] = [UInt8](repeating: 0, count: 128), helpers: [Helper] = [],
    budget: UInt64 = 1_000_000, sourceLocation: SourceLocation = #_sourceLocation
) throws -> (interpreter: FlatRunResult, jit: FlatRunResult) {
    let program = try Program(instructions: try Assembler.assemble(text))
    func onMachine(_ engine: Engine) throws -> FlatRunResult {
        var registry = HelperRegistry(WorldHelpers.all)
        for helper in helpers { registry.register(helper) }
        let configuration = RunConfiguration(
            engine: engine, limits: ExecutionLimits(instructionBudget: budget), helpers: registry)
        return try FlatRunner.run(program, memory: memory, configuration: configuration)
    }
    let interpreter = try onMachine(.interpreter)
    let jit = try onMachine(.jit)
    let divergence = EngineComparison.compare(interpreter, jit)
    #expect(
        divergence == nil, "\(divergence.map(String.init(describing:)) ?? "")\n\(text)", sourceLocation: sourceLocation)
    return (interpreter, jit)
}

/// Edge cases that depend on which x86 registers the JIT uses: division needs rax and
/// rdx (BPF r0 and r3), shifts need cl. Every destination/source pair is tried, with the
/// values where the RFC's rules matter.
struct RegisterPairTests {
    static let divisions = [
        "div", "mod", "sdiv", "smod", "div32", "mod32", "sdiv32", "smod32", "lsh", "rsh", "arsh", "lsh32", "rsh32",
        "arsh32",
    ]
    static let values: [(UInt64, UInt64)] = [
        (7, 0), (0x8000_0000_0000_0000, UInt64.max), (0xffff_ffff_8000_0000, 0xffff_ffff), (UInt64(bitPattern: -7), 2),
        (100, 7), (0x1234_5678_9abc_def0, 0x1_0000_0000), (0xdead_beef, 64 + 3),
    ]

    @Test(arguments: divisions)
    func everyRegisterPair(mnemonic: String) throws {
        for dst in 0...9 {
            for src in 0...10 where src != 9 {
                // r9 holds the memory pointer; results go to memory after each case.
                var text = "mov %r9, %r1\n"
                for register in 0...8 { text += "mov %r\(register), \(0x1111 * (register + 1))\n" }
                for (index, (a, b)) in Self.values.enumerated() {
                    if src != 10 { text += "lddw %r\(src), 0x\(String(b, radix: 16))\n" }
                    if dst != 9 { text += "lddw %r\(dst), 0x\(String(a, radix: 16))\n" }
                    if dst == 9 { continue }
                    text += "\(mnemonic) %r\(dst), %r\(src)\n"
                    // The other registers must survive (r0 and r3 are the divide's).
                    for register in 0...8 where index == 1 {
                        text += "stxdw [%r9+\(8 * register)], %r\(register)\n"
                    }
                    text += "stxdw [%r9+\(72 + 8 * (index % 6))], %r\(dst)\n"
                }
                text += "exit\n"
                _ = try expectAgreement(text)
            }
        }
        // And with an immediate, including the edge values the JIT folds at compile time.
        for imm in [0, 1, -1, 7, 63, -2_147_483_648] {
            for (a, _) in Self.values {
                _ = try expectAgreement(
                    "lddw %r3, 0x\(String(a, radix: 16))\n\(mnemonic) %r3, \(imm)\nmov %r0, %r3\nexit\n")
            }
        }
    }
}

/// Helpers that call back into the program (bpf_loop and friends) run the callback in
/// JIT code at one frame deeper, sharing the budget; faults inside come out at the
/// callback's instruction.
struct CallbackTests {
    /// `loop(count r1, callback r2, context r3)`: calls the callback with (index, r3)
    /// until it returns non-zero; returns the number of calls.
    static let loop = Helper(id: 181, name: "bpf_loop") { call throws(ExecutionFault) in
        let function = Int(call.r2 & 0xffff_ffff)
        var index: UInt64 = 0
        while index < call.r1 {
            let stop = try call.invoke(function: function, arguments: (index, call.r3, 0, 0, 0))
            index += 1
            if stop != 0 { break }
        }
        return index
    }

    @Test func callbackSumsIntoTheCallersStack() throws {
        let outcome = try expectAgreement(
            """
            mov %r6, 77
            stdw [%r10-8], 0
            mov %r1, 10
            lddw %r2, func cb
            mov %r3, %r10
            add %r3, -8
            call 181
            ldxdw %r1, [%r10-8]
            lsh %r0, 32
            or %r0, %r1
            add %r0, %r6
            exit
            cb:
            ldxdw %r4, [%r2]
            add %r4, %r1
            stxdw [%r2], %r4
            stdw [%r10-8], 5
            mov %r6, 1000
            mov %r0, 0
            exit
            """, helpers: [Self.loop])
        // The callback's frame is its own, and the caller's r6 survives the helper call.
        #expect(outcome.jit.execution.returnValue == (10 << 32 | 45) + 77)
    }

    @Test func faultsInsideACallback() throws {
        let outcome = try expectAgreement(
            """
            mov %r1, 3
            lddw %r2, func cb
            mov %r3, 0
            call 181
            exit
            cb:
            jne %r1, 2, ok
            ldxdw %r0, [%r10+8]
            ok:
            mov %r0, 0
            exit
            """, helpers: [Self.loop])
        #expect(outcome.jit.execution.fault?.pc == 7)
    }

    @Test func callbacksNestUpToTheFrameLimit() throws {
        // Each callback calls the helper again: the ninth frame is refused at the helper call.
        let outcome = try expectAgreement(
            """
            mov %r1, 1
            lddw %r2, func cb
            call 181
            exit
            cb:
            mov %r1, 1
            lddw %r2, func cb
            call 181
            mov %r0, 0
            exit
            """, helpers: [Self.loop])
        #expect(outcome.jit.execution.fault?.code == "call_depth")
    }

    @Test func callbacksShareTheBudgetAndMayGotoIsPerCallback() throws {
        let outcome = try expectAgreement(
            """
            mov %r1, 1000000
            lddw %r2, func cb
            call 181
            exit
            cb:
            may_goto out
            add %r0, 1
            out:
            mov %r0, 0
            exit
            """, helpers: [Self.loop], budget: 10_000)
        #expect(outcome.jit.execution.fault?.code == "budget_exhausted")
    }

    @Test func legacyLoadOutsideThePacketEndsOnlyTheCallback() throws {
        let outcome = try expectAgreement(
            """
            mov %r6, %r1
            mov %r1, 2
            lddw %r2, func cb
            call 181
            add %r0, 40
            exit
            cb:
            ldabsw 1000
            mov %r0, 1
            exit
            """, helpers: [Self.loop])
        #expect(outcome.jit.execution.returnValue == 42)
    }
}

/// Programs whose JIT code takes rarely used paths.
struct RareJITPathTests {
    @Test func stackThroughAPointerAndAcrossFrames() throws {
        _ = try expectAgreement(
            """
            stdw [%r10-512], 1
            mov %r1, %r10
            add %r1, -512
            call local f
            ldxdw %r0, [%r10-512]
            exit
            f:
            ldxdw %r2, [%r1]
            add %r2, 41
            stxdw [%r1], %r2
            stxdw [%r10-512], %r10
            ldxdw %r3, [%r10-512]
            stxdw [%r10+0], %r3
            exit
            """)
    }

    @Test func frameDepthLimitsWithCallx() throws {
        var text = ""
        for index in 0..<9 { text += "f\(index):\nlddw %r1, func f\(index + 1)\ncall %r1\nexit\n" }
        text += "f9:\nexit\n"
        let outcome = try expectAgreement(text)
        #expect(outcome.jit.execution.fault?.code == "call_depth")
    }

    @Test func budgetFaultsInBothEngines() throws {
        let outcome = try expectAgreement("l:\nadd %r0, 1\njne %r0, 0, l\nexit\n", budget: 777)
        #expect(outcome.interpreter.execution.fault?.code == "budget_exhausted")
        #expect(outcome.jit.execution.fault?.code == "budget_exhausted")
    }

    @Test func thirtyTwoBitResultsAreZeroExtended() throws {
        _ = try expectAgreement(
            """
            mov %r9, %r1
            lddw %r2, 0xffffffffffffffff
            lddw %r4, 0x2000000000
            lsh32 %r2, %r4
            stxdw [%r9+0], %r2
            lddw %r2, 0xffffffffffffffff
            lsh32 %r2, 0
            stxdw [%r9+8], %r2
            lddw %r0, 0xffffffff00000005
            stw [%r9+16], 5
            lddw %r5, 0xaaaaaaaa00000007
            lock cmpxchg32 [%r9+16], %r5
            stxdw [%r9+24], %r0
            lddw %r0, 0xffffffff00000001
            lock cmpxchg32 [%r9+16], %r5
            stxdw [%r9+32], %r0
            lddw %r3, 0xffffffffffffffff
            lock fetch or32 [%r9+16], %r3
            stxdw [%r9+40], %r3
            be16 %r3
            stxdw [%r9+48], %r3
            exit
            """)
    }
}
