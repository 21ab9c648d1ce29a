import Mesh

/// Which contribution: who computed it, in which life (incarnation), for which step (`tag`).
///
/// A peer computes at most one contribution per tag and life, and its tags only grow, so the id is
/// unique. The tag is also the batch and learning-rate step the contribution was computed with.
public struct ContributionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var origin: Int
    public var incarnation: UInt32
    public var tag: Int

    public init(origin: Int, incarnation: UInt32, tag: Int) {
        self.origin = origin
        self.incarnation = incarnation
        self.tag = tag
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.origin, a.incarnation, a.tag) < (b.origin, b.incarnation, b.tag)
    }

    public var description: String { "p#\(origin).\(incarnation)@\(tag)" }
}

/// One UPDATE as the protocol sees it, decoded once at the edge.
///
/// Wire (DESIGN §5, round protocol v2): header.step = `id.tag`; body = `[baseDigest u64]
/// [base + 1 u64][engine payload]`. `base` is the last step the sender had applied when it
/// computed the contribution (-1: the initial parameters); `baseDigest` its parameter digest then.
public struct Contribution: Sendable {
    public var id: ContributionID
    public var base: Int
    public var baseDigest: UInt64
    /// 64-bit FNV-1a of the payload: what a commit names, so a different body under the same id
    /// is never applied in its place.
    public var hash: UInt64
    public var payload: [UInt8]

    public init(id: ContributionID, base: Int, baseDigest: UInt64, payload: [UInt8]) {
        self.id = id
        self.base = base
        self.baseDigest = baseDigest
        self.payload = payload
        hash = Self.hash(payload)
    }

    public static let prefixSize = 16

    /// The UPDATE body.
    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: Self.prefixSize + payload.count)
        w.put(baseDigest)
        w.put(UInt64(base + 1))
        w.put(bytes: payload)
        return w.bytes
    }

    /// Decodes an UPDATE: `tag` and `incarnation` come from the header. The base must lie before
    /// the tag (a contribution is computed on parameters older than the step it is for).
    public static func decode(origin: Int, incarnation: UInt32, tag: UInt64, body: [UInt8]) throws(ByteReadError) -> Contribution {
        guard tag < UInt64(Int32.max) else { throw .outOfRange(field: "update step", value: tag) }
        var r = ByteReader(body)
        let digest = try r.get(UInt64.self, "update base digest")
        let basePlusOne = try r.get(UInt64.self, "update base")
        guard basePlusOne <= tag else { throw .outOfRange(field: "update base", value: basePlusOne) }
        return Contribution(id: ContributionID(origin: origin, incarnation: incarnation, tag: Int(tag)),
                            base: Int(basePlusOne) - 1, baseDigest: digest, payload: r.rest())
    }

    /// 64-bit FNV-1a.
    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

/// The proposer's decision for one step: exactly these contributions, in this order, make up
/// step `step` on every peer that applies it (DESIGN §6, round protocol v2).
///
/// Wire: header.step = `step`; body = `[proposer u16][flags u8: bit 0 timed out][waited ms u32]
/// [late bitmap u64][count u16]` then per entry `[origin u16][incarnation u32][tag u32][hash u64]`.
public struct Commit: Sendable, Equatable {
    public struct Entry: Sendable, Equatable, Hashable {
        public var id: ContributionID
        public var hash: UInt64
        public init(id: ContributionID, hash: UInt64) { self.id = id; self.hash = hash }
    }

    public var step: Int
    public var proposer: Int
    public var entries: [Entry]
    /// Whether the proposer stopped waiting at the deadline (for logs).
    public var timedOut: Bool
    /// How long the proposer waited from the first fresh contribution to the decision.
    public var waitedMillis: UInt32
    /// Peers the proposer waited for that did not make it (bit i = peer i, peers 0–63); their
    /// contribution is not lost: it is committed at a later step.
    public var late: UInt64

    public init(step: Int, proposer: Int, entries: [Entry], timedOut: Bool = false, waitedMillis: UInt32 = 0, late: UInt64 = 0) {
        self.step = step
        self.proposer = proposer
        self.entries = entries
        self.timedOut = timedOut
        self.waitedMillis = waitedMillis
        self.late = late
    }

    public var contributors: [Int] { entries.map(\.id.origin) }

    public func encodeBody() -> [UInt8] {
        var w = ByteWriter(capacity: 17 + 18 * entries.count)
        w.put(UInt16(proposer))
        w.put(UInt8(timedOut ? 1 : 0))
        w.put(waitedMillis)
        w.put(late)
        w.put(UInt16(entries.count))
        for e in entries {
            w.put(UInt16(e.id.origin))
            w.put(e.id.incarnation)
            w.put(UInt32(e.id.tag))
            w.put(e.hash)
        }
        return w.bytes
    }

    /// Decodes and checks a commit: peers in range, at most `maxEntries` entries, tags not after
    /// the step, origins strictly increasing (one contribution per peer).
    public static func decode(step: UInt64, body: [UInt8], peerCount: Int, maxEntries: Int) throws(ByteReadError) -> Commit {
        guard step < UInt64(Int32.max) else { throw .outOfRange(field: "commit step", value: step) }
        var r = ByteReader(body)
        let proposer = try r.count(UInt16.self, "commit proposer", max: peerCount - 1)
        let flags = try r.get(UInt8.self, "commit flags")
        let waited = try r.get(UInt32.self, "commit wait")
        let late = try r.get(UInt64.self, "commit late set")
        let n = try r.count(UInt16.self, "commit entry count", max: maxEntries)
        var entries: [Entry] = []
        entries.reserveCapacity(n)
        for _ in 0..<n {
            let origin = try r.count(UInt16.self, "commit entry origin", max: peerCount - 1)
            let inc = try r.get(UInt32.self, "commit entry incarnation")
            let tag = try r.count(UInt32.self, "commit entry step", max: Int(step))
            let hash = try r.get(UInt64.self, "commit entry hash")
            let e = Entry(id: ContributionID(origin: origin, incarnation: inc, tag: tag), hash: hash)
            // Strictly increasing origins: one contribution per peer, none twice.
            if let last = entries.last, last.id.origin >= e.id.origin { throw .outOfRange(field: "commit entry order", value: UInt64(origin)) }
            entries.append(e)
        }
        try r.finish()
        return Commit(step: Int(step), proposer: proposer, entries: entries, timedOut: flags & 1 != 0, waitedMillis: waited, late: late)
    }
}
