import Foundation

/// Learning rate with linear warmup then cosine decay to `minRatio · peak`.
///
/// Step numbers are 0-based. During warmup the rate rises linearly from peak/warmup to peak; after
/// it, it follows half a cosine down to `minRatio · peak` at `totalSteps - 1`. Pure value type.
public struct LRSchedule: Sendable, Equatable {
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minRatio: Double

    public init(peak: Double, warmupSteps: Int, totalSteps: Int, minRatio: Double = 0.1) {
        self.peak = peak
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
        self.minRatio = minRatio
    }

    /// A constant rate (no warmup, no decay).
    public static func constant(_ lr: Double) -> LRSchedule {
        LRSchedule(peak: lr, warmupSteps: 0, totalSteps: 1, minRatio: 1)
    }

    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let decaySteps = totalSteps - warmupSteps
        if decaySteps <= 1 { return peak }
        let progress = min(1, Double(step - warmupSteps) / Double(decaySteps - 1))
        let cosine = 0.5 * (1 + cos(Double.pi * progress))
        return peak * (minRatio + (1 - minRatio) * cosine)
    }
}
