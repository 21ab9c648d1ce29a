import Foundation

/// Golden checks for the TinyGPT model (`kind` gpt). Replaced by the model implementation.
enum GPTGolden {
    static func verify(object: [String: Any], url: URL) throws -> [GoldenCaseResult] {
        [GoldenCaseResult(file: url.lastPathComponent, name: url.lastPathComponent, status: .unsupported,
                          detail: "not supported yet")]
    }
}
