/// Bridges between safetensors files and flat `Float` buffers holding named tensors back to back
/// (the layout of model parameters, gradients and optimizer moments; see `Tensors.ParameterLayout`).
///
/// `entries` lists (name, shape) in buffer order; tensor k starts where tensor k−1 ends. This module
/// does not depend on `Tensors`, so callers pass `layout.slots.map { ($0.name, $0.shape) }`.
extension SafeTensors {
    /// F32 tensors named `prefix + name` for each entry, copied from `buffer` (which must hold at
    /// least the entries' total element count).
    public static func floatTensors(_ entries: [(name: String, shape: [Int])], from buffer: UnsafeBufferPointer<Float>,
                                    prefix: String = "") -> [SafeTensor] {
        var offset = 0
        var out: [SafeTensor] = []
        out.reserveCapacity(entries.count)
        for e in entries {
            let n = e.shape.reduce(1, *)
            precondition(offset + n <= buffer.count, "floatTensors: buffer smaller than the entries")
            out.append(SafeTensor(name: prefix + e.name, shape: e.shape, floats: buffer[offset..<(offset + n)]))
            offset += n
        }
        return out
    }

    /// Copies tensors `prefix + name` into `buffer` in entry order. Every tensor must exist with
    /// exactly the entry's shape (`missingTensor` / `wrongShape` otherwise) and a float dtype; on
    /// error `buffer` is unchanged.
    public func copyFloats(_ entries: [(name: String, shape: [Int])], into buffer: UnsafeMutableBufferPointer<Float>,
                           prefix: String = "") throws {
        var values: [[Float]] = []
        values.reserveCapacity(entries.count)
        var total = 0
        for e in entries {
            let t = try tensor(prefix + e.name)
            guard t.shape == e.shape else { throw SafeTensorsError.wrongShape(tensor: t.name, expected: e.shape, actual: t.shape) }
            values.append(try t.floats())
            total += t.elementCount
        }
        precondition(total <= buffer.count, "copyFloats: buffer smaller than the entries")
        var offset = 0
        for v in values {
            for (i, x) in v.enumerated() { buffer[offset + i] = x }
            offset += v.count
        }
    }
}
