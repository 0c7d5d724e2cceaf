import BPFCore

/// The short path shown with a refusal: the instructions that set the registers the
/// failing instruction used, and the branches taken on the way, newest last.
extension Analysis {
    func describePath(for error: VerifierError) -> [VerifierPathStep] {
        guard let state = failingState, let index = error.index, index < insns.count else { return [] }
        let lines = Dictionary(
            Disassembler.lines(program.instructions).map { ($0.index, $0.text) }, uniquingKeysWith: { a, _ in a })
        var relevant = ControlFlow.useDef(insns[index]).use
        var steps: [VerifierPathStep] = []
        var node = state.path
        var seen = 0
        var branches = 0
        while let current = node, steps.count < options.pathSteps, seen < 10_000 {
            seen += 1
            let at = Int(current.instruction)
            let insn = insns[at]
            let (use, def) = ControlFlow.useDef(insn)
            if current.register >= 0, relevant & (1 << UInt16(current.register)) != 0, def & (1 << UInt16(current.register)) != 0 {
                relevant &= ~(1 << UInt16(current.register))
                relevant |= use
                let note = current.value.map { "R\(current.register)=\($0.description(maps: maps))" }
                steps.append(VerifierPathStep(index: at, instruction: lines[at] ?? "", note: note))
            } else if let taken = current.taken, use & relevant != 0 || branches < 2 {
                branches += 1
                steps.append(VerifierPathStep(index: at, instruction: lines[at] ?? "", note: taken ? "taken" : "not taken"))
            }
            node = current.previous
        }
        steps.reverse()
        steps.append(VerifierPathStep(index: index, instruction: lines[index] ?? "", note: nil))
        return steps
    }
}
