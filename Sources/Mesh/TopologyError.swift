/// A topology file that cannot be used, located precisely enough to fix it by hand.
///
/// `description` reads like a compiler diagnostic:
/// `topologies/x.yaml:12: peers[1].neighbors: unknown peer 'p9' (known: p0, p1, p2)`.
public struct TopologyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in a form tests and tools can match on.
    public enum Problem: Sendable, Equatable {
        /// The file could not be read (missing, unreadable); the text is the system's reason.
        case unreadable(String)
        /// YAML syntax error (including duplicate keys); the text is the parser's message.
        case syntax(String)
        /// A key the schema does not know; `suggestion` is the closest known key, if any is close.
        case unknownKey(String, suggestion: String?)
        /// A required field is absent.
        case missing
        /// The node has the wrong YAML shape (e.g. a list where a mapping is needed).
        case wrongShape(expected: String)
        /// A number that does not parse or is out of its allowed range.
        case badNumber(String, expected: String)
        /// A duration that does not parse (`250ms`, `1s`, `1.5s`, `2m` are valid).
        case badDuration(String)
        /// An endpoint that is not `tcp://host:port`.
        case badEndpoint(String)
        /// A value outside a closed set (e.g. `values: f16`).
        case badValue(String, allowed: [String])
        /// A peer id or endpoint used twice; `firstLine` is where it first appeared.
        case duplicate(String, firstLine: Int?)
        /// A neighbour id that names no peer.
        case unknownPeer(String, known: [String])
        /// A peer that lists itself as its own neighbour.
        case selfNeighbor(String)
        /// Fields that are individually fine but contradict each other.
        case inconsistent(String)
    }

    /// The file as the user named it (relative paths stay relative).
    public var file: String
    /// 1-based line of the offending node, when known.
    public var line: Int?
    /// Dotted path of the field, e.g. `peers[1].neighbors`; empty for file-level problems.
    public var field: String
    public var problem: Problem

    public init(file: String, line: Int?, field: String, problem: Problem) {
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem
    }

    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        out += ": "
        if !field.isEmpty { out += "\(field): " }
        return out + problemText
    }

    private var problemText: String {
        switch problem {
        case .unreadable(let why):
            return "cannot read the topology file (\(why)); check the path passed with --topology"
        case .syntax(let why):
            return "YAML syntax error: \(why)"
        case .unknownKey(let key, let suggestion):
            if let suggestion { return "unknown key '\(key)' (did you mean '\(suggestion)'?)" }
            return "unknown key '\(key)'"
        case .missing:
            return "required field is missing"
        case .wrongShape(let expected):
            return "expected \(expected)"
        case .badNumber(let text, let expected):
            return "bad number '\(text)' (expected \(expected))"
        case .badDuration(let text):
            return "bad duration '\(text)' (write e.g. 250ms, 1s, 1.5s or 2m)"
        case .badEndpoint(let text):
            return "bad endpoint '\(text)' (expected tcp://host:port with a port in 1...65535)"
        case .badValue(let text, let allowed):
            return "bad value '\(text)' (allowed: \(allowed.joined(separator: ", ")))"
        case .duplicate(let what, let firstLine):
            if let firstLine { return "duplicate '\(what)' (first used on line \(firstLine))" }
            return "duplicate '\(what)'"
        case .unknownPeer(let id, let known):
            return "unknown peer '\(id)' (known: \(known.joined(separator: ", ")))"
        case .selfNeighbor(let id):
            return "peer '\(id)' lists itself as a neighbour; remove it from its own list"
        case .inconsistent(let why):
            return why
        }
    }
}

/// Levenshtein distance, used to suggest the closest known key for a typo.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// The known key closest to `key`, if it is close enough to be a plausible typo.
func closestKey(to key: String, among known: [String]) -> String? {
    let scored = known.map { ($0, editDistance(key.lowercased(), $0)) }
    guard let best = scored.min(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }) else { return nil }
    return best.1 <= max(2, key.count / 3) ? best.0 : nil
}
