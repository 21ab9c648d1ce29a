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
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to url: URL) throws(CheckpointStoreError) {
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: tmp, operation: "open", errno: errno) }
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
}
