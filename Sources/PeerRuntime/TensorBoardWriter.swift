import Foundation
import Mesh

/// Scalars as TensorBoard event files, so `tensorboard --logdir runs` shows a run (issue 15).
///
/// The format is written by hand: a file of TFRecords, each `[length u64 LE][masked CRC-32C of the
/// length u32 LE][data][masked CRC-32C of the data u32 LE]`, whose data is a `tensorflow.Event`
/// protobuf — the first one carrying `file_version = "brain.Event:2"`, the others a `Summary`
/// with one `simple_value` per scalar. Only the fields TensorBoard reads for scalars are written:
/// Event.wall_time (1, double), Event.step (2, int64), Event.file_version (3, string),
/// Event.summary (5); Summary.value (1); Summary.Value.tag (1, string), simple_value (2, float).
///
/// Not thread-safe: one owner (a peer's worker thread). Appends and flushes per event, so a crash
/// loses at most the event being written and a reader sees whole records.
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    /// Creates `directory` (0700) and `events.out.tfevents.<seconds>.<host>` in it.
    public init(directory: URL, host: String = ProcessInfo.processInfo.hostName,
                wallTime: Double = Date().timeIntervalSince1970) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let safeHost = host.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }
        url = directory.appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(safeHost.isEmpty ? "murmur" : safeHost)")
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        write(Self.event(wallTime: wallTime, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { try? handle.close() }

    /// One scalar (`tag` such as "train/loss") at `step`.
    public func scalar(_ tag: String, _ value: Float, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        write(Self.event(wallTime: wallTime, step: step, scalars: [(tag, value)]))
    }

    private func write(_ event: [UInt8]) {
        try? handle.write(contentsOf: Self.record(event))
    }

    // MARK: format (pure, for tests)

    /// TFRecord framing of one record.
    static func record(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        out += length
        out += withUnsafeBytes(of: maskedCRC(length).littleEndian) { Array($0) }
        out += data
        out += withUnsafeBytes(of: maskedCRC(data).littleEndian) { Array($0) }
        return out
    }

    /// TFRecord's masked CRC-32C (Castagnoli): rotate right by 15, add a constant.
    static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        let crc = CRC32C.checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8
    }

    static func event(wallTime: Double, step: Int, fileVersion: String? = nil, scalars: [(String, Float)] = []) -> [UInt8] {
        var e: [UInt8] = []
        e += key(1, wire: 1) + withUnsafeBytes(of: wallTime.bitPattern.littleEndian) { Array($0) }
        e += key(2, wire: 0) + varint(UInt64(bitPattern: Int64(step)))
        if let fileVersion { e += key(3, wire: 2) + lengthDelimited(Array(fileVersion.utf8)) }
        if !scalars.isEmpty {
            var summary: [UInt8] = []
            for (tag, value) in scalars {
                let v = key(1, wire: 2) + lengthDelimited(Array(tag.utf8))
                    + key(2, wire: 5) + withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
                summary += key(1, wire: 2) + lengthDelimited(v)
            }
            e += key(5, wire: 2) + lengthDelimited(summary)
        }
        return e
    }

    static func key(_ field: UInt64, wire: UInt64) -> [UInt8] { varint(field << 3 | wire) }

    static func lengthDelimited(_ bytes: [UInt8]) -> [UInt8] { varint(UInt64(bytes.count)) + bytes }

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        repeat {
            let byte = UInt8(v & 0x7f)
            v >>= 7
            out.append(v == 0 ? byte : byte | 0x80)
        } while v != 0
        return out
    }
}
