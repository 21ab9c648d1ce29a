import Foundation

extension SafeTensors {
    /// Serialises to the safetensors byte layout, deterministically: `__metadata__` first (keys
    /// sorted), then tensors sorted by name, data laid out in that same order, header padded with
    /// spaces so the data section starts at a multiple of 8 bytes. Throws `invalidTensor` when a
    /// tensor's byte count disagrees with its shape or a name is empty or `__metadata__`.
    public func encoded() throws -> Data {
        let sorted = tensors.values.sorted { $0.name < $1.name }
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { "\(Self.quote($0)):\(Self.quote(metadata[$0]!))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for t in sorted {
            guard !t.name.isEmpty, t.name != "__metadata__" else {
                throw SafeTensorsError.invalidTensor(name: t.name, reason: "reserved or empty name")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }) else {
                throw SafeTensorsError.invalidTensor(name: t.name, reason: "negative dimension in \(t.shape)")
            }
            let need = t.elementCount * t.dtype.byteSize
            guard need == t.bytes.count else {
                throw SafeTensorsError.invalidTensor(name: t.name, reason: "shape \(t.shape) needs \(need) bytes, has \(t.bytes.count)")
            }
            if !first { json += "," }
            first = false
            let shape = t.shape.map(String.init).joined(separator: ",")
            json += "\(Self.quote(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + need)]}"
            offset += need
        }
        json += "}"
        var header = Array(json.utf8)
        while (8 + header.count) % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var out = Data(capacity: 8 + header.count + offset)
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for t in sorted { out.append(contentsOf: t.bytes) }
        return out
    }

    /// Writes `encoded()` to `url` atomically (temporary file, then rename).
    public func write(to url: URL) throws {
        let data = try encoded()
        do { try data.write(to: url, options: .atomic) } catch {
            throw SafeTensorsError.io(path: url.path, reason: error.localizedDescription)
        }
    }

    /// A JSON string literal for `s`.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
