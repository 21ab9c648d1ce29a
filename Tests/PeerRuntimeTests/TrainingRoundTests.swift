import Testing
@testable import PeerRuntime

@Suite struct TrainingRoundTests {
    typealias R = TrainingRound<String>

    func applied(_ ds: [R.Directive]) -> (step: Int, peers: [Int], missing: [Int], timedOut: Bool)? {
        for d in ds { if case .apply(let s, let c, let m, _, let t) = d { return (s, c.map(\.peer), m, t) } }
        return nil
    }

    @Test func appliesWhenEveryExpectedPeerArrivedSortedByPeer() {
        var r = R(me: 1, deadline: .fixed(seconds: 5))
        #expect(r.open(step: 0, expected: [0, 1, 2], now: 0).isEmpty)
        #expect(r.onContribution(peer: 2, step: 0, "c", now: 0.1).isEmpty)
        #expect(r.onContribution(peer: 1, step: 0, "b", now: 0.2).isEmpty)
        let a = applied(r.onContribution(peer: 0, step: 0, "a", now: 0.3))
        #expect(a?.step == 0 && a?.peers == [0, 1, 2] && a?.missing == [] && a?.timedOut == false)
        #expect(r.lastAppliedStep == 0 && r.openStep == nil)
    }

    @Test func deadlineAppliesWithWhoeverArrivedAndNamesTheMissing() {
        var r = R(me: 0, deadline: .fixed(seconds: 2))
        _ = r.open(step: 3, expected: [0, 1, 2], now: 10)
        _ = r.onContribution(peer: 0, step: 3, "own", now: 10)
        _ = r.onContribution(peer: 2, step: 3, "x", now: 10.5)
        #expect(r.onTick(now: 11.9).isEmpty)
        let a = applied(r.onTick(now: 12.0))
        #expect(a?.peers == [0, 2] && a?.missing == [1] && a?.timedOut == true)
    }

    @Test func neverAppliesWithoutTheOwnContribution() {
        var r = R(me: 0, deadline: .fixed(seconds: 1))
        _ = r.open(step: 0, expected: [0, 1], now: 0)
        _ = r.onContribution(peer: 1, step: 0, "x", now: 0)
        #expect(r.onTick(now: 100).isEmpty)
        #expect(applied(r.onContribution(peer: 0, step: 0, "own", now: 100))?.peers == [0, 1])
    }

    @Test func earlyContributionsAreBufferedAndLateOnesDropped() {
        var r = R(me: 0, deadline: .fixed(seconds: 1))
        _ = r.onContribution(peer: 1, step: 5, "ahead", now: 0)    // peer 1 is already at step 5
        _ = r.open(step: 4, expected: [0, 1], now: 0)
        _ = r.onContribution(peer: 0, step: 4, "own4", now: 0)
        _ = r.onTick(now: 1.5)                                      // 4 applied without peer 1
        let late = r.onContribution(peer: 1, step: 4, "late", now: 1.6)
        if case .droppedLate(let p, let s)? = late.first { #expect(p == 1 && s == 4) } else { Issue.record("expected droppedLate") }
        #expect(r.lateDropped == 1)
        _ = r.open(step: 5, expected: [0, 1], now: 2)
        let a = applied(r.onContribution(peer: 0, step: 5, "own5", now: 2))
        #expect(a?.peers == [0, 1] && a?.timedOut == false)
    }

    @Test func duplicatesAreIgnored() {
        var r = R(me: 0, deadline: .fixed(seconds: 1))
        _ = r.open(step: 0, expected: [0, 1, 2], now: 0)
        _ = r.onContribution(peer: 0, step: 0, "a", now: 0)
        _ = r.onContribution(peer: 1, step: 0, "b", now: 0)
        #expect(r.onContribution(peer: 1, step: 0, "b-again", now: 0).isEmpty)
        #expect(r.duplicatesDropped == 1)
    }

    @Test func gonePeerNoLongerHoldsTheRound() {
        var r = R(me: 0, deadline: .fixed(seconds: 100))
        _ = r.open(step: 0, expected: [0, 1, 2], now: 0)
        _ = r.onContribution(peer: 0, step: 0, "a", now: 0)
        _ = r.onContribution(peer: 2, step: 0, "c", now: 0)
        let a = applied(r.onPeerGone(1, now: 0.5))
        #expect(a?.peers == [0, 2] && a?.timedOut == false)
    }

    @Test func adaptiveDeadlineFollowsHistoryWithinBounds() {
        var r = R(me: 0, deadline: .adaptive(k: 3, floor: 0.05, ceiling: 10))
        #expect(r.currentDeadlineSeconds == 10)          // no history yet: the ceiling
        for s in 0..<10 {
            _ = r.open(step: s, expected: [0, 1], now: Double(s))
            _ = r.onContribution(peer: 0, step: s, "own", now: Double(s))
            _ = r.onContribution(peer: 1, step: s, "x", now: Double(s) + 0.2 + 0.01 * Double(s % 3))
        }
        let d = r.currentDeadlineSeconds
        #expect(d > 0.2 && d < 1.0, "deadline \(d)")
    }
}

@Suite struct TrainingRoundMembershipTests {
    @Test func contributionsFromUnexpectedPeersDoNotCount() {
        var r = TrainingRound<String>(me: 0, deadline: .fixed(seconds: 1))
        _ = r.onContribution(peer: 2, step: 0, "early-unexpected", now: 0)
        _ = r.open(step: 0, expected: [0, 1], now: 0)
        _ = r.onContribution(peer: 3, step: 0, "unexpected", now: 0)
        _ = r.onContribution(peer: 0, step: 0, "own", now: 0)
        let d = r.onContribution(peer: 1, step: 0, "b", now: 0)
        guard case .apply(_, let c, _, _, _)? = d.first else { Issue.record("not applied"); return }
        #expect(c.map(\.peer) == [0, 1])
        #expect(r.unexpectedDropped == 1)
    }

    @Test func observingRoundCompletesWithoutOwnContribution() {
        var r = TrainingRound<String>(me: 0, deadline: .fixed(seconds: 1))
        _ = r.open(step: 4, expected: [1, 2], now: 0, contributing: false)
        _ = r.onContribution(peer: 1, step: 4, "a", now: 0)
        let d = r.onContribution(peer: 2, step: 4, "b", now: 0)
        guard case .apply(let s, let c, _, _, _)? = d.first else { Issue.record("not applied"); return }
        #expect(s == 4 && c.map(\.peer) == [1, 2])
    }

    @Test func resetMovesPastCaughtUpSteps() {
        var r = TrainingRound<String>(me: 0, deadline: .fixed(seconds: 1))
        _ = r.onContribution(peer: 1, step: 3, "old", now: 0)
        _ = r.onContribution(peer: 1, step: 9, "ahead", now: 0)
        r.reset(lastApplied: 7)
        #expect(r.lastAppliedStep == 7)
        #expect(r.hasBuffered(atOrAfter: 9))
        #expect(!r.hasBuffered(atOrAfter: 10))
        if case .droppedLate? = r.onContribution(peer: 1, step: 5, "late", now: 0).first {} else { Issue.record("expected late drop") }
    }
}

@Suite struct TrainingRoundBoundsTests {
    @Test func farFutureContributionsAreRefusedNotBuffered() {
        var r = TrainingRound<String>(me: 0, deadline: .fixed(seconds: 1))
        for s in stride(from: 300, to: 100_000, by: 7) { _ = r.onContribution(peer: 1, step: s, "x", now: 0) }
        #expect(r.tooFarAheadDropped > 10_000)
        #expect(!r.hasBuffered(atOrAfter: 257))
        _ = r.onContribution(peer: 1, step: 5, "near", now: 0)
        #expect(r.hasBuffered(atOrAfter: 5))
    }
}
