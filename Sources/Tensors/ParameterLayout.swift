/// One named tensor inside a flat `Float` buffer.
public struct TensorSlot: Sendable, Hashable {
    /// Stable name (for the model: the Hugging Face GPT-2 name, e.g. `transformer.h.0.attn.c_attn.weight`).
    public let name: String
    /// Row-major shape; weights are stored (in, out).
    public let shape: [Int]
    /// First element of this tensor in the flat buffer.
    public let offset: Int
    /// Number of elements (product of `shape`).
    public var count: Int { shape.reduce(1, *) }
    /// The half-open element range of this tensor in the flat buffer.
    public var range: Range<Int> { offset..<(offset + count) }

    public init(name: String, shape: [Int], offset: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
    }
}

/// The order and shapes of the tensors packed into one flat buffer (llm.c style). Parameters,
/// gradients, optimizer moments and DeMo residuals all share one layout, so a tensor is found at the
/// same offset in each of them.
public struct ParameterLayout: Sendable, Hashable {
    public let slots: [TensorSlot]
    /// Total number of `Float`s.
    public let totalCount: Int

    /// Packs `entries` back to back in the given order.
    public init(_ entries: [(name: String, shape: [Int])]) {
        var offset = 0
        var slots: [TensorSlot] = []
        slots.reserveCapacity(entries.count)
        for e in entries {
            precondition(e.shape.allSatisfy { $0 > 0 }, "tensor \(e.name) has an empty dimension")
            let s = TensorSlot(name: e.name, shape: e.shape, offset: offset)
            slots.append(s)
            offset += s.count
        }
        self.slots = slots
        self.totalCount = offset
    }

    /// The slot called `name`, or nil.
    public func slot(named name: String) -> TensorSlot? { slots.first { $0.name == name } }
}
