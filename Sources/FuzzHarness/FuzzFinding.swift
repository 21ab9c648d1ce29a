/// A violated invariant: the decoder accepted an input but what it returned breaks a promise
/// (round trip, bounds, uniqueness…). Expected rejections are *not* findings; they are the
/// decoder's own typed errors.
public struct FuzzFinding: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which harness entry point raised it (`header`, `update`, `topology`, `checkpoint`).
    public var target: String
    /// What was violated, in words.
    public var message: String

    /// A finding of `target` described by `message`.
    public init(_ target: String, _ message: String) {
        self.target = target
        self.message = message
    }

    public var description: String { "fuzz finding in \(target): \(message)" }
}

/// Throws a `FuzzFinding` unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ target: String, _ message: @autoclosure () -> String) throws(FuzzFinding) {
    if !condition { throw FuzzFinding(target, message()) }
}
