import Foundation
import Testing
@testable import Checkpointing

@Suite struct CheckpointStoreTests {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// A toy format for the store's tests: 4-byte length, payload, 1-byte checksum.
    func encode(_ payload: [UInt8]) -> [UInt8] {
        let n = UInt32(payload.count)
        return [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + payload + [payload.reduce(0, &+)]
    }

    struct Bad: Error {}
    func decode(_ b: [UInt8]) throws -> [UInt8] {
        guard b.count >= 5 else { throw Bad() }
        let n = Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24
        guard b.count == n + 5 else { throw Bad() }
        let p = Array(b[4..<(4 + n)])
        guard p.reduce(0, &+) == b.last! else { throw Bad() }
        return p
    }

    @Test func keepsOnlyTheNewestK() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(directory: dir, keep: 2)
        for s in [10, 20, 30, 40] { try store.save(encode([UInt8(s)]), step: s) }
        #expect(store.list().map(\.step) == [30, 40])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test func truncatedOrBitFlippedNewestFallsBackToPrevious() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(directory: dir, keep: 3)
        try store.save(encode([1, 2, 3]), step: 1)
        try store.save(encode([4, 5, 6]), step: 2)
        var flipped = encode([7, 8, 9]); flipped[5] ^= 0x10
        try store.save(flipped, step: 3)
        let r = try store.loadNewest { _, b in try decode(b) }
        #expect(r.value == [4, 5, 6])
        #expect(r.skipped.count == 1 && r.skipped[0].contains("00000003"))

        // Truncate the good step-2 file too: now step 1 is the newest valid one.
        let full = try Data(contentsOf: store.url(forStep: 2))
        try full.prefix(3).write(to: store.url(forStep: 2))
        let r2 = try store.loadNewest { _, b in try decode(b) }
        #expect(r2.value == [1, 2, 3])
        #expect(r2.skipped.count == 2)
    }

    @Test func noValidCheckpointIsATypedErrorListingRejections() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(directory: dir)
        try store.save([0, 1], step: 5)
        #expect(throws: CheckpointStoreError.self) { try store.loadNewest { _, b in try decode(b) } }
    }

    @Test func atomicWriteReplacesWholeFile() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("x.bin")
        try AtomicFile.write(Array(repeating: 1, count: 1000), to: u)
        try AtomicFile.write([9, 9], to: u)
        #expect(try Data(contentsOf: u) == Data([9, 9]))
        #expect(throws: CheckpointStoreError.self) { try AtomicFile.write([1], to: URL(fileURLWithPath: "/nonexistent-dir/x")) }
    }
}
