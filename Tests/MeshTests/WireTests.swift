import Testing
@testable import Mesh

@Suite struct CRC32CTests {
    @Test func standardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func knownVectors() {
        // RFC 3720 (iSCSI) appendix B.4 vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func incrementalMatchesOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let state = CRC32C.update(CRC32C.update(CRC32C.start, bytes[..<333]), bytes[333...])
        #expect(CRC32C.finish(state) == CRC32C.checksum(bytes))
    }
}

@Suite struct MessageHeaderTests {
    static let run: UInt64 = 0x0123_4567_89AB_CDEF
    static let body: [UInt8] = Array("hello, mesh".utf8)
    static var valid: Envelope {
        .make(kind: .update, flags: .relayed, runID: run, origin: 3, incarnation: 7, step: 1_000_000_007,
              sequence: 42, body: body)
    }

    func decode(_ header: [UInt8], _ body: [UInt8] = MessageHeaderTests.body, maxBody: Int = 1 << 20) throws(WireError) -> MessageHeader {
        try MessageHeader.decode(header, body: body, expectedRunID: Self.run, maxBody: maxBody, peerCount: 4)
    }

    @Test func roundTrip() throws {
        let env = Self.valid
        let bytes = env.header.encode()
        #expect(bytes.count == MessageHeader.size)
        #expect(Array(bytes[0..<4]) == Array("MRMR".utf8))
        #expect(try decode(bytes) == env.header)
        let back = try Envelope(frames: env.frames, expectedRunID: Self.run, maxBody: 1024, peerCount: 4)
        #expect(back == env)
    }

    @Test func littleEndianLayout() {
        let bytes = Self.valid.header.encode()
        #expect(bytes[4] == MessageHeader.version)
        #expect(bytes[5] == MessageKind.update.rawValue)
        #expect(Array(bytes[8..<16]) == [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01])
        #expect(Array(bytes[16..<18]) == [3, 0])
        #expect(Array(bytes[30..<38]) == [42, 0, 0, 0, 0, 0, 0, 0])
    }

    func mutated(_ offset: Int, _ value: UInt8) -> [UInt8] {
        var bytes = Self.valid.header.encode()
        bytes[offset] = value
        return bytes
    }

    @Test func eachCorruptFieldHasItsError() {
        #expect(throws: WireError.badHeaderLength(47)) { try decode(Array(Self.valid.header.encode().dropLast())) }
        #expect(throws: WireError.badMagic(Array("XRMR".utf8))) { try decode(mutated(0, UInt8(ascii: "X"))) }
        #expect(throws: WireError.unsupportedVersion(9)) { try decode(mutated(4, 9)) }
        #expect(throws: WireError.unknownKind(99)) { try decode(mutated(5, 99)) }
        #expect(throws: WireError.unknownFlags(0x81)) { try decode(mutated(6, 0x81)) }
        #expect(throws: WireError.unknownFlags(5)) { try decode(mutated(46, 5)) }
        #expect(throws: WireError.wrongRunID(expected: Self.run, actual: Self.run ^ 0xFF)) {
            try decode(mutated(8, UInt8(truncatingIfNeeded: Self.run) ^ 0xFF))
        }
        #expect(throws: WireError.originOutOfRange(origin: 9, peerCount: 4)) { try decode(mutated(16, 9)) }
        #expect(throws: WireError.oversized(declared: UInt32(Self.body.count), limit: 4)) { try decode(Self.valid.header.encode(), maxBody: 4) }
        #expect(throws: WireError.bodyLengthMismatch(declared: UInt32(Self.body.count), actual: Self.body.count - 1)) {
            try decode(Self.valid.header.encode(), Array(Self.body.dropLast()))
        }
        var flipped = Self.body
        flipped[0] ^= 1
        #expect(throws: WireError.crcMismatch(declared: CRC32C.checksum(Self.body), actual: CRC32C.checksum(flipped))) {
            try decode(Self.valid.header.encode(), flipped)
        }
    }

    @Test func envelopeChecksFramesAndTopic() {
        let env = Self.valid
        #expect(throws: WireError.badFrameCount(2)) {
            try Envelope(frames: Array(env.frames.prefix(2)), expectedRunID: Self.run, maxBody: 1024, peerCount: 4)
        }
        var frames = env.frames
        frames[0] = Topic.message(kind: .heartbeat, origin: 3)
        #expect(throws: WireError.badTopic(frames[0])) {
            try Envelope(frames: frames, expectedRunID: Self.run, maxBody: 1024, peerCount: 4)
        }
    }

    @Test func topicsAndSubscriptions() {
        #expect(Topic.message(kind: .update, origin: 0x0102) == [2, 0x02, 0x01])
        #expect(Topic.parseSubscription([1] + Topic.presence(of: 5)) == .presence(5, subscribed: true))
        #expect(Topic.parseSubscription([0] + Topic.presence(of: 5)) == .presence(5, subscribed: false))
        #expect(Topic.parseSubscription([1, 2]) == .other(subscribed: true, topic: [2]))
        #expect(Topic.parseSubscription([7]) == .malformed)
        #expect(Topic.parseSubscription([]) == .malformed)
    }

    /// Thousands of random byte strings and random mutations of a valid message: every outcome is a
    /// typed error or a decode that re-encodes to the same bytes; nothing traps.
    @Test func fuzzNeverCrashes() {
        var rng = SplitMix64(seed: 0xF0F0)
        let valid = Self.valid.frames
        var decoded = 0, refused = 0
        for round in 0..<6000 {
            var frames = valid
            if round % 3 == 0 {
                frames = (0..<Int(rng.next() % 4 + 1)).map { _ in
                    (0..<Int(rng.next() % 70)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                }
            } else {
                for _ in 0..<Int(rng.next() % 4 + 1) {
                    let f = Int(rng.next() % 3)
                    guard !frames[f].isEmpty else { continue }
                    switch rng.next() % 3 {
                    case 0: frames[f][Int(rng.next() % UInt64(frames[f].count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                    case 1: frames[f].removeLast(Int(rng.next() % UInt64(frames[f].count)))
                    default: frames[f].append(UInt8(truncatingIfNeeded: rng.next()))
                    }
                }
            }
            do {
                let env = try Envelope(frames: frames, expectedRunID: Self.run, maxBody: 64, peerCount: 4)
                #expect(env.frames == frames)
                decoded += 1
            } catch {
                refused += 1
            }
        }
        #expect(decoded + refused == 6000)
        #expect(refused > 5000)
    }
}
