import Yams

/// A YAML node with the spec file it came from, so every complaint names file and line.
struct YAMLNode {
    let node: Node
    let file: String

    var line: Int? { node.mark?.line }

    func error(_ message: String) -> SpecError { SpecError(file: file, line: line, message) }

    /// Reads `text` (the spec's contents) into its root node.
    static func parse(_ text: String, file: String) throws(SpecError) -> YAMLNode {
        do {
            guard let root = try Yams.compose(yaml: text) else {
                throw SpecError(file: file, line: nil, "the file is empty")
            }
            return YAMLNode(node: root, file: file)
        } catch let error as SpecError {
            throw error
        } catch let error as YamlError {
            throw SpecError(file: file, line: Self.line(of: error), "not valid YAML: \(Self.problem(of: error))")
        } catch {
            throw SpecError(file: file, line: nil, "not valid YAML: \(error)")
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }

    private static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            (context.map { "\($0.text) " } ?? "") + problem
        default: "\(error)"
        }
    }

    var isScalar: Bool {
        if case .scalar = node { return true }
        return false
    }

    var isMapping: Bool {
        if case .mapping = node { return true }
        return false
    }

    var isSequence: Bool {
        if case .sequence = node { return true }
        return false
    }

    /// A scalar written without quotes (so `12` is a number, `"12"` text).
    var isPlainScalar: Bool {
        if case .scalar(let scalar) = node { return scalar.style == .plain }
        return false
    }

    var isNull: Bool {
        if case .scalar(let scalar) = node { return scalar.style == .plain && node.null != nil }
        return false
    }

    /// The key/value pairs of a mapping, in file order, after checking every key is known.
    func pairs(_ place: String, known: [String]) throws(SpecError) -> [(key: String, value: YAMLNode, line: Int?)] {
        guard case .mapping(let mapping) = node else {
            throw error("\(place) must be a mapping (key: value)")
        }
        var result: [(key: String, value: YAMLNode, line: Int?)] = []
        var seen: Set<String> = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw SpecError(file: file, line: key.mark?.line, "a key in \(place) must be plain text")
            }
            let name = scalar.string
            if !known.isEmpty && !known.contains(name) {
                throw SpecError.unknownKey(name, in: place, known: known, file: file, line: key.mark?.line)
            }
            if !seen.insert(name).inserted {
                throw SpecError(file: file, line: key.mark?.line, "key '\(name)' appears twice in \(place)")
            }
            result.append((name, YAMLNode(node: value, file: file), key.mark?.line))
        }
        return result
    }

    /// A mapping's values by key, after checking every key is known.
    func mapping(_ place: String, known: [String]) throws(SpecError) -> Fields {
        Fields(node: self, entries: try pairs(place, known: known), place: place)
    }

    func sequence(_ place: String) throws(SpecError) -> [YAMLNode] {
        guard case .sequence(let sequence) = node else { throw error("\(place) must be a list") }
        return sequence.map { YAMLNode(node: $0, file: file) }
    }

    /// A list, or one item taken as a list of one.
    func items() -> [YAMLNode] {
        if case .sequence(let sequence) = node { return sequence.map { YAMLNode(node: $0, file: file) } }
        return [self]
    }

    func string(_ place: String) throws(SpecError) -> String {
        guard case .scalar(let scalar) = node, !isNull else { throw error("\(place) must be text") }
        return scalar.string
    }

    /// An integer in decimal or `0x` hex (no octal: `010` is ten), optionally negative,
    /// from -2^63 to 2^64-1, as its 64-bit pattern.
    func integer(_ place: String) throws(SpecError) -> UInt64 {
        guard case .scalar(let scalar) = node, let value = Self.integer(scalar.string) else {
            throw error("\(place) must be an integer")
        }
        return value
    }

    func integer<T: FixedWidthInteger>(_ place: String, as type: T.Type) throws(SpecError) -> T {
        let value = try integer(place)
        let signed = Int64(bitPattern: value)
        if T.isSigned {
            guard let result = T(exactly: signed) else { throw error("\(place) is out of range for \(T.self)") }
            return result
        }
        guard let result = T(exactly: value), !(signed < 0 && isNegativeLiteral) else {
            throw error("\(place) must be between 0 and \(T.max)")
        }
        return result
    }

    private var isNegativeLiteral: Bool {
        if case .scalar(let scalar) = node { return scalar.string.hasPrefix("-") }
        return false
    }

    func bool(_ place: String) throws(SpecError) -> Bool {
        guard case .scalar(let scalar) = node else { throw error("\(place) must be true or false") }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("\(place) must be true or false")
        }
    }

    /// Whether a plain scalar reads as an integer (so typed bytes take it as a number).
    var looksLikeInteger: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return Self.integer(scalar.string) != nil
    }

    static func integer(_ text: String) -> UInt64? {
        var digits = Substring(text.replacingOccurrences(of: "_", with: ""))
        var negative = false
        if digits.hasPrefix("-") {
            negative = true
            digits = digits.dropFirst()
        } else if digits.hasPrefix("+") {
            digits = digits.dropFirst()
        }
        let magnitude: UInt64?
        if digits.lowercased().hasPrefix("0x") {
            magnitude = UInt64(digits.dropFirst(2), radix: 16)
        } else {
            magnitude = digits.allSatisfy(\.isASCII) ? UInt64(digits, radix: 10) : nil
        }
        guard let magnitude else { return nil }
        if negative {
            guard magnitude <= UInt64(1) << 63 else { return nil }
            return 0 &- magnitude
        }
        return magnitude
    }
}

/// A mapping's fields by name.
struct Fields {
    let node: YAMLNode
    let entries: [(key: String, value: YAMLNode, line: Int?)]
    let place: String

    subscript(_ key: String) -> YAMLNode? {
        entries.first { $0.key == key }.map { $0.value }
    }

    func has(_ key: String) -> Bool { entries.contains { $0.key == key } }

    func required(_ key: String) throws(SpecError) -> YAMLNode {
        guard let value = self[key] else { throw node.error("\(place) needs '\(key)'") }
        return value
    }
}
