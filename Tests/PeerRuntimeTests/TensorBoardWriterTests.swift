import Foundation
import Mesh
import Testing
@testable import PeerRuntime

/// TensorBoard event files written by hand: read back with an independent minimal reader (CRCs
/// checked), and with the `tensorboard` package when it is installed.
@Suite struct TensorBoardWriterTests {
    /// (step, tag, value) of every scalar in a TFRecord file of Events; throws on a bad CRC.
    static func read(_ url: URL) throws -> (version: String?, scalars: [(Int, String, Float)]) {
        struct Bad: Error {}
        let b = [UInt8](try Data(contentsOf: url))
        var i = 0
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
        func masked(_ s: ArraySlice<UInt8>) -> UInt32 { let c = CRC32C.checksum(s); return ((c >> 15) | (c << 17)) &+ 0xa282_ead8 }
        var version: String?
        var out: [(Int, String, Float)] = []
        while i < b.count {
            let n = Int(u64(i))
            guard masked(b[i..<(i + 8)]) == u32(i + 8), i + 12 + n + 4 <= b.count else { throw Bad() }
            let data = Array(b[(i + 12)..<(i + 12 + n)])
            guard masked(b[(i + 12)..<(i + 12 + n)]) == u32(i + 12 + n) else { throw Bad() }
            i += 12 + n + 4
            // Minimal protobuf walk: Event { 2: step varint, 3: version, 5: Summary { 1: Value { 1: tag, 2: float } } }
            var p = 0
            func varint(_ d: [UInt8], _ q: inout Int) -> UInt64 {
                var v: UInt64 = 0, shift: UInt64 = 0
                while true { let x = d[q]; q += 1; v |= UInt64(x & 0x7f) << shift; if x & 0x80 == 0 { return v }; shift += 7 }
            }
            var step = 0
            while p < data.count {
                let key = varint(data, &p)
                switch (key >> 3, key & 7) {
                case (1, 1): p += 8
                case (2, 0): step = Int(varint(data, &p))
                case (3, 2): let n = Int(varint(data, &p)); version = String(decoding: data[p..<(p + n)], as: UTF8.self); p += n
                case (5, 2):
                    let n = Int(varint(data, &p)); let summary = Array(data[p..<(p + n)]); p += n
                    var q = 0
                    while q < summary.count {
                        _ = varint(summary, &q); let m = Int(varint(summary, &q)); let value = Array(summary[q..<(q + m)]); q += m
                        var r = 0, tag = "", f: Float = .nan
                        while r < value.count {
                            let k = varint(value, &r)
                            if k == 0x0a { let t = Int(varint(value, &r)); tag = String(decoding: value[r..<(r + t)], as: UTF8.self); r += t }
                            else if k == 0x15 { f = Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(value[r + $1]) << (8 * UInt32($1)) }); r += 4 }
                            else { throw Bad() }
                        }
                        out.append((step, tag, f))
                    }
                default: throw Bad()
                }
            }
        }
        return (version, out)
    }

    func written() throws -> (URL, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-tb-\(UUID().uuidString)")
        let w = try TensorBoardWriter(directory: dir.appendingPathComponent("p0"), host: "test-host", wallTime: 1_767_268_800)
        for s in 1...5 { w.scalar("train/loss", 5 - Float(s) * 0.25, step: s, wallTime: 1_767_268_800 + Double(s)) }
        w.scalar("val/loss", 3.5, step: 5)
        return (dir, w.url)
    }

    @Test func eventsReadBackWithTheirCRCs() throws {
        let (dir, url) = try written()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(url.lastPathComponent == "events.out.tfevents.1767268800.test-host")
        let (version, scalars) = try Self.read(url)
        #expect(version == "brain.Event:2")
        #expect(scalars.map(\.0) == [1, 2, 3, 4, 5, 5])
        #expect(scalars.map(\.1) == Array(repeating: "train/loss", count: 5) + ["val/loss"])
        #expect(scalars.map(\.2) == [4.75, 4.5, 4.25, 4.0, 3.75, 3.5])
        #expect(TensorBoardWriter.varint(300) == [0xac, 0x02])
    }

    static let python: String? = {
        for p in [ProcessInfo.processInfo.environment["TENSORBOARD_PYTHON"], "\(NSHomeDirectory())/.cache/murmur/venv-torch/bin/python", "/usr/bin/python3"] {
            guard let p, FileManager.default.isExecutableFile(atPath: p) else { continue }
            let t = Process()
            t.executableURL = URL(fileURLWithPath: p)
            t.arguments = ["-c", "import tensorboard.backend.event_processing.event_accumulator"]
            t.standardError = FileHandle.nullDevice
            t.standardOutput = FileHandle.nullDevice
            guard (try? t.run()) != nil else { continue }
            t.waitUntilExit()
            if t.terminationStatus == 0 { return p }
        }
        return nil
    }()

    @Test(.enabled(if: python != nil, "the tensorboard package is not installed (pip install tensorboard; or set TENSORBOARD_PYTHON)"))
    func theTensorBoardPackageReadsTheScalars() throws {
        let (dir, _) = try written()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = Process()
        t.executableURL = URL(fileURLWithPath: Self.python!)
        t.arguments = ["-c", """
            import sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            a = EventAccumulator(sys.argv[1]); a.Reload()
            for tag in sorted(a.Tags()["scalars"]):
                print(tag, " ".join("%d:%.2f" % (e.step, e.value) for e in a.Scalars(tag)))
            """, dir.appendingPathComponent("p0").path]
        let pipe = Pipe()
        t.standardOutput = pipe
        try t.run()
        t.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(t.terminationStatus == 0)
        #expect(text.contains("train/loss 1:4.75 2:4.50 3:4.25 4:4.00 5:3.75"), "\(text)")
        #expect(text.contains("val/loss 5:3.50"), "\(text)")
    }
}
