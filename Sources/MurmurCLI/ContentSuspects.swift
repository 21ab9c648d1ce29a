/// Peers the others marked `suspect-content` (issue 12), from their heartbeat logs: per subject,
/// the newest verdict of each observer that logged one. Pure.
struct ContentSuspects: Sendable, Equatable {
    struct Suspect: Sendable, Equatable {
        var peer: String
        /// The earliest step at which an observer still suspecting it named it.
        var step: Int
        /// The newest reasons and figures logged about it ("disagrees agreement 0.03", "loud norm ratio 164").
        var detail: String
        /// Observers whose newest verdict is `suspect-content`, sorted.
        var by: [String]
    }

    /// Sorted by peer id.
    var suspects: [Suspect]

    init(_ peers: [PeerRunData]) {
        // subject → observer → (suspected?, step, detail)
        var latest: [String: [String: (Bool, Int, String)]] = [:]
        for observer in peers {
            for e in observer.events {
                guard case .other(let name, _, let f) = e.event, name == "suspect-content" || name == "content-ok",
                      let subject = f["from"] else { continue }
                let step = Int(f["step"] ?? "") ?? -1
                var detail = f["reason"] ?? "?"
                if let a = f["agreement"] { detail += " (agreement \(a)" + (f["norm_ratio"].map { ", norm ratio \($0))" } ?? ")") }
                else if let n = f["norm_ratio"] { detail += " (norm ratio \(n))" }
                latest[subject, default: [:]][observer.id] = (name == "suspect-content", step, detail)
            }
        }
        suspects = latest.keys.sorted().compactMap { subject in
            let marking = latest[subject]!.filter { $0.value.0 }
            guard let first = marking.min(by: { $0.value.1 < $1.value.1 }) else { return nil }
            return Suspect(peer: subject, step: first.value.1, detail: first.value.2, by: marking.keys.sorted())
        }
    }

    /// "p3 suspect-content since step 12: disagrees (agreement 0.03, norm ratio 1.1); marked by p0,p1,p2"
    var lines: [String] {
        suspects.map { "\($0.peer) suspect-content since step \($0.step): \($0.detail); marked by \($0.by.joined(separator: ","))" }
    }
}
