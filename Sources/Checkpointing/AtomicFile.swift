import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the checkpoint file store.
public enum CheckpointStoreError: Error, CustomStringConvertible, Sendable {
    case io(path: String, operation: String, errno: Int32)
    case noValidCheckpoint(directory: String, rejected: [String])

    public var description: String {
        switch self {
        case .io(let p, let op, let e):
            return "\(op) failed for \(p): \(String(cString: strerror(e))) (errno \(e)). Check the folder exists, is writable and the disk is not full."
        case .noValidCheckpoint(let d, let rejected):
            if rejected.isEmpty { return "no checkpoint in \(d)" }
            return "no valid checkpoint in \(d); rejected: \(rejected.joined(separator: "; "))"
        }
    }
}

/// Crash-safe whole-file writes: write a temporary file in the same folder, fsync it, rename it over
/// the destination, then fsync the folder so the rename itself survives a power cut. A reader sees
/// the old file or the new one, never a torn mix. Blocking; call from any thread.
///
/// The temporary file has a random name (`.<name>.tmp-<16 hex digits>`) and is opened with
/// `O_CREAT | O_EXCL | O_NOFOLLOW`: a file or symlink planted at that name by someone else makes
/// the open fail (it is retried under a new random name) instead of being written through. It
/// gets `mode` (default 0600) from its creation, independent of the umask.
public enum AtomicFile {
    /// Writes `bytes` to `url` atomically; the file ends with permissions `mode`.
    public static func write(_ bytes: [UInt8], to url: URL, mode: mode_t = 0o600) throws(CheckpointStoreError) {
        let dir = url.deletingLastPathComponent().path
        let (fd, tmp) = try createTemporary(near: url, mode: mode)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + written, bytes.count - written)
            }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd); unlink(tmp)
                throw .io(path: tmp, operation: "write", errno: e)
            }
            written += n
        }
        if fsync(fd) != 0 { let e = errno; close(fd); unlink(tmp); throw .io(path: tmp, operation: "fsync", errno: e) }
        close(fd)
        if rename(tmp, url.path) != 0 { let e = errno; unlink(tmp); throw .io(path: url.path, operation: "rename", errno: e) }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// The name pattern of temporary files next to `url` (for tests and clean-up): `.<name>.tmp-`.
    public static func temporaryPrefix(for url: URL) -> String { "." + url.lastPathComponent + ".tmp-" }

    /// Opens a fresh temporary file next to `url` with a random name, `O_EXCL | O_NOFOLLOW` and
    /// `mode`; returns its descriptor and path. Retries a few names when one is taken.
    static func createTemporary(near url: URL, mode: mode_t) throws(CheckpointStoreError) -> (Int32, String) {
        let dir = url.deletingLastPathComponent().path
        var lastPath = dir
        for _ in 0..<8 {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            let tmp = dir + "/" + temporaryPrefix(for: url) + String(repeating: "0", count: 16 - suffix.count) + suffix
            lastPath = tmp
            let fd = openNew(tmp, mode: mode)
            if fd >= 0 { return (fd, tmp) }
            if -fd == EEXIST || -fd == ELOOP || -fd == EINTR { continue }
            throw .io(path: tmp, operation: "open", errno: -fd)
        }
        throw .io(path: lastPath, operation: "open (every random temporary name was taken)", errno: EEXIST)
    }

    /// Opens `path` for writing only if nothing (no file, no symlink, dangling or not) is there yet:
    /// `O_CREAT | O_EXCL | O_NOFOLLOW`, then `fchmod(mode)` (the umask may have removed bits the
    /// caller asked for). Returns the descriptor, or minus errno.
    static func openNew(_ path: String, mode: mode_t) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { return -errno }
        _ = fchmod(fd, mode)
        return fd
    }

    /// Creates `url` (and missing parents) as a folder only its owner can enter (mode 0700). An
    /// existing folder of ours that group or others could enter is tightened to 0700 only when
    /// everything in it passes `isOurs` (a folder such as `.` or `/tmp` given by mistake is left
    /// alone; the files written into it are 0600 anyway). Throws when the path is not a folder.
    public static func makePrivateDirectory(_ url: URL, isOurs: (String) -> Bool = { _ in false }) throws(CheckpointStoreError) {
        let path = url.path
        let parent = url.deletingLastPathComponent()
        if parent.path != path {
            do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
                throw .io(path: parent.path, operation: "mkdir", errno: EACCES)
            }
        }
        if mkdir(path, 0o700) == 0 { _ = chmod(path, 0o700); return }
        let e = errno
        guard e == EEXIST else { throw .io(path: path, operation: "mkdir", errno: e) }
        var st = stat()
        guard stat(path, &st) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .io(path: path, operation: "mkdir (exists and is not a folder)", errno: ENOTDIR) }
        if st.st_mode & 0o077 != 0 && st.st_uid == geteuid(),
           let names = try? FileManager.default.contentsOfDirectory(atPath: path), names.allSatisfy(isOurs) {
            if chmod(path, 0o700) != 0 { throw .io(path: path, operation: "chmod 700", errno: errno) }
        }
    }
}
