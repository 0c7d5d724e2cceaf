import Foundation

/// Spec results as JUnit XML, the dialect CI systems (Jenkins, GitLab, GitHub actions)
/// read: one `<testsuite>` per spec file, one `<testcase>` per case and backend, with
/// `<failure>` or `<skipped>` inside.
public enum JUnitReport {
    public static func xml(_ reports: [SpecReport]) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        let tests = reports.reduce(0) { $0 + $1.results.count + ($1.error == nil ? 0 : 1) }
        let failures = reports.reduce(0) { $0 + $1.failed }
        let skipped = reports.reduce(0) { $0 + $1.skipped }
        let time = reports.reduce(0.0) { $0 + $1.results.reduce(0.0) { $0 + $1.seconds } }
        out +=
            "<testsuites name=\"bpfsim\" tests=\"\(tests)\" failures=\"\(failures)\" skipped=\"\(skipped)\" time=\"\(seconds(time))\">\n"
        for report in reports {
            let suiteTime = report.results.reduce(0.0) { $0 + $1.seconds }
            out +=
                "  <testsuite name=\"\(escape(report.name))\" file=\"\(escape(report.file))\" tests=\"\(report.results.count + (report.error == nil ? 0 : 1))\" failures=\"\(report.failed)\" skipped=\"\(report.skipped)\" time=\"\(seconds(suiteTime))\">\n"
            if let error = report.error {
                out += "    <testcase classname=\"\(escape(report.name))\" name=\"spec\" time=\"0\">\n"
                out += "      <failure message=\"\(escape(firstLine(error)))\">\(escape(error))</failure>\n"
                out += "    </testcase>\n"
            }
            for result in report.results {
                out +=
                    "    <testcase classname=\"\(escape(report.name))\" name=\"\(escape(result.name + " [" + result.backend + "]"))\" time=\"\(seconds(result.seconds))\""
                switch result.status {
                case .passed:
                    out += "/>\n"
                case .failed:
                    let text = result.failures.joined(separator: "\n")
                    out +=
                        ">\n      <failure message=\"\(escape(firstLine(text)))\">\(escape(text))</failure>\n    </testcase>\n"
                case .skipped:
                    out += ">\n      <skipped message=\"\(escape(result.reason ?? ""))\"/>\n    </testcase>\n"
                }
            }
            out += "  </testsuite>\n"
        }
        out += "</testsuites>\n"
        return out
    }

    static func seconds(_ value: Double) -> String { String(format: "%.6f", value) }

    static func firstLine(_ text: String) -> String { String(text.split(separator: "\n").first ?? "") }

    /// XML text and attribute escaping; control characters XML 1.0 forbids become U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20: out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Spec results as text for people: one line per case (`PASS`/`FAIL`/`SKIP`, name,
/// backend, time), failures underneath, and a closing count.
public enum SpecTextReport {
    public static func lines(_ report: SpecReport) -> [String] {
        var lines = ["\(report.name) (\(report.file))"]
        if let error = report.error {
            lines.append("  FAIL  spec")
            lines += error.split(separator: "\n", omittingEmptySubsequences: false).map { "        \($0)" }
            return lines
        }
        let labels = report.results.map { "\($0.name) [\($0.backend)]" }
        let width = labels.map(\.count).max() ?? 0
        for (result, label) in zip(report.results, labels) {
            let status =
                switch result.status {
                case .passed: "PASS"
                case .failed: "FAIL"
                case .skipped: "SKIP"
                }
            let padded = label.padding(toLength: width, withPad: " ", startingAt: 0)
            var line = "  \(status)  \(padded)  \(time(result.seconds))"
            if let reason = result.reason { line += "  (\(reason))" }
            lines.append(line)
            for failure in result.failures {
                lines += failure.split(separator: "\n", omittingEmptySubsequences: false).map { "        \($0)" }
            }
        }
        return lines
    }

    /// `N passed, M failed, K skipped`.
    public static func summary(_ reports: [SpecReport]) -> String {
        let passed = reports.reduce(0) { $0 + $1.passed }
        let failed = reports.reduce(0) { $0 + $1.failed }
        let skipped = reports.reduce(0) { $0 + $1.skipped }
        return "\(passed) passed, \(failed) failed, \(skipped) skipped"
    }

    static func time(_ seconds: Double) -> String {
        let text = seconds < 1 ? String(format: "%.1f ms", seconds * 1000) : String(format: "%.2f s", seconds)
        return String(repeating: " ", count: max(0, 9 - text.count)) + text
    }
}
