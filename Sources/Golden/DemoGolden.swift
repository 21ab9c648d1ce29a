import Foundation

/// Golden checks for the DeMo optimizer (`kind` demo-*). Replaced by the DeMo implementation.
enum DemoGolden {
    static func verify(kind: String, object: [String: Any], url: URL) throws -> [GoldenCaseResult] {
        [GoldenCaseResult(file: url.lastPathComponent, name: kind, status: .unsupported, detail: "not supported yet")]
    }
}
