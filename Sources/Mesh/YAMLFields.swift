import Yams

/// A validated view of one YAML mapping: unknown keys already rejected, every accessor reporting
/// failures as `TopologyError` with the file, the line of the offending node and its dotted path.
struct YAMLFields {
    let file: String
    /// Dotted path of this mapping (`""` for the document root).
    let path: String
    /// Line of the mapping itself: where a missing field is reported.
    let line: Int?
    private let entries: [String: Node]

    init(_ node: Node, file: String, path: String, allowed: [String]) throws(TopologyError) {
        self.file = file
        self.path = path
        self.line = node.mark?.line
        guard let mapping = node.mapping else {
            throw TopologyError(file: file, line: node.mark?.line, field: path,
                                problem: .wrongShape(expected: "a mapping of key: value"))
        }
        var entries: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                throw TopologyError(file: file, line: key.mark?.line, field: path,
                                    problem: .wrongShape(expected: "plain text keys"))
            }
            guard allowed.contains(name) else {
                throw TopologyError(file: file, line: key.mark?.line, field: Self.join(path, name),
                                    problem: .unknownKey(name, suggestion: closestKey(to: name, among: allowed)))
            }
            entries[name] = value
        }
        self.entries = entries
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func field(_ key: String) -> String { Self.join(path, key) }

    func error(_ key: String, _ problem: TopologyError.Problem) -> TopologyError {
        TopologyError(file: file, line: entries[key]?.mark?.line ?? line, field: field(key), problem: problem)
    }

    func has(_ key: String) -> Bool { entries[key] != nil }

    /// The value of `key`; absent or a bare `null`/`~`/empty counts as missing.
    func node(_ key: String) throws(TopologyError) -> Node {
        guard let node = optionalNode(key) else { throw error(key, .missing) }
        return node
    }

    /// The value of `key`, or nil when absent or a bare null (a quoted "null" is a string).
    func optionalNode(_ key: String) -> Node? {
        guard let node = entries[key] else { return nil }
        if let scalar = node.scalar, scalar.style == .plain, node.null != nil { return nil }
        return node
    }

    func scalarText(_ key: String) throws(TopologyError) -> String {
        let node = try node(key)
        guard let scalar = node.scalar else { throw error(key, .wrongShape(expected: "a single value")) }
        return scalar.string
    }

    func string(_ key: String) throws(TopologyError) -> String {
        let text = try scalarText(key)
        guard !text.trimmingWhitespace().isEmpty else { throw error(key, .missing) }
        return text
    }

    func optionalString(_ key: String) throws(TopologyError) -> String? {
        optionalNode(key) == nil ? nil : try string(key)
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws(TopologyError) -> Int {
        let text = try scalarText(key)
        guard let value = Int(text.trimmingWhitespace().replacingUnderscores()), range.contains(value) else {
            throw error(key, .badNumber(text, expected: "a whole number in \(range.lowerBound)...\(range.upperBound)"))
        }
        return value
    }

    func optionalInt(_ key: String, in range: ClosedRange<Int>) throws(TopologyError) -> Int? {
        optionalNode(key) == nil ? nil : try int(key, in: range)
    }

    func uint64(_ key: String) throws(TopologyError) -> UInt64 {
        let text = try scalarText(key)
        guard let value = UInt64(text.trimmingWhitespace().replacingUnderscores()) else {
            throw error(key, .badNumber(text, expected: "a whole number in 0...\(UInt64.max)"))
        }
        return value
    }

    func double(_ key: String, in range: ClosedRange<Double>) throws(TopologyError) -> Double {
        let text = try scalarText(key)
        guard let value = Double(text.trimmingWhitespace()), value.isFinite, range.contains(value) else {
            throw error(key, .badNumber(text, expected: "a number in \(range.lowerBound)...\(range.upperBound)"))
        }
        return value
    }

    func duration(_ key: String) throws(TopologyError) -> Duration {
        let text = try scalarText(key)
        guard let value = DurationText.parse(text), value > .zero else { throw error(key, .badDuration(text)) }
        return value
    }

    func bool(_ key: String) throws(TopologyError) -> Bool {
        let text = try scalarText(key)
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, .badValue(text, allowed: ["true", "false"]))
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws(TopologyError) -> T
    where T.RawValue == String {
        let text = try scalarText(key)
        guard let value = T(rawValue: text.trimmingWhitespace()) else {
            throw error(key, .badValue(text, allowed: T.allCases.map(\.rawValue)))
        }
        return value
    }

    func endpoint(_ key: String) throws(TopologyError) -> Endpoint {
        let text = try scalarText(key)
        guard let endpoint = Endpoint(parsing: text.trimmingWhitespace()) else { throw error(key, .badEndpoint(text)) }
        return endpoint
    }

    func mapping(_ key: String, allowed: [String]) throws(TopologyError) -> YAMLFields {
        try YAMLFields(try node(key), file: file, path: field(key), allowed: allowed)
    }

    func optionalMapping(_ key: String, allowed: [String]) throws(TopologyError) -> YAMLFields? {
        guard let node = optionalNode(key) else { return nil }
        return try YAMLFields(node, file: file, path: field(key), allowed: allowed)
    }

    func sequence(_ key: String) throws(TopologyError) -> [Node] {
        let node = try node(key)
        guard let sequence = node.sequence else { throw error(key, .wrongShape(expected: "a list")) }
        return Array(sequence)
    }
}

extension String {
    /// YAML allows `1_000`; Swift's integer parser does not.
    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
