@_exported import BPFVerifier

extension Verifier {
    /// Verifies one program of a loaded object as the kernel would when libbpf loads it:
    /// with the object's maps (and what their BTF says about spin locks), its license,
    /// and its BTF function info. `withBTF: false` verifies as a loader that passes no
    /// BTF (what `kernel_oracle.py verify --insns` does).
    public static func verify(
        object: BPFObject, program: ObjectProgram, type: ProgramType? = nil, withBTF: Bool = true,
        options: VerifierOptions = .init()
    ) -> VerifierResult {
        var options = options
        options.hasFunctionInfo = withBTF && !program.functionInfo.isEmpty
        options.gplCompatible = object.license.map(Self.isGPLCompatible) ?? false
        options.expectedAttachType = program.expectedAttachType
        let maps = object.maps.map { spec -> VerifierMap in
            var map = VerifierMap(spec, spinLockOffset: withBTF ? spinLockOffset(object.btf, spec.btfValueTypeID) : nil)
            if !withBTF {
                // A bare loader neither passes BTF nor freezes read-only data.
                map.hasBTF = false
                map.frozenValue = nil
            }
            return map
        }
        return verify(instructions: program.instructions, type: type ?? program.type, maps: maps, options: options)
    }

    /// The licenses the kernel takes as GPL-compatible (`license_is_gpl_compatible`).
    public static func isGPLCompatible(_ license: String) -> Bool {
        ["GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"].contains(license)
    }

    /// Where the value type's `struct bpf_spin_lock` member is, in bytes.
    static func spinLockOffset(_ btf: BTF?, _ typeID: UInt32) -> Int? {
        guard let btf, typeID != 0, let entry = btf.type(btf.resolved(typeID)),
            case .members(let members) = entry.detail
        else { return nil }
        for member in members {
            if let type = btf.type(btf.resolved(member.type)), type.name == "bpf_spin_lock" {
                return Int(member.bitOffset / 8)
            }
        }
        return nil
    }
}

extension Session {
    /// Checks program `index` the way the kernel's verifier would before it first runs,
    /// as `run`, `replay`, `trace` and `test` do (`--no-verify` skips it). A program from
    /// an object is verified with the object's maps, license and BTF, as libbpf would load
    /// it; an assembly program with a packet type with its `--map`s. Programs without a
    /// kernel program type (flat memory, as the conformance suite runs) are not verified:
    /// the kernel has nothing to say about them. A refusal throws `SessionError` with code
    /// `verifier` and the verdict in `verification`.
    public func verify(_ index: Int) throws(SessionError) {
        let definition = definitions[index]
        let result: VerifierResult
        if let object, let program = object.programs.first(where: { $0.name == definition.name }) {
            guard program.type != .unspec else { return }
            result = Verifier.verify(object: object, program: program)
        } else {
            guard definition.type != .unspec else { return }
            result = Verifier.verify(instructions: definition.instructions, type: definition.type, maps: mapSpecs)
        }
        guard let error = result.error else { return }
        throw .verifierRefusal(definition, error, result)
    }
}

extension SessionError {
    static func verifierRefusal(_ definition: ProgramDefinition, _ error: VerifierError, _ result: VerifierResult)
        -> SessionError
    {
        var lines = ["program '\(definition.name)' would be refused by the kernel's verifier: \(error.message)"]
        if let index = error.index {
            var place = "  at instruction \(index)"
            if let source = definition.sourceLines[index] { place += " (\(source))" }
            lines.append(place)
        }
        lines.append("  " + error.explanation)
        lines.append("  (`bpfsim verify` shows the path; --no-verify runs it anyway)")
        var refusal = SessionError(code: "verifier", message: lines.joined(separator: "\n"))
        refusal.verification = result
        refusal.sourceLine = error.index.flatMap { definition.sourceLines[$0] }
        return refusal
    }
}
