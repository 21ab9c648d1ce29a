import Testing
@testable import PeerRuntime

/// `ContentWatch` (issue 12): names a peer whose updates stay unlike the others' for a window.
@Suite struct ContentWatchTests {
    func step(_ agreements: [Double?], _ ratios: [Double]) -> [ContributionScore] {
        agreements.indices.map { ContributionScore(peer: $0, agreement: agreements[$0], normRatio: ratios[$0], clippedTensors: 0) }
    }

    @Test func negatedPeerIsNamedAfterTheWindowAndHonestOnesNever() {
        var w = ContentWatch(window: 10)
        var named: [ContentWatch.Change] = []
        for s in 0..<40 {
            // Honest peers wobble between 0.42 and 0.9; peer 3 pushes against them from step 5.
            let honest = [0.42 + Double(s % 7) * 0.07, 0.9 - Double(s % 5) * 0.1, 0.6]
            named += w.observe(step: s, step(honest + [s < 5 ? 0.7 : 0.1], [1, 1.8, 0.9, 1.1]))
        }
        #expect(named.count == 1)
        guard case .suspected(let v)? = named.first else { Issue.record("not named"); return }
        #expect(v.peer == 3 && v.reasons == ["disagrees"])
        #expect(v.step <= 5 + 20, "named within 20 steps of the attack: step \(v.step)")
        #expect(Set(w.suspects.keys) == [3])
    }

    @Test func loudPeerIsNamedAndClearedWhenItStops() {
        var w = ContentWatch(window: 4)
        var changes: [ContentWatch.Change] = []
        for s in 0..<20 {
            let loud = s < 10 ? 160.0 : 1.2
            changes += w.observe(step: s, step([0.7, 0.7, 0.7, 0.7], [1, 1, 2, loud]))
        }
        #expect(changes.count == 2)
        if case .suspected(let v)? = changes.first { #expect(v.peer == 3 && v.reasons == ["loud"] && v.step == 3) } else { Issue.record("\(changes)") }
        #expect(changes.last == .cleared(peer: 3, step: 11))
        #expect(w.suspects.isEmpty)
    }

    @Test func aloneOrTooFewScoresNamesNobody() {
        var w = ContentWatch(window: 3)
        var changes: [ContentWatch.Change] = []
        for s in 0..<10 { changes += w.observe(step: s, step([nil], [1])) }     // alone: no agreement
        // One scored step in a window of 3 is not enough to call a peer disagreeing…
        changes += w.observe(step: 10, step([0.0, 0.0], [1, 1]))
        #expect(changes.isEmpty)
        // …two of three are.
        changes += w.observe(step: 11, step([0.0, 0.9], [1, 1]))
        #expect(changes.count == 1)
    }
}
