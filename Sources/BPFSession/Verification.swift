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
