import Foundation
import Testing
@_spi(DeMoInternals) @testable import DeMo
import Tensors

/// Issue 12: `aggregate: clipped` — one authorised peer sending loud updates must not take over
/// the sign of every step; the result stays a deterministic function of the set of contributions.
@Suite struct RobustAggregationTests {
    func optimizer(_ rule: DeMoAggregate, format: DeMoValueFormat = .f32) throws -> DeMoOptimizer {
        try DeMoOptimizer(layout: testLayout, config: DeMoConfig(decay: 0.9, topk: 4, chunk: 16, valueFormat: format, aggregate: rule))
    }

    /// `count` peers' payloads of one step: peer i's gradient is `common + noise_i`, times `scale[i]`.
    func payloads(_ scales: [Float], seed: UInt64, noise: Float = 0.5, format: DeMoValueFormat = .f32) throws -> [DeMoContribution] {
        let common = randomFloats(testLayout.totalCount, seed: seed)
        return try scales.enumerated().map { i, s in
            var o = try optimizer(.mean, format: format)
            let n = randomFloats(testLayout.totalCount, seed: seed &+ 1000 &+ UInt64(i), scale: noise)
            let g = zip(common, n).map { ($0 + $1) * s }
            return DeMoContribution(peer: i, payload: try prepare(&o, g, lr: 0.01))
        }
    }

    func applied(_ o: DeMoOptimizer, _ cons: [DeMoContribution], threads: Int? = nil) throws -> [UInt32] {
        var p = randomFloats(testLayout.totalCount, seed: 77)
        try p.withUnsafeMutableBufferPointer { _ = try o.apply(cons, lr: 0.01, to: $0, threads: threads) }
        return p.map(\.bitPattern)
    }

    /// The update direction (−1, 0, +1 per element) a set of contributions gives.
    func signs(_ o: DeMoOptimizer, _ cons: [DeMoContribution]) throws -> [Int] {
        let before = randomFloats(testLayout.totalCount, seed: 77)
        var p = before
        try p.withUnsafeMutableBufferPointer { try o.apply(cons, lr: 0.01, to: $0) }
        return zip(p, before).map { $0 > $1 ? 1 : ($0 < $1 ? -1 : 0) }
    }

    @Test func sameSetInAnyOrderOrThreadCountIsBitIdentical() throws {
        let o = try optimizer(.clipped)
        for seed: UInt64 in [1, 2, 3] {
            let cons = try payloads([1, 0.3, 7, -100, 2], seed: seed)
            let reference = try applied(o, cons)
            // Rotations and a reversal: bounded, every order a different summation input order.
            for r in 0..<cons.count {
                #expect(try applied(o, Array(cons[r...] + cons[..<r])) == reference)
            }
            #expect(try applied(o, cons.reversed()) == reference)
            #expect(try applied(o, cons, threads: 3) == reference)
            // A fresh optimizer (another process) computes the same bits.
            #expect(try applied(try optimizer(.clipped), cons.shuffled()) == reference)
        }
    }

    @Test(arguments: [DeMoValueFormat.f32, .bf16, .int8])
    func oneContributorIsTheMeanBitForBit(format: DeMoValueFormat) throws {
        let cons = try payloads([3], seed: 11, format: format)
        let clipped = try optimizer(.clipped, format: format), mean = try optimizer(.mean, format: format)
        #expect(try applied(clipped, cons) == (try applied(mean, cons)))
        #expect(clipped.clipFactors(tensor: 1, try clipped.validated(cons)).factor == [1])
    }

    /// Contributions of exactly equal norms per tensor (the same values, negated or at other
    /// slots): clipping is the identity and the result is the reference mean's, bit for bit.
    @Test func equalNormsAreTheMeanBitForBit() throws {
        let base = try payloads([1], seed: 21)[0].payload
        var negated = base, shifted = base
        for t in negated.tensors.indices { negated.tensors[t].values = negated.tensors[t].values.map { -$0 } }
        for t in shifted.tensors.indices {
            // Same values in the same order at other (still ascending) slots where the chunk allows.
            let tp = try optimizer(.mean).plan.tensors[t]
            for c in 0..<tp.chunkCount {
                let last = shifted.tensors[t].indices[(c + 1) * tp.k - 1]
                if Int(last) + 1 < tp.totalk { for i in (c * tp.k)..<((c + 1) * tp.k) { shifted.tensors[t].indices[i] += 1 } }
            }
        }
        let cons = [DeMoContribution(peer: 0, payload: base), DeMoContribution(peer: 1, payload: shifted),
                    DeMoContribution(peer: 2, payload: negated), DeMoContribution(peer: 3, payload: base)]
        let clipped = try optimizer(.clipped)
        for t in testLayout.slots.indices {
            #expect(clipped.clipFactors(tensor: t, try clipped.validated(cons)).factor == [1, 1, 1, 1])
        }
        #expect(try applied(clipped, cons) == (try applied(try optimizer(.mean), cons)))
    }

    /// Three honest peers and one whose gradients are ×−100: with the plain mean the loud peer's
    /// sign wins almost everywhere; clipped, the honest peers' direction wins.
    @Test(arguments: [UInt64(5), 1006, 90017])
    func loudNegatedContributorIsClippedSoTheHonestSignWins(seed: UInt64) throws {
        let honest = try payloads([1, 1, 1], seed: seed)
        let all = try payloads([1, 1, 1, -100], seed: seed)
        let mean = try optimizer(.mean), clipped = try optimizer(.clipped)
        let truth = try signs(mean, honest)
        func agreement(_ s: [Int]) -> Double {
            let moved = truth.indices.filter { truth[$0] != 0 }
            return Double(moved.filter { s[$0] == truth[$0] }.count) / Double(moved.count)
        }
        let plain = agreement(try signs(mean, all)), robust = agreement(try signs(clipped, all))
        #expect(plain < 0.5, "plain mean should follow the loud peer: \(plain)")
        #expect(robust > 0.75 && robust > plain + 0.3, "clipped should follow the honest peers: \(robust) (mean \(plain))")
        print("seed \(seed): honest sign kept by mean \(plain), by clipped \(robust)")
        // The scores name it: its norm is ~100× the median and it disagrees with the others.
        var p = randomFloats(testLayout.totalCount, seed: 77)
        let scores = try p.withUnsafeMutableBufferPointer { try clipped.applyScored(all, lr: 0.01, to: $0) }
        #expect(scores.map(\.peer) == [0, 1, 2, 3])
        #expect(scores[3].normRatio > 50 && scores[3].clippedTensors == testLayout.slots.count)
        for h in 0..<3 {
            #expect(scores[h].normRatio < 2)
            #expect(scores[h].agreement! > scores[3].agreement! + 0.2, "\(scores)")
        }
        #expect(scores[3].agreement! < 0.5)
    }

    /// Loud contributors are bounded: whatever their scale, the step is the same as if they had
    /// sent at the median norm (scale 1e3 and 1e6 give the same signs as each other).
    @Test func loudnessBeyondTheMedianChangesNothing() throws {
        let clipped = try optimizer(.clipped)
        let a = try signs(clipped, try payloads([1, 1.2, 0.9, -1e3], seed: 31))
        let b = try signs(clipped, try payloads([1, 1.2, 0.9, -1e6], seed: 31))
        let moved = a.indices.filter { a[$0] != 0 }
        #expect(Double(moved.filter { a[$0] == b[$0] }.count) / Double(moved.count) > 0.97)
    }

    @Test func zeroNormsAndSingleContributorsAreBounded() throws {
        let clipped = try optimizer(.clipped)
        let real = try payloads([1, 2], seed: 41)
        var zero = real[0].payload
        for t in zero.tensors.indices { zero.tensors[t].values = zero.tensors[t].values.map { _ in 0 } }
        // All zero: nothing moves (sign 0), no NaN, factors 1.
        let zeros = [DeMoContribution(peer: 0, payload: zero), DeMoContribution(peer: 1, payload: zero)]
        let before = randomFloats(testLayout.totalCount, seed: 77).map(\.bitPattern)
        #expect(try applied(clipped, zeros) == before)
        #expect(clipped.clipFactors(tensor: 0, zeros).factor == [1, 1])
        // Zero senders do not lower the bound of the others (the median is over non-zero norms):
        // the real contributors keep the factors they have without them; the step stays finite.
        let withZeros = real + [DeMoContribution(peer: 5, payload: zero), DeMoContribution(peer: 6, payload: zero),
                                DeMoContribution(peer: 7, payload: zero)]
        for t in testLayout.slots.indices {
            let with = clipped.clipFactors(tensor: t, withZeros).factor, without = clipped.clipFactors(tensor: t, real).factor
            #expect(Array(with.prefix(2)) == without && with.suffix(3) == [1, 1, 1])
        }
        #expect(try signs(clipped, withZeros).contains { $0 != 0 })
        // Scores: alone, agreement is unknown and the ratio is 1.
        var p = randomFloats(testLayout.totalCount, seed: 77)
        let alone = try p.withUnsafeMutableBufferPointer { try clipped.applyScored([real[1]], lr: 0.01, to: $0) }
        #expect(alone == [DeMoContributorScore(peer: 1, agreement: nil, normRatio: 1, clippedTensors: 0)])
        let none = try p.withUnsafeMutableBufferPointer { try clipped.applyScored([], lr: 0.01, to: $0) }
        #expect(none.isEmpty)
        #expect(p.allSatisfy { $0.isFinite })
    }

    /// Scores are part of the deterministic result: the same in any order and thread count.
    @Test func scoresAreDeterministic() throws {
        let o = try optimizer(.clipped)
        let cons = try payloads([1, 0.5, 4, -3], seed: 51)
        var p1 = randomFloats(testLayout.totalCount, seed: 1), p2 = p1
        let a = try p1.withUnsafeMutableBufferPointer { try o.apply(cons, lr: 0.01, to: $0, threads: 1, score: true) }
        let b = try p2.withUnsafeMutableBufferPointer { try o.apply(cons.reversed(), lr: 0.01, to: $0, threads: 3, score: true) }
        #expect(a == b)
        #expect(p1.map(\.bitPattern) == p2.map(\.bitPattern))
    }

    @Test func configDecodedWithoutAggregateIsClipped() throws {
        let json = #"{"decay":0.9,"topk":4,"chunk":16,"weightDecay":0,"valueFormat":0}"#
        let c = try JSONDecoder().decode(DeMoConfig.self, from: Data(json.utf8))
        #expect(c.aggregate == .clipped)
        let round = try JSONDecoder().decode(DeMoConfig.self, from: JSONEncoder().encode(DeMoConfig(aggregate: .mean)))
        #expect(round.aggregate == .mean)
    }
}
