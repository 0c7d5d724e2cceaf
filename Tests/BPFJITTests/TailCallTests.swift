import BPFSim
import Testing

/// `bpf_tail_call` on both engines. The JIT compiles every program a prog array can
/// reach into the same mapping and jumps there from the helper thunk, in the caller's
/// frame; these programs check that it follows the interpreter (and the kernel) exactly.
///
/// Kernel facts pinned here, from Linux 6.18: `MAX_TAIL_CALL_CNT` is 33
/// (include/linux/bpf.h), so a program that tail-calls itself runs 1 + 33 times; an empty
/// slot or an index at or past `max_entries` makes the call fail and the caller continue
/// (`bpf_tail_call` in include/uapi/linux/bpf.h: "the program continues with the next
/// instruction"); a tail call from a subprogram replaces that subprogram's frame, so the
/// target's exit returns to the subprogram's caller.
struct TailCallTests {
    /// Slot 0 of `jumps` (map 0) holds program `target`; `counter` (map 1) is one u64.
    static func maps(slots: [(Int, Int)]) -> [MapSpec] {
        func u32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        return [
            MapSpec(
                name: "jumps", type: .progArray, keySize: 4, valueSize: 4, maxEntries: 4,
                initialEntries: slots.map { MapEntry(key: u32($0.0), value: u32($0.1)) }),
            MapSpec(name: "counter", type: .array, keySize: 4, valueSize: 8, maxEntries: 1),
        ]
    }

    static func program(_ name: String, _ text: String) throws -> ProgramDefinition {
        ProgramDefinition(name: name, section: "xdp", type: .xdp, instructions: try Assembler.assemble(text))
    }

    /// Runs program `index` `runs` times on each engine (a fresh session each) and
    /// expects the engines to agree on every run; returns the JIT's runs.
    static func agree(
        _ programs: [ProgramDefinition], slots: [(Int, Int)], index: Int = 0, runs: Int = 1,
        budget: UInt64 = 1_000_000, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> [ProgramRun] {
        func results(_ engine: Engine) throws -> [ProgramRun] {
            let configuration = RunConfiguration(engine: engine, limits: ExecutionLimits(instructionBudget: budget))
            let session = try Session(programs: programs, maps: maps(slots: slots), configuration: configuration)
            return (0..<runs).map { _ in session.run(index, input: .packet([UInt8](repeating: 0xab, count: 64))) }
        }
        let interpreter = try results(.interpreter)
        let jit = try results(.jit)
        for (a, b) in zip(interpreter, jit) {
            #expect(b.fallback == nil, "the JIT fell back: \(b.fallback ?? "")", sourceLocation: sourceLocation)
            #expect(a.execution.returnValue == b.execution.returnValue, sourceLocation: sourceLocation)
            #expect(a.execution.instructionCount == b.execution.instructionCount, sourceLocation: sourceLocation)
            #expect(a.execution.fault?.code == b.execution.fault?.code, sourceLocation: sourceLocation)
            if a.execution.fault?.code != "budget_exhausted" {
                #expect(a.execution.fault?.pc == b.execution.fault?.pc, sourceLocation: sourceLocation)
            }
        }
        return jit
    }

    /// Bumps the counter, tail-calls slot 0 (itself), and returns the count when the
    /// call fails.
    static let selfCall = """
        mov %r6, %r1
        stw [%r10-4], 0
        mov %r2, %r10
        add %r2, -4
        lddw %r1, map_idx 1
        call 1
        jeq %r0, 0, +10
        ldxdw %r7, [%r0+0]
        add %r7, 1
        stxdw [%r0+0], %r7
        mov %r1, %r6
        lddw %r2, map_idx 0
        mov %r3, 0
        call 12
        mov %r0, %r7
        exit
        mov %r0, 0
        exit
        """

    /// The kernel agrees: the same program in C (count in an array, `bpf_tail_call(ctx,
    /// &jumps, 0)` with slot 0 = itself, return the count), run once with
    /// `kernel_oracle.py elf-run` on Linux 6.18, returned 34.
    @Test func aProgramTailCallsItselfThirtyThreeTimes() throws {
        let runs = try Self.agree([try Self.program("self", Self.selfCall)], slots: [(0, 0)], runs: 2)
        // 1 + MAX_TAIL_CALL_CNT runs of the body; the count is per run, the counter persists.
        #expect(runs.map(\.execution.returnValue) == [34, 68])
        #expect(runs.allSatisfy { $0.execution.fault == nil })
    }

    @Test func emptySlotsAndIndicesPastTheEndFallThrough() throws {
        let dispatcher = """
            mov %r6, %r1
            lddw %r2, map_idx 0
            mov %r3, 2
            call 12
            mov %r1, %r6
            lddw %r2, map_idx 0
            mov %r3, 1000
            call 12
            mov %r0, 7
            exit
            """
        let runs = try Self.agree([try Self.program("dispatch", dispatcher)], slots: [(0, 0)])
        // Both calls fail and the program goes on (r0 after a failed tail call is not
        // defined by the kernel, so the program does not use it).
        #expect(runs[0].execution.returnValue == 7)
        #expect(runs[0].execution.fault == nil)
    }

    @Test func aTailCallReplacesTheProgramAndItsExitReturnsToTheCaller() throws {
        let target = """
            mov %r0, 5
            stdw [%r10-8], 1000
            ldxdw %r1, [%r10-8]
            add %r0, %r1
            exit
            """
        // The subprogram tail-calls; the target's exit returns to main's call, with r6
        // (callee-saved across the call) intact.
        let main = """
            mov %r6, 40
            call local +3
            add %r0, %r6
            add %r0, 100
            exit
            mov %r6, 9
            lddw %r2, map_idx 0
            mov %r3, 1
            call 12
            mov %r0, 77
            exit
            """
        let runs = try Self.agree(
            [try Self.program("main", main), try Self.program("target", target)], slots: [(1, 1)])
        #expect(runs[0].execution.fault == nil, "\(String(describing: runs[0].execution.fault))")
        #expect(runs[0].execution.returnValue == 1145)
    }

    @Test func theBudgetCoversTailCalledPrograms() throws {
        // 34 runs of the body need more than 300 instructions: both engines stop.
        let runs = try Self.agree([try Self.program("self", Self.selfCall)], slots: [(0, 0)], budget: 300)
        #expect(runs[0].execution.fault?.code == "budget_exhausted")
    }

    @Test func aFaultInATargetNamesTheTargetsInstruction() throws {
        let target = """
            mov %r0, 1
            ldxdw %r0, [%r0+8]
            exit
            """
        let main = """
            lddw %r2, map_idx 0
            mov %r3, 0
            call 12
            exit
            """
        let runs = try Self.agree(
            [try Self.program("main", main), try Self.program("target", target)], slots: [(0, 1)])
        #expect(runs[0].execution.fault?.code == "out_of_bounds")
        #expect(runs[0].execution.fault?.pc == 1)
    }

    /// A chain through three programs, each with its own loop and a callback-free helper
    /// call, to exercise blocks, budgets and jumps inside targets.
    @Test func aChainOfTargetsWithLoops() throws {
        let step = { (next: Int, add: Int) in
            """
            mov %r6, %r1
            mov %r7, 0
            add %r7, \(add)
            jlt %r7, 50, -2
            stw [%r10-4], 0
            mov %r2, %r10
            add %r2, -4
            lddw %r1, map_idx 1
            call 1
            mov %r8, 0
            jeq %r0, 0, +3
            ldxdw %r8, [%r0+0]
            add %r8, %r7
            stxdw [%r0+0], %r8
            mov %r1, %r6
            lddw %r2, map_idx 0
            mov %r3, \(next)
            call 12
            mov %r0, %r8
            exit
            """
        }
        let programs = [
            try Self.program("a", step(1, 3)), try Self.program("b", step(2, 7)), try Self.program("c", step(3, 11)),
        ]
        let runs = try Self.agree(programs, slots: [(1, 1), (2, 2)], runs: 2)
        // a: 51, b: 56, c: 55 (slot 3 is empty: c returns the counter).
        #expect(runs.map(\.execution.returnValue) == [162, 324])
    }

    /// A callback belongs to the program that passed it: after a tail call, `bpf_loop`'s
    /// callback is a function of the target, not of the program the run started in (the
    /// interpreter once ran the first program's code at the callback's index). bpf_loop
    /// (include/uapi/linux/bpf.h) calls `cb(index, ctx)` for index 0..nr_loops-1 while it
    /// returns 0, so the target returns (0 + 1 + 2 + 3) + 4 * 100 = 406.
    @Test func aCallbackAfterATailCallIsTheTargetsFunction() throws {
        let dispatch = try Self.program(
            "dispatch",
            """
            mov %r6, %r1
            mov %r1, %r6
            lddw %r2, map_idx 0
            mov %r3, 0
            call 12
            mov %r0, 99
            exit
            """)
        let target = try Self.program(
            "target",
            """
            stdw [%r10-8], 0
            mov %r1, 4
            lddw %r2, func cb
            mov %r3, %r10
            add %r3, -8
            mov %r4, 0
            call 181
            ldxdw %r0, [%r10-8]
            exit
            cb:
            ldxdw %r4, [%r2]
            add %r4, %r1
            add %r4, 100
            stxdw [%r2], %r4
            mov %r0, 0
            exit
            """)
        let runs = try Self.agree([dispatch, target], slots: [(0, 1)])
        #expect(runs.map(\.execution.returnValue) == [406])
        #expect(runs.first?.execution.fault == nil)
    }
}
