import Foundation
import Membership
import Mesh
import MeshTesting
import Testing
@testable import PeerRuntime

/// Round protocol v2: the pure rules as tables, the core driven by hand, and whole clusters on the
/// simulated mesh with simulated compute time (no sleeps; every loop bounded).
@Suite struct ProtocolRuleTests {
    @Test func proposerIsStickyWhileItMayProposeThenTheLowestCandidate() {
        typealias P = PeerProtocol
        #expect(P.chooseProposer(current: nil, candidates: [2, 0, 1]) == 0)
        #expect(P.chooseProposer(current: 1, candidates: [0, 1, 2]) == 1)      // sticky: p0 coming back does not take over
        #expect(P.chooseProposer(current: 1, candidates: [0, 2]) == 0)         // p1 gone
        #expect(P.chooseProposer(current: 3, candidates: []) == nil)
    }

    @Test func paceSetLeavesOutOnlyChronicStragglers() {
        let tags = [0: 4, 1: 3, 2: 1]   // p2 is three steps behind
        #expect(PeerProtocol.paceSet(step: 5, newestTags: tags, candidates: [0, 1, 2], slack: 2) == [0, 1])
        #expect(PeerProtocol.paceSet(step: 5, newestTags: tags, candidates: [0, 2], slack: 2) == [0])       // p1 gone
        #expect(PeerProtocol.paceSet(step: 5, newestTags: tags, candidates: [0, 1, 2, 3], slack: 2) == [0, 1, 3])  // p3 not heard yet
        #expect(PeerProtocol.paceSet(step: 5, newestTags: tags, candidates: [0, 1, 2], slack: 4) == [0, 1, 2])  // overlap widens it
    }

    @Test func majorityVoteTable() {
        #expect(PeerNode.majorityVote(me: 0, mine: 7, others: []) == nil)
        #expect(PeerNode.majorityVote(me: 0, mine: 7, others: [(1, 7), (2, 9)]) == nil)
        #expect(PeerNode.majorityVote(me: 2, mine: 9, others: [(0, 7), (1, 7)])?.digest == 7)
        // A tie goes to the group holding the lowest index.
        #expect(PeerNode.majorityVote(me: 1, mine: 9, others: [(0, 7)])?.peers == [0])
        #expect(PeerNode.majorityVote(me: 0, mine: 9, others: [(1, 7)]) == nil)
    }

    @Test func donorTable() {
        #expect(PeerNode.chooseDonor([], after: 3) == nil)
        #expect(PeerNode.chooseDonor([(1, 3), (2, 2)], after: 3) == nil)
        #expect(PeerNode.chooseDonor([(1, 9), (2, 12), (3, 12)], after: 3) == 2)
        // Self-reported steps: one peer claiming to be far ahead is not everyone's donor.
        #expect(PeerNode.chooseDonor([(1, 100), (2, 1 << 40), (3, 100)], after: 3) == 1)
        #expect(PeerNode.chooseDonor([(4, 1 << 40), (1, 100), (2, 101), (3, 102)], after: 3) == 3, "not the one claiming 2^40")
        #expect(PeerNode.chooseDonor([(1, 100), (2, 101), (3, 102)], after: 3) == 2, "the majority's step, not the highest")
        #expect(PeerNode.chooseDonor([(1, 100), (2, 1 << 40), (3, 1 << 40)], after: 3) == 2, "a majority far ahead is followed")
        #expect(PeerNode.chooseDonor([(2, 50)], after: 3) == 2, "one live peer ahead: catch up from it")
        #expect(PeerNode.chooseDonor([(1, 3), (2, 1 << 40)], after: 3) == 2, "two candidates: whoever is ahead (liveness)")
    }

    @Test func finalVoteTable() {
        let agreed = PeerNode.finalVote(me: 0, reports: [(0, 5), (1, 5), (2, 5)], peerCount: 4)
        #expect(agreed == .agreed(digest: 5, peers: [0, 1, 2]))
        let minority = PeerNode.finalVote(me: 3, reports: [(3, 6), (0, 5), (1, 5)], peerCount: 4)
        #expect(minority == .disagreed(mine: 6, majority: 5, majorityPeers: [0, 1]))
        let alone = PeerNode.finalVote(me: 2, reports: [(2, 6)], peerCount: 3)
        #expect(alone == .unconfirmed(mine: 6, confirmedBy: [2], needed: 2))
        #expect(!alone.isSuccess && !minority.isSuccess && agreed.isSuccess)
        #expect(PeerNode.finalVote(me: 0, reports: [(0, 1)], peerCount: 1).isSuccess)
    }
}

@Suite struct ProtocolCoreTests {
    func core(_ me: Int, steps: Int = 10, overlap: Int = 0) -> PeerProtocol {
        PeerProtocol(me: me, incarnation: 1, peerCount: 3,
                     config: .init(steps: steps, overlap: overlap, deadline: .fixed(seconds: 1)), lastApplied: -1, digest: 0)
    }
    func contribution(_ o: Int, tag: Int, base: Int = -1) -> Contribution {
        Contribution(id: ContributionID(origin: o, incarnation: 1, tag: tag), base: base, baseDigest: 0, payload: [UInt8(o), UInt8(truncatingIfNeeded: tag)])
    }
    func commits(_ ds: [PeerProtocol.Directive]) -> [Commit] { ds.compactMap { if case .publishCommit(let c) = $0 { c } else { nil } } }
    func applies(_ ds: [PeerProtocol.Directive]) -> [(Commit, [Contribution])] {
        ds.compactMap { if case .apply(let c, let p) = $0 { (c, p) } else { nil } }
    }

    @Test func proposerWaitsForThePaceSetThenCommitsInIdOrder() {
        var p = core(0)
        var ds = p.setView(.init(trainers: [1, 2], active: true), now: 0)
        #expect(ds.contains { if case .compute(0, -1) = $0 { true } else { false } })
        ds = p.onContribution(contribution(0, tag: 0), now: 0.1)
        ds += p.onContribution(contribution(2, tag: 0), now: 0.2)
        #expect(commits(ds).isEmpty, "p1 is in the pace set and has not arrived")
        ds = p.onContribution(contribution(1, tag: 0), now: 0.3)
        let c = commits(ds)
        #expect(c.count == 1 && c[0].contributors == [0, 1, 2] && !c[0].timedOut)
        #expect(applies(ds).first?.0.step == 0, "the proposer applies its own commit")
    }

    @Test func aLateContributionIsCommittedAtALaterStepNotLost() {
        var p = core(0)
        _ = p.setView(.init(trainers: [1, 2], active: true), now: 0)
        _ = p.onContribution(contribution(0, tag: 0), now: 0)
        _ = p.onContribution(contribution(1, tag: 0), now: 0)
        var ds = p.onTick(now: 1.5)   // p2 is late: the deadline passes
        let first = commits(ds)
        #expect(first.first?.contributors == [0, 1] && first.first?.timedOut == true)
        #expect(first.first?.late == 1 << 2)
        ds = p.onApplied(step: 0, digest: 11, now: 1.6)
        ds += p.onContribution(contribution(2, tag: 0), now: 1.7)      // p2's step-0 work arrives
        ds += p.onContribution(contribution(0, tag: 1, base: 0), now: 1.8)
        ds += p.onContribution(contribution(1, tag: 1, base: 0), now: 1.9)
        #expect(commits(ds).isEmpty, "p2 is one step behind: still waited for, up to the deadline")
        ds += p.onTick(now: 3.0)
        let second = commits(ds)
        // Its step-0 contribution goes into step 1: late, not lost.
        #expect(second.count == 1, "\(second)")
        #expect(second.first?.entries.map(\.id.origin) == [0, 1, 2])
        #expect(second.first?.entries.map(\.id.tag) == [1, 1, 0])
    }

    @Test func contributionsTricklingInAreWaitedForAsLongAsTheMajorityTook() {
        // Four peers; the proposer has decided quick steps before (a quarter step is 25 ms).
        var p = PeerProtocol(me: 0, incarnation: 1, peerCount: 4,
                             config: .init(steps: 100, deadline: .fixed(seconds: 5)), lastApplied: -1, digest: 0)
        _ = p.setView(.init(trainers: [1, 2, 3], active: true), now: 0)
        var t = 0.0
        for step in 0..<6 {
            for o in 0..<4 { _ = p.onContribution(contribution(o, tag: step, base: step - 1), now: t) }
            _ = p.onApplied(step: step, digest: UInt64(step), now: t)
            t += 0.1
        }
        #expect(p.afterQuorumSeconds < 0.03)
        // Step 6: dense contributions arrive over a busy uplink, 0.4 s apart.
        _ = p.onContribution(contribution(0, tag: 6, base: 5), now: t)
        _ = p.onContribution(contribution(1, tag: 6, base: 5), now: t + 0.4)
        var ds = p.onContribution(contribution(2, tag: 6, base: 5), now: t + 0.8)   // the majority of 4
        ds += p.onTick(now: t + 1.0)
        #expect(commits(ds).isEmpty, "still arriving: waited as long as the majority took")
        ds = p.onContribution(contribution(3, tag: 6, base: 5), now: t + 1.2)
        #expect(commits(ds).first?.contributors == [0, 1, 2, 3] && commits(ds).first?.timedOut == false, "\(commits(ds))")
    }

    @Test func aFollowerAppliesExactlyTheCommittedSetEvenIfMoreArrived() {
        var f = core(1)
        _ = f.setView(.init(trainers: [0, 2], active: true), now: 0)
        let c0 = contribution(0, tag: 0), c2 = contribution(2, tag: 0)
        var ds = f.onContribution(c0, now: 0)
        ds += f.onContribution(c2, now: 0)
        let commit = Commit(step: 0, proposer: 0, entries: [Commit.Entry(id: c0.id, hash: c0.hash)])
        ds += f.onCommit(commit, now: 0.1)
        // Own compute is in flight: the apply waits for it (one job at a time).
        #expect(applies(ds).isEmpty)
        ds = f.onContribution(contribution(1, tag: 0), now: 0.2)
        let a = applies(ds)
        #expect(a.count == 1 && a[0].1.map(\.id.origin) == [0])
    }

    @Test func aCommitNamingAContributionNotYetHeardWaitsForIt() {
        var f = core(1)
        _ = f.setView(.init(trainers: [0, 2], active: false), now: 0)
        _ = f.setView(.init(trainers: [0, 2], active: true), now: 0)
        _ = f.onContribution(contribution(1, tag: 0), now: 0)
        let c0 = contribution(0, tag: 0)
        var ds = f.onCommit(Commit(step: 0, proposer: 0, entries: [Commit.Entry(id: c0.id, hash: c0.hash)]), now: 0.1)
        #expect(applies(ds).isEmpty)
        ds = f.onContribution(c0, now: 0.2)   // the proposer heard it first
        #expect(applies(ds).count == 1)
    }

    @Test func aCommitFromAnotherProposerIsRefusedUnlessItHasTheLowerIndex() {
        var f = core(2)
        _ = f.setView(.init(trainers: [1], active: false), now: 0)
        let c = contribution(1, tag: 0)
        _ = f.onCommit(Commit(step: 0, proposer: 1, entries: [Commit.Entry(id: c.id, hash: c.hash)]), now: 0)
        #expect(f.proposer == 1)
        _ = f.setView(.init(trainers: [0, 1], active: false), now: 0)
        #expect(f.proposer == 1, "sticky: p0 coming back does not take over")
        let before = f.refusedCount
        _ = f.onCommit(Commit(step: 1, proposer: 1, entries: [Commit.Entry(id: c.id, hash: c.hash)]), now: 0)
        #expect(f.refusedCount == before)
        _ = f.onCommit(Commit(step: 0, proposer: 3, entries: []), now: 0)
        #expect(f.refusedCount == before + 1, "p3 is not a candidate")
        _ = f.onCommit(Commit(step: 0, proposer: 0, entries: []), now: 0)
        #expect(f.proposer == 0, "the lower index wins a conflict")
    }

    @Test func overlapLetsAPeerComputeAheadOfItsAppliedStep() {
        var p = core(1, overlap: 1)
        var ds = p.setView(.init(trainers: [0], active: true), now: 0)
        ds += p.onContribution(contribution(1, tag: 0), now: 0.1)
        // Tag 1 may be computed on the initial parameters too (one step of overlap).
        #expect(ds.contains { if case .compute(1, -1) = $0 { true } else { false } })
        var q = core(1, overlap: 0)
        ds = q.setView(.init(trainers: [0], active: true), now: 0)
        ds += q.onContribution(contribution(1, tag: 0), now: 0.1)
        #expect(!ds.contains { if case .compute(1, _) = $0 { true } else { false } })
    }

    @Test func failedApplyIsNotRecordedAsApplied() {
        var p = core(0)
        _ = p.setView(.init(trainers: [], active: true), now: 0)
        let ds = p.onContribution(contribution(0, tag: 0), now: 0)
        #expect(applies(ds).count == 1)
        let after = p.onApplied(step: 0, digest: nil, now: 0.1)
        #expect(p.lastApplied == -1)
        #expect(after.contains { if case .needCatchUp = $0 { true } else { false } })
    }

    @Test func stepsDecidedDuringACatchUpAreKeptForAfterIt() {
        // p1 restarted at step 9 while the others are at 200: commits for 201 and the
        // contributions they name arrive while its snapshot is in flight.
        var f = PeerProtocol(me: 1, incarnation: 2, peerCount: 3,
                             config: .init(steps: 1000, deadline: .fixed(seconds: 1)), lastApplied: 9, digest: 0)
        _ = f.setView(.init(trainers: [0, 2], active: false, horizon: 200), now: 0)
        let c0 = contribution(0, tag: 201, base: 200)
        _ = f.onContribution(c0, now: 0.1)
        _ = f.onCommit(Commit(step: 201, proposer: 0, entries: [Commit.Entry(id: c0.id, hash: c0.hash)]), now: 0.2)
        _ = f.onCommit(Commit(step: 120, proposer: 0, entries: []), now: 0.2)   // long covered by the snapshot
        #expect(f.refusedCount == 0)
        var early = PeerProtocol(me: 1, incarnation: 2, peerCount: 3,
                                 config: .init(steps: 1000, deadline: .fixed(seconds: 1)), lastApplied: 9, digest: 0)
        _ = early.setView(.init(trainers: [], active: false), now: 0)
        _ = early.onContribution(contribution(0, tag: 600, base: 599), now: 0)
        #expect(early.refusedCount == 0, "heard before any heartbeat: kept, it may be named after the catch-up")
        var h = f
        _ = h.setView(.init(trainers: [0, 2], active: false, horizon: Int.max), now: 0.3)
        _ = h.onContribution(contribution(2, tag: 1000 + 64 + 1), now: 0.3)
        #expect(h.refusedCount == 1, "a heartbeat's claim cannot move the window past the run's end")
        var ds = f.reset(lastApplied: 200, digest: 5, now: 0.4)
        ds += f.setView(.init(trainers: [0, 2], active: true), now: 0.4)
        let a = applies(ds)
        #expect(a.count == 1 && a.first?.0.step == 201 && a.first?.1.map(\.id) == [c0.id], "\(ds)")
    }

    @Test func aPeerThatChoseAProposerByTheRuleFollowsTheOneItHearsDeciding() {
        // p2 reconnects and hears p0 before p1; p1 took the role while p0 was away and keeps it.
        var f = PeerProtocol(me: 2, incarnation: 1, peerCount: 4,
                             config: .init(steps: 100, deadline: .fixed(seconds: 1)), lastApplied: 9, digest: 0)
        f.resetProposer()
        _ = f.setView(.init(trainers: [0], active: true), now: 0)
        #expect(f.proposer == 0, "chosen by the rule")
        _ = f.setView(.init(trainers: [0, 1], active: true), now: 0.1)
        let c = contribution(1, tag: 10, base: 9)
        _ = f.onContribution(c, now: 0.1)
        _ = f.onContribution(Contribution(id: ContributionID(origin: 2, incarnation: 1, tag: 10), base: 9, baseDigest: 0, payload: [2]), now: 0.1)
        let ds = f.onCommit(Commit(step: 10, proposer: 1, entries: [Commit.Entry(id: c.id, hash: c.hash)]), now: 0.2)
        #expect(f.proposer == 1 && f.refusedCount == 0)
        #expect(applies(ds).first?.0.step == 10)
        // Once p1 is heard deciding, a higher index is refused again and a lower one wins.
        _ = f.onCommit(Commit(step: 11, proposer: 3, entries: []), now: 0.3)
        #expect(f.refusedCount == 1)
    }

    @Test func aProposerThatWasAwayYieldsToTheMajoritysProposer() {
        // p0 proposed, was stopped; p1 took over with p2 and p3. Woken, p0 hears p1's decisions.
        var f = PeerProtocol(me: 0, incarnation: 1, peerCount: 4,
                             config: .init(steps: 1000, deadline: .fixed(seconds: 1)), lastApplied: -1, digest: 0)
        _ = f.setView(.init(trainers: [1, 2, 3], active: true), now: 0)
        for o in 0..<4 { _ = f.onContribution(contribution(o, tag: 0), now: 0) }
        #expect(f.proposer == 0 && f.commitsMade == 1)
        _ = f.onApplied(step: 0, digest: 1, now: 0.1)
        let entries = (1..<4).map { o -> Commit.Entry in let c = contribution(o, tag: 300); return Commit.Entry(id: c.id, hash: c.hash) }
        let far = f.onCommit(Commit(step: 300, proposer: 1, entries: entries), now: 1)
        #expect(far.contains { if case .needCatchUp = $0 { true } else { false } }, "far ahead, by a majority: catch up")
        // After the catch-up, p1's next decision is followed, not refused.
        _ = f.reset(lastApplied: 300, digest: 2, now: 2)
        let next = (1..<4).map { o -> Commit.Entry in let c = contribution(o, tag: 301); return Commit.Entry(id: c.id, hash: c.hash) }
        let before = f.refusedCount
        _ = f.onCommit(Commit(step: 301, proposer: 1, entries: next), now: 2.1)
        #expect(f.refusedCount == before && f.proposer == 1, "proposer \(String(describing: f.proposer))")
        // A lone peer's decision (its own contribution only) does not move us.
        var g = PeerProtocol(me: 0, incarnation: 1, peerCount: 4,
                             config: .init(steps: 1000, deadline: .fixed(seconds: 1)), lastApplied: -1, digest: 0)
        _ = g.setView(.init(trainers: [1, 2, 3], active: true), now: 0)
        for o in 0..<4 { _ = g.onContribution(contribution(o, tag: 0), now: 0) }
        let lone = contribution(2, tag: 300)
        let ds = g.onCommit(Commit(step: 300, proposer: 2, entries: [Commit.Entry(id: lone.id, hash: lone.hash)]), now: 1)
        #expect(!ds.contains { if case .needCatchUp = $0 { true } else { false } })
    }

    @Test func aPeerFarBehindItsWindowAsksForCatchUpAtOnce() {
        // Woken from a long stop: every commit and contribution is beyond the 64-step window.
        var f = core(1, steps: 1000)
        _ = f.setView(.init(trainers: [0, 2], active: true), now: 0)
        let ds = f.onCommit(Commit(step: 300, proposer: 0, entries: []), now: 0.1)
        #expect(ds.contains { if case .needCatchUp(let why) = $0 { why.contains("ahead") } else { false } }, "\(ds)")
        // Once: not again while the catch-up is under way.
        let again = f.onContribution(contribution(0, tag: 301), now: 0.2)
        #expect(!again.contains { if case .needCatchUp = $0 { true } else { false } })
    }

    @Test func anIsolatedPeerDropsDecisionsItCannotCompleteAndGoesOnAlone() {
        var f = core(1, steps: 100)
        _ = f.setView(.init(trainers: [0, 2], active: true), now: 0)
        let lost = contribution(0, tag: 0)
        _ = f.onCommit(Commit(step: 0, proposer: 0, entries: [Commit.Entry(id: lost.id, hash: lost.hash)]), now: 0.1)
        _ = f.onCommit(Commit(step: 1, proposer: 0, entries: [Commit.Entry(id: lost.id, hash: lost.hash)]), now: 0.1)
        _ = f.onContribution(contribution(1, tag: 0), now: 0.2)
        f.isolate()
        let ds = f.setView(.init(trainers: [], active: true), now: 5)
        let c = commits(ds)
        #expect(c.first?.step == 0 && c.first?.proposer == 1 && c.first?.contributors == [1], "\(ds)")
        #expect(applies(ds).first?.0.step == 0)
    }

    @Test func hostileValuesAreRefusedNotTrapped() {
        // Steps at or past 2^31 and bases after the tag never become an Int.
        #expect(throws: ByteReadError.self) { try Contribution.decode(origin: 0, incarnation: 1, tag: 1 << 63 + 5, body: [UInt8](repeating: 0, count: 16)) }
        var w = ByteWriter()
        w.put(UInt64(0)); w.put(UInt64.max)
        #expect(throws: ByteReadError.self) { try Contribution.decode(origin: 0, incarnation: 1, tag: 3, body: w.bytes) }
        #expect(throws: ByteReadError.self) { try Commit.decode(step: UInt64.max, body: [], peerCount: 3, maxEntries: 10) }
        var c = ByteWriter()
        c.put(UInt16(0)); c.put(UInt8(0)); c.put(UInt32(0)); c.put(UInt64(0)); c.put(UInt16(60000))
        #expect(throws: ByteReadError.self) { try Commit.decode(step: 4, body: c.bytes, peerCount: 3, maxEntries: 10) }
        var p = core(0)
        _ = p.setView(.init(trainers: [1], active: true), now: 0)
        _ = p.onContribution(contribution(1, tag: 1 << 30), now: 0)
        #expect(p.refusedCount == 1)
    }
}

@Suite struct ClusterTimingTests {
    func options(steps: Int, overlap: Int = 0) -> PeerOptions {
        PeerOptions(steps: steps, membership: MembershipConfig(heartbeatInterval: 0.1, suspectAfter: 0.5, deadAfter: 1.5),
                    deadline: .adaptive(k: 4, floor: 0.1, ceiling: 2), overlap: overlap, startupGrace: 5, tick: 0,
                    finalLinger: 3)
    }

    func agreeAndFinish(_ c: SimCluster, _ label: String) {
        #expect(c.nodes.allSatisfy { $0.phase == .done }, "\(label): \(c.nodes.map(\.phase))")
        #expect(Set(c.nodes.map(\.digest)).count == 1, "\(label): \(c.nodes.map(\.digest))")
        #expect(c.nodes.allSatisfy { $0.outcome?.isSuccess == true }, "\(label): \(c.nodes.map { String(describing: $0.outcome) })")
        #expect(c.nodes.allSatisfy { $0.repairs == 0 && $0.snapshotsLoaded == 0 }, "\(label): repairs \(c.nodes.map(\.repairs))")
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func aTenTimesSlowerPeerNeitherSplitsNorSetsThePace(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 4)
        let steps = 120
        let even = try SimCluster(topology: topo, options: options(steps: steps), seed: seed, computeSeconds: 0.05)
        try even.start()
        #expect(try even.run(maxIterations: 40_000))
        let slow = try SimCluster(topology: topo, options: options(steps: steps), seed: seed, computeSeconds: 0.05)
        slow.computeSeconds[3] = 0.5
        try slow.start()
        #expect(try slow.run(maxIterations: 40_000))
        agreeAndFinish(even, "even seed \(seed)")
        agreeAndFinish(slow, "slow seed \(seed)")
        // Same commits everywhere; the slow peer takes part in at least 5% of them.
        let withSlow = (0..<steps).filter { slow.engines[0].contributorsByStep[$0]?.contains(3) == true }.count
        #expect(withSlow * 20 >= steps, "slow peer in \(withSlow) of \(steps) steps")
        for s in 0..<steps { #expect(Set(slow.engines.map { $0.contributorsByStep[s] ?? [] }).count == 1) }
        // The others' pace: at most 1.5x the run where nobody is slow (simulated time).
        #expect(Double(slow.iterations) <= 1.5 * Double(even.iterations), "slow \(slow.iterations) vs even \(even.iterations) iterations")
    }

    @Test(arguments: [UInt64(7), 8, 9])
    func overlapHidesLinkDelayAndKeepsAgreement(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 4)
        var iterations: [Int] = []
        for overlap in [0, 2] {
            let c = try SimCluster(topology: topo, options: options(steps: 80, overlap: overlap), seed: seed, computeSeconds: 0.05)
            c.network.setDefaultConditions(LinkConditions(dropProbability: 0, delayTicks: 10))   // 50 ms one way
            try c.start()
            #expect(try c.run(maxIterations: 40_000))
            agreeAndFinish(c, "overlap \(overlap) seed \(seed)")
            iterations.append(c.iterations)
        }
        #expect(Double(iterations[1]) < 0.8 * Double(iterations[0]), "overlap 2 took \(iterations[1]) iterations, none \(iterations[0])")
    }

    @Test func aComputeTenTimesLongerThanTheSuspicionTimeDoesNotMakeAPeerSuspect() throws {
        let topo = try loopbackTopology(peers: 3)
        let c = try SimCluster(topology: topo, options: options(steps: 6), seed: 3, computeSeconds: 5)
        try c.start()
        var suspected = false
        let done = try c.run(maxIterations: 40_000) { _ in
            for n in c.nodes where n.membership.records.values.contains(where: { $0.status == .suspect || $0.status == .dead }) { _ = n; suspected = true }
        }
        #expect(done)
        #expect(!suspected, "a healthy peer was suspected during a 5 s step (suspect_after 0.5 s)")
        agreeAndFinish(c, "long steps")
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func aPeerStoppedAcrossTheEndNeverReportsSuccessOnAnotherModel(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 4)
        let c = try SimCluster(topology: topo, options: options(steps: 60), seed: seed)
        try c.start()
        var pausedAt: Int?
        let done = try c.run(maxIterations: 60_000) { i in
            if pausedAt == nil, c.nodes[2].lastApplied >= 30 { c.pause(2); pausedAt = i }
            if pausedAt != nil, [0, 1, 3].allSatisfy({ c.nodes[$0].phase == .done }) { c.resume(2) }
        }
        #expect(done)
        let majority = c.nodes[0].digest
        #expect([0, 1, 3].allSatisfy { c.nodes[$0].outcome?.isSuccess == true && c.nodes[$0].digest == majority })
        let late = c.nodes[2]
        #expect(late.outcome?.isSuccess == false || late.digest == majority, "p2: \(String(describing: late.outcome))")
        #expect(late.stepsAlone == 0, "p2 trained \(late.stepsAlone) steps alone after the others left")
    }

    /// Stopped for more steps than its 64-step window (a SIGSTOP in `murmur chaos`): on waking a
    /// peer must catch up, not wait for commits it refused as too far ahead — p2, or p0, the
    /// proposer, whose role p1 took meanwhile (p0 must then follow p1 despite its lower index).
    @Test(arguments: [(2, UInt64(31)), (2, 32), (2, 33), (0, 51), (0, 52)])
    func aPeerWokenFarBehindCatchesUpAndEndsOnTheModel(stopped: Int, seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 4)
        let c = try SimCluster(topology: topo, options: options(steps: 400), seed: seed, computeSeconds: 0.002)
        try c.start()
        let other = stopped == 0 ? 1 : 0
        var phase = 0
        let done = try c.run(maxIterations: 200_000) { _ in
            switch phase {
            case 0 where c.nodes[stopped].lastApplied >= 30: c.pause(stopped); phase = 1
            case 1 where c.nodes[other].lastApplied >= c.nodes[stopped].lastApplied + 150: c.resume(stopped); phase = 2
            default: break
            }
        }
        #expect(done && phase == 2)
        #expect(Set(c.nodes.map(\.digest)).count == 1, "\(c.nodes.map(\.digest))")
        #expect(c.nodes.allSatisfy { $0.outcome?.isSuccess == true }, "\(c.nodes.map { String(describing: $0.outcome) })")
        #expect(c.nodes[stopped].stepsAlone == 0)
    }

    @Test(arguments: [UInt64(41), 42])
    func aPeerThatRanAheadAloneInAPartitionWaitsAtTheEndAndAdoptsTheMajority(seed: UInt64) throws {
        // Alone, p2 is ten times faster than the pair it is cut off from and reaches the last step
        // long before them; when the partition heals it must take their model, not leave on its own.
        let topo = try loopbackTopology(peers: 3)
        let c = try SimCluster(topology: topo, options: options(steps: 300), seed: seed, computeSeconds: 0.05)
        c.computeSeconds[2] = 0.005
        try c.start()
        var phase = 0
        var finishedAt = 0.0
        let done = try c.run(maxIterations: 200_000) { _ in
            switch phase {
            case 0 where c.nodes[0].lastApplied >= 20: c.network.partition([[0, 1], [2]]); phase = 1
            case 1 where c.nodes[2].phase != .training && c.nodes[2].lastApplied == 299: finishedAt = c.clock.now; phase = 2
            case 2 where c.clock.now >= finishedAt + 2: c.network.heal(); phase = 3   // well after p2's last step
            default: break
            }
        }
        #expect(done && phase == 3, "phase \(phase)")
        #expect(c.nodes[2].stepsAlone > 100, "p2 trained \(c.nodes[2].stepsAlone) steps alone")
        #expect(c.nodes[2].snapshotsLoaded >= 1, "p2 did not adopt the majority")
        #expect(Set(c.nodes.map(\.digest)).count == 1, "\(c.nodes.map(\.digest))")
        #expect(c.nodes.allSatisfy { $0.outcome?.isSuccess == true }, "\(c.nodes.map { String(describing: $0.outcome) })")
    }

    @Test(arguments: [UInt64(21), 22, 23])
    func aRestartWhileAnotherPeerIsStoppedEndsOnOneModel(seed: UInt64) throws {
        let topo = try loopbackTopology(peers: 4)
        let c = try SimCluster(topology: topo, options: options(steps: 150), seed: seed)
        try c.start()
        var phase = 0
        let done = try c.run(maxIterations: 80_000) { i in
            switch phase {
            case 0 where c.nodes[1].lastApplied >= 20: c.kill(1); c.pause(3); phase = 1
            case 1 where c.nodes[0].lastApplied >= 40: try c.restart(1); phase = 2
            case 2 where c.nodes[0].lastApplied >= 60: c.resume(3); phase = 3
            default: break
            }
        }
        #expect(done && phase == 3)
        let successful = c.nodes.filter { $0.outcome?.isSuccess == true }
        #expect(successful.count >= 3, "\(c.nodes.map { String(describing: $0.outcome) })")
        #expect(Set(successful.map(\.digest)).count == 1)
        #expect(Set(c.nodes.map(\.digest)).count == 1, "every peer ends on the same model: \(c.nodes.map(\.digest))")
    }

    @Test func aPeerThatHearsNobodyWaitsNamesWhomAndDoesNotReportSuccess() throws {
        let topo = try loopbackTopology(peers: 4)
        var o = options(steps: 20)
        o.giveUpAfter = 8
        o.endpoints = topo.peers.map { $0.pub.description }
        let c = try SimCluster(topology: topo, options: o, seed: 5)
        try c.start(only: [0])
        #expect(try c.run(maxIterations: 10_000))
        let lonely = c.nodes[0]
        #expect(c.engines[0].applied == 0 && c.engines[0].contributed.isEmpty, "it trained alone")
        guard case .nobodyHeard(_, let who)? = lonely.outcome else { Issue.record("outcome \(String(describing: lonely.outcome))"); return }
        #expect(who == ["p1 at tcp://127.0.0.1:20010", "p2 at tcp://127.0.0.1:20020", "p3 at tcp://127.0.0.1:20030"])
        #expect(lonely.outcome?.isSuccess == false)
    }

    @Test func askedToTrainAloneItDoesAndSucceeds() throws {
        let topo = try loopbackTopology(peers: 3)
        let c = try SimCluster(topology: topo, options: options(steps: 10), seed: 6)
        try c.setOptions(1) { $0.alone = true }
        try c.start(only: [1])
        #expect(try c.run(maxIterations: 20_000))
        #expect(c.engines[1].applied == 10)
        #expect(c.nodes[1].outcome?.isSuccess == true, "\(String(describing: c.nodes[1].outcome))")
    }
}
