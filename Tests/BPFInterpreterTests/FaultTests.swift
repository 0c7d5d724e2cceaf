import BPFSim
import Testing

/// Runs assembly on flat memory with the given engine.
func run(
    _ text: String, memory: [UInt8]? = nil, engine: Engine, budget: UInt64 = 1_000_000
) throws -> FlatRunResult {
    let program = try Program(instructions: try Assembler.assemble(text))
    let configuration = RunConfiguration(engine: engine, limits: ExecutionLimits(instructionBudget: budget))
    return try FlatRunner.run(program, memory: memory, configuration: configuration)
}

/// Guest faults: each ends the run with a value naming the instruction, never a crash.
/// None of these programs would load into the kernel: its verifier refuses every one
/// (out-of-bounds access, unbounded loop, call depth), so the expected messages are
/// bpfsim's own; the behaviour (stop, report, keep what was done) is the contract.
struct FaultTests {
    @Test(arguments: Engine.allCases)
    func outOfBoundsStore(engine: Engine) throws {
        let result = try run(
            "stb [%r1], 7\nmov %r0, 5\nstxw [%r1+6], %r0\nexit", memory: [0, 1, 2, 3, 4, 5, 6, 7], engine: engine)
        let fault = try #require(result.execution.fault)
        #expect(fault.pc == 2)
        #expect(fault.code == "out_of_bounds")
        #expect(
            fault.description
                == "instruction 2 (stxw [%r1+6], %r0): out-of-bounds write of 4 bytes at 0x300000006: offset 6 of the input memory (8 bytes): the access runs 2 bytes past its end"
        )
        // What happened before the fault is kept.
        #expect(result.memoryAfter == [7, 1, 2, 3, 4, 5, 6, 7])
        #expect(result.execution.instructionCount == 3)
    }

    @Test(arguments: Engine.allCases)
    func outOfBoundsReads(engine: Engine) throws {
        let cases: [(String, String)] = [
            ("ldxb %r0, [%r1+8]\nexit", "right after the end of the input memory (8 bytes)"),
            ("ldxb %r0, [%r1-1]\nexit", "1 bytes before the start of the input memory"),
            ("mov %r1, 0\nldxdw %r0, [%r1]\nexit", "a NULL or small-integer address"),
            ("ldxdw %r0, [%r10]\nexit", "right after the end of the stack (current frame ends at r10) (512 bytes)"),
            ("ldxdw %r0, [%r10-520]\nexit", "8 bytes before the start of the stack"),
            ("lddw %r1, 0x7700000000\nldxb %r0, [%r1]\nexit", "no mapped region"),
            ("ldxw %r0, [%r1+20]\nexit", "12 bytes after the end of the input memory (8 bytes)"),
        ]
        for (text, place) in cases {
            let result = try run(text, memory: [UInt8](repeating: 0, count: 8), engine: engine)
            let fault = try #require(result.execution.fault, "\(text)")
            guard case .outOfBounds(_, _, let write, let actual) = fault.kind else {
                Issue.record("\(text): \(fault)")
                continue
            }
            #expect(!write)
            #expect(actual == place, "\(text)")
        }
    }

    @Test(arguments: Engine.allCases)
    func atomicOutsideMemory(engine: Engine) throws {
        let result = try run("mov %r2, 1\nlock add [%r1+4], %r2\nexit", memory: [0, 0, 0, 0], engine: engine)
        #expect(result.execution.fault?.code == "out_of_bounds")
        #expect(result.execution.fault?.pc == 1)
    }

    @Test(arguments: Engine.allCases)
    func endlessLoopHitsTheBudget(engine: Engine) throws {
        let result = try run("mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit", engine: engine, budget: 1001)
        let fault = try #require(result.execution.fault)
        #expect(fault.code == "budget_exhausted")
        // 1 mov, then 500 rounds of (add, ja): the 1002nd instruction would exceed the budget.
        #expect(fault.pc == 1)
        #expect(result.execution.instructionCount == 1001)
    }

    @Test(arguments: Engine.allCases)
    func budgetCountsExactly(engine: Engine) throws {
        // Exactly as many instructions as the budget allows runs to the end.
        let ok = try run("mov %r0, 1\nadd %r0, 1\nexit", engine: engine, budget: 3)
        #expect(ok.execution.fault == nil)
        #expect(ok.execution.returnValue == 2)
        let over = try run("mov %r0, 1\nadd %r0, 1\nexit", engine: engine, budget: 2)
        #expect(over.execution.fault?.code == "budget_exhausted")
        // Deliberate difference (docs/jit.md, "Budget"): the interpreter stops at the
        // instruction that would exceed the budget; the JIT charges a basic block on entry
        // and stops before running a block that does not fit, at its first instruction.
        #expect(over.execution.fault?.pc == (engine == .jit ? 0 : 2))
        #expect(over.execution.instructionCount == (engine == .jit ? 0 : 2))
    }

    /// The kernel allows 8 frames (MAX_CALL_FRAMES); its verifier refuses a ninth with
    /// "the call stack of 9 frames is too deep".
    @Test(arguments: Engine.allCases)
    func callDepth(engine: Engine) throws {
        func chain(_ frames: Int) -> String {
            var text = ""
            for index in 0..<(frames - 1) { text += "f\(index):\ncall local f\(index + 1)\nadd %r0, 1\nexit\n" }
            return text + "f\(frames - 1):\nmov %r0, 0\nexit\n"
        }
        let eight = try run(chain(8), engine: engine)
        #expect(eight.execution.fault == nil)
        #expect(eight.execution.returnValue == 7)
        let nine = try run(chain(9), engine: engine)
        #expect(nine.execution.fault?.code == "call_depth")
        #expect(nine.execution.fault?.pc == 21)
    }

    @Test(arguments: Engine.allCases)
    func unknownHelper(engine: Engine) throws {
        // Helper 211 is the kernel's bpf_cgrp_storage_delete, which bpfsim does not emulate;
        // 999 is no helper at all.
        let known = try run("call 211\nexit", engine: engine)
        #expect(
            known.execution.fault?.description
                == "instruction 0 (call 211): helper 211 (bpf_cgrp_storage_delete) is not emulated")
        let noMap = try run("mov %r1, 0\ncall 1\nexit", engine: engine)
        #expect(
            noMap.execution.fault?.description == "instruction 1 (call 1): bpf_map_lookup_elem: R1 is not a map pointer"
        )
        let unknown = try run("call 999\nexit", engine: engine)
        #expect(unknown.execution.fault?.description == "instruction 0 (call 999): unknown helper 999")
    }

    @Test(arguments: Engine.allCases)
    func runningOffTheEnd(engine: Engine) throws {
        let result = try run("mov %r0, 1", engine: engine)
        #expect(result.execution.fault?.code == "fell_off_end")
        #expect(result.execution.fault?.pc == 0)
    }

    @Test(arguments: Engine.allCases)
    func callxTargets(engine: Engine) throws {
        // A function address from `lddw func` calls the function; a helper id calls the helper.
        let local = try run("lddw %r2, func f\ncall %r2\nexit\nf:\nmov %r0, 42\nexit", engine: engine)
        #expect(local.execution.fault == nil)
        #expect(local.execution.returnValue == 42)
        let bad = try run("lddw %r2, 0x300000000\ncall %r2\nexit", engine: engine)
        #expect(bad.execution.fault?.code == "bad_call_target")
    }

    @Test(arguments: Engine.allCases)
    func programWithMapsNeedsAnObject(engine: Engine) throws {
        do {
            _ = try run("lddw %r1, map_fd 3\nexit", engine: engine)
            Issue.record("a map reference without maps must not load")
        } catch let error as SessionError {
            #expect(error.programError == .unresolvedPseudoLoad(.mapFD, at: 0))
        }
    }

    @Test(arguments: Engine.allCases)
    func framesKeepTheirOwnStack(engine: Engine) throws {
        // The callee writes its own frame; the caller's slot at r10-8 survives, and r6-r9 too.
        let result = try run(
            """
            stdw [%r10-8], 11
            mov %r6, 5
            call local f
            ldxdw %r0, [%r10-8]
            add %r0, %r6
            exit
            f:
            stdw [%r10-8], 99
            mov %r6, 1000
            exit
            """, engine: engine)
        #expect(result.execution.fault == nil)
        #expect(result.execution.returnValue == 16)
    }
}
