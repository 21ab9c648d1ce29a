/// Per-(origin, incarnation) bookkeeping of sequence numbers: gaps (messages lost by PUB's silent
/// drops) are counted for logging, duplicates (relayed copies, replays) are detected.
///
/// Memory: one entry per origin (a newer incarnation replaces the older one) with a 64-message
/// window for duplicates among recent out-of-order arrivals. Pure value type; not thread-safe.
public struct SequenceTracker: Sendable {
    /// What one arrival means.
    public enum Observation: Sendable, Equatable {
        /// First message heard from this (origin, incarnation).
        case first
        /// The next expected number.
        case inOrder
        /// Ahead of the expected number: `missing` messages were skipped (possibly lost).
        case gap(missing: UInt64)
        /// A number that was missing earlier and has now arrived (reordered, e.g. via a relay).
        case late
        /// Already seen (or older than the duplicate window: treated as seen).
        case duplicate
        /// From an incarnation older than the newest one seen for this origin.
        case staleIncarnation
    }

    struct State: Sendable {
        var incarnation: UInt32
        var highest: UInt64
        /// Bit i set: `highest - i` has been seen.
        var window: UInt64
    }

    private var states: [PeerIndex: State] = [:]
    /// Messages known to be missing per origin (over all incarnations), for logs.
    public private(set) var gapsByOrigin: [PeerIndex: UInt64] = [:]
    /// Duplicates seen per origin, for logs.
    public private(set) var duplicatesByOrigin: [PeerIndex: UInt64] = [:]

    public init() {}

    /// Records one arrival and classifies it.
    public mutating func observe(origin: PeerIndex, incarnation: UInt32, sequence: UInt64) -> Observation {
        guard var state = states[origin], incarnation >= state.incarnation else {
            if let state = states[origin], incarnation < state.incarnation { return .staleIncarnation }
            states[origin] = State(incarnation: incarnation, highest: sequence, window: 1)
            return .first
        }
        if incarnation > state.incarnation {
            states[origin] = State(incarnation: incarnation, highest: sequence, window: 1)
            return .first
        }
        defer { states[origin] = state }
        if sequence > state.highest {
            let advance = sequence - state.highest
            state.window = advance >= 64 ? 1 : (state.window << advance) | 1
            state.highest = sequence
            if advance == 1 { return .inOrder }
            // Saturating: sequence numbers come off the wire and may jump anywhere.
            gapsByOrigin[origin] = (gapsByOrigin[origin] ?? 0).saturatingAdd(advance - 1)
            return .gap(missing: advance - 1)
        }
        let age = state.highest - sequence
        guard age < 64, state.window & (1 << age) == 0 else {
            duplicatesByOrigin[origin] = (duplicatesByOrigin[origin] ?? 0).saturatingAdd(1)
            return .duplicate
        }
        state.window |= 1 << age
        // Counted as missing when it was skipped; not any more. (A number below the first one
        // heard was never counted: hence the guard.)
        if let gaps = gapsByOrigin[origin], gaps > 0 { gapsByOrigin[origin] = gaps - 1 }
        return .late
    }

    /// Total messages still counted as missing, over all origins.
    public var totalGaps: UInt64 { gapsByOrigin.values.reduce(0) { $0.saturatingAdd($1) } }
}

extension UInt64 {
    /// Addition that stops at `UInt64.max` instead of trapping.
    func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
