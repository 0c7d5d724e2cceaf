import BPFSession

/// Decodes ring-buffer and perf-buffer records with the object's BTF: a named struct
/// (`--record-type`), or by default the struct the record fits (docs/traces.md):
///
/// 1. the named structs whose size is the record's size;
/// 2. if more than one, those a map's key or value type is (a map of the record type,
///    as tools keep for the last event or a per-CPU scratch buffer, makes it known);
/// 3. decoded when exactly one is left; otherwise the record stays hex.
///
/// Types used only for local variables are not in an object's BTF: a program can make
/// its record type known with a map of it, or by naming it with `--record-type`.
public struct RecordDecoder: Sendable {
    public let btf: BTF
    /// The struct named on the command line, when one was.
    public let named: BTF.TypeEntry?
    private let mapTypes: Set<UInt32>

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// `recordType` is a struct name (`open_event` or `struct open_event`), or nil for the
    /// default choice.
    public init(btf: BTF, maps: [MapSpec], recordType: String?) throws(Failure) {
        self.btf = btf
        if let recordType {
            let name = recordType.hasPrefix("struct ") ? String(recordType.dropFirst(7)) : recordType
            guard let entry = btf.firstType(named: name, kind: .structure) ?? btf.firstType(named: name, kind: .union)
            else {
                let known = btf.types.filter { $0.kind == .structure && !$0.name.isEmpty }.map(\.name)
                throw Failure(
                    description:
                        "--record-type: the object's BTF has no struct '\(name)' (structs: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
                )
            }
            named = entry
        } else {
            named = nil
        }
        mapTypes = Set(maps.flatMap { [btf.resolved($0.btfKeyTypeID), btf.resolved($0.btfValueTypeID)] })
    }

    /// The type a record of `size` bytes is decoded as; nil when none is chosen. A named
    /// type decodes the start of a longer record.
    public func type(forSize size: Int) -> BTF.TypeEntry? {
        if let named { return (btf.size(of: named.id) ?? .max) <= size ? named : nil }
        let candidates = btf.types.filter {
            $0.kind == .structure && !$0.name.isEmpty && Int($0.sizeOrType) == size
        }
        if candidates.count == 1 { return candidates[0] }
        let used = candidates.filter { mapTypes.contains($0.id) }
        return used.count == 1 ? used[0] : nil
    }

    /// The record decoded: its type's C name and value; nil when no type fits.
    public func decode(_ data: [UInt8]) -> (type: String, value: BTFValue)? {
        guard let entry = type(forSize: data.count), let value = btf.format(data, as: entry.id) else { return nil }
        return (btf.typeName(entry.id), value)
    }
}
