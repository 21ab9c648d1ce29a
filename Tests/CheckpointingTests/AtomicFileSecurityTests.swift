import Foundation
import Testing
@testable import Checkpointing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 16, item 5: temporary files of atomic writes are not predictable, never follow a planted
/// symlink, and checkpoints are private (files 0600, folder 0700).
@Suite(.serialized) struct AtomicFileSecurityTests {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & 0o777 : 0xFFFF
    }

    /// Runs `body` with the process umask set to `mask` (restored afterwards).
    func withUmask<T>(_ mask: mode_t, _ body: () throws -> T) rethrows -> T {
        let old = umask(mask)
        defer { umask(old) }
        return try body()
    }

    @Test func writtenFileIsOwnerOnlyWhateverTheUmask() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("ckpt-00000001.safetensors")
        try withUmask(0) { try AtomicFile.write([1, 2, 3], to: u) }
        #expect(mode(u.path) == 0o600)
        #expect(FileManager.default.contents(atPath: u.path) == Data([1, 2, 3]))
        // Replacing keeps the mode and leaves no temporary file behind.
        try withUmask(0o022) { try AtomicFile.write([4], to: u) }
        #expect(mode(u.path) == 0o600)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == ["ckpt-00000001.safetensors"], "\(names)")
        // A caller may ask for a public mode explicitly.
        let pub = dir.appendingPathComponent("report.json")
        try withUmask(0o022) { try AtomicFile.write([5], to: pub, mode: 0o644) }
        #expect(mode(pub.path) == 0o644)
    }

    @Test func aSymlinkPlantedAtThePredictableOldNameIsNotFollowed() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let victim = dir.appendingPathComponent("victim.txt")
        try Data("precious".utf8).write(to: victim)
        let u = dir.appendingPathComponent("incarnation")
        // The name the old code used: ".<name>.tmp-<pid>", opened with O_CREAT|O_TRUNC through links.
        let predictable = dir.appendingPathComponent(".incarnation.tmp-\(getpid())")
        try FileManager.default.createSymbolicLink(at: predictable, withDestinationURL: victim)
        try AtomicFile.write(Array("7\n".utf8), to: u)
        #expect(String(decoding: FileManager.default.contents(atPath: victim.path) ?? Data(), as: UTF8.self) == "precious")
        #expect(FileManager.default.contents(atPath: u.path) == Data("7\n".utf8))
        // The planted link is still a link to the victim (not replaced by our file either).
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: predictable.path) == victim.path)
    }

    @Test func openNewRefusesAnythingAlreadyThere() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let victim = dir.appendingPathComponent("victim")
        try Data("v".utf8).write(to: victim)
        let link = dir.appendingPathComponent("link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim.path)
        #expect(AtomicFile.openNew(link, mode: 0o600) == -EEXIST)
        // A dangling symlink would let O_CREAT make the target; O_EXCL refuses it as well.
        let dangling = dir.appendingPathComponent("dangling").path
        let target = dir.appendingPathComponent("would-be-created").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: target)
        #expect(AtomicFile.openNew(dangling, mode: 0o600) == -EEXIST)
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(AtomicFile.openNew(victim.path, mode: 0o600) == -EEXIST)
        #expect(FileManager.default.contents(atPath: victim.path) == Data("v".utf8))
        let fresh = dir.appendingPathComponent("fresh").path
        let fd = AtomicFile.openNew(fresh, mode: 0o600)
        #expect(fd >= 0)
        if fd >= 0 { close(fd) }
        #expect(mode(fresh) == 0o600)
    }

    @Test func temporaryNamesAreRandom() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("x")
        var names = Set<String>()
        for _ in 0..<20 {
            let (fd, path) = try AtomicFile.createTemporary(near: u, mode: 0o600)
            close(fd)
            names.insert(path)
            #expect(URL(fileURLWithPath: path).lastPathComponent.hasPrefix(AtomicFile.temporaryPrefix(for: u)))
            #expect(!path.hasSuffix("-\(getpid())"))
        }
        #expect(names.count == 20)
    }

    @Test func checkpointFolderIsCreatedPrivateAndTightened() throws {
        let root = try tempDir(); defer { try? FileManager.default.removeItem(at: root) }
        let store = CheckpointStore(directory: root.appendingPathComponent("p0/checkpoints"), keep: 2)
        try withUmask(0o022) { _ = try store.save([1, 2, 3], step: 5) }
        #expect(mode(store.directory.path) == 0o700)
        #expect(mode(store.url(forStep: 5).path) == 0o600)
        // A folder left world-readable by an older version is tightened on the next save.
        let old = root.appendingPathComponent("old")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        #expect(mode(old.path) == 0o755)
        _ = try CheckpointStore(directory: old).save([9], step: 1)
        #expect(mode(old.path) == 0o700)
        // A folder that holds other things (say `.` given by mistake) is not chmod-ed; files still 0600.
        let shared = root.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try Data("notes".utf8).write(to: shared.appendingPathComponent("README"))
        let u = try CheckpointStore(directory: shared).save([7], step: 3)
        #expect(mode(shared.path) == 0o755)
        #expect(mode(u.path) == 0o600)
        // A file where the folder should be is an error, not followed or replaced.
        let file = root.appendingPathComponent("file")
        try Data([0]).write(to: file)
        #expect(throws: CheckpointStoreError.self) { try CheckpointStore(directory: file).save([1], step: 1) }
    }
}
