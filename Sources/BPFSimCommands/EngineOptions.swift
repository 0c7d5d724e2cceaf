import BPFSim

/// Which backends `--engine` and `--compare` ask for: one backend to run on, or several
/// to run side by side and compare (the first is the reference the others are compared
/// with, and the one whose results are printed).
struct EngineSelection: Equatable {
    var backends: [Backend]
    var comparing: Bool { backends.count > 1 }

    static let help =
        "interp (bpfsim's interpreter), jit (bpfsim's x86-64 JIT), kernel (the running kernel through libbpf and BPF_PROG_TEST_RUN; needs bpf(2)), both (interp and jit, compared) or all (each of them, compared)"

    /// `--engine NAME` (or `all`), or `--compare A,B,...`; not both.
    static func parse(engine: String?, compare: String?) throws(CommandFailure) -> EngineSelection {
        if engine != nil && compare != nil { throw CommandFailure("give --engine or --compare, not both") }
        if let compare {
            let names = compare.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            var backends: [Backend] = []
            for name in names {
                guard let backend = Backend(name: name) else { throw unknown(name) }
                if !backends.contains(backend) { backends.append(backend) }
            }
            guard backends.count >= 2 else {
                throw CommandFailure("--compare needs at least two engines, such as interp,kernel")
            }
            return EngineSelection(backends: backends)
        }
        let name = engine ?? "interp"
        if name == "all" { return EngineSelection(backends: Backend.all) }
        if name == "both" { return EngineSelection(backends: Engine.allCases.map(Backend.engine)) }
        guard let backend = Backend(name: name) else { throw unknown(name) }
        return EngineSelection(backends: [backend])
    }

    private static func unknown(_ name: String) -> CommandFailure {
        CommandFailure(
            "unknown engine '\(name)' (engines: \(Backend.all.map(\.name).joined(separator: ", ")), both or all)")
    }
}
