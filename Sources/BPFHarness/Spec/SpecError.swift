/// Why a test spec could not be read or prepared: names the spec file and the YAML line
/// (`ddos.spec.yaml:14: unknown key 'verdic' in expect (did you mean 'verdict'?)`).
public struct SpecError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The spec file as it was named.
    public let file: String
    /// The 1-based YAML line, when the problem has one.
    public let line: Int?
    public let message: String

    public init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }

    static func unknownKey(_ key: String, in place: String, known: [String], file: String, line: Int?) -> SpecError {
        var text = "unknown key '\(key)' in \(place)"
        if let guess = closest(key, among: known) {
            text += " (did you mean '\(guess)'?)"
        } else {
            text += " (keys: \(known.joined(separator: ", ")))"
        }
        return SpecError(file: file, line: line, text)
    }

    /// The known word nearest `word` by edit distance, if it is near enough to be a typo.
    static func closest(_ word: String, among known: [String]) -> String? {
        let scored = known.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(1, min(3, word.count / 3)) ? best.0 : nil
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
