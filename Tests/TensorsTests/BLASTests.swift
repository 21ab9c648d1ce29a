import Testing
@testable import Tensors

@Suite struct BLASTests {
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 7, 3), (5, 1, 9), (3, 5, 7), (17, 13, 31), (64, 64, 64), (33, 65, 129), (128, 3, 1),
    ]

    @Test(arguments: [Transpose.none, .transposed], [Transpose.none, .transposed])
    func sgemmMatchesNaive(ta: Transpose, tb: Transpose) {
        var rng = SeededRNG(seed: 42)
        for (m, n, k) in Self.shapes {
            let a = (0..<(m * k)).map { _ in rng.nextNormal() }
            let b = (0..<(k * n)).map { _ in rng.nextNormal() }
            let c0 = (0..<(m * n)).map { _ in rng.nextNormal() }
            var fast = c0, slow = c0
            let lda = ta == .none ? k : m
            let ldb = tb == .none ? n : k
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    fast.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: lda,
                                   b: bp.baseAddress!, ldb: ldb, beta: 0.25, c: cp.baseAddress!, ldc: n)
                    }
                    slow.withUnsafeMutableBufferPointer { cp in
                        Naive.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: lda,
                                    b: bp.baseAddress!, ldb: ldb, beta: 0.25, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            let maxErr = zip(fast, slow).map { abs($0 - $1) }.max() ?? 0
            #expect(maxErr <= 1e-4 * Float(k).squareRoot(), "shape \(m)x\(n)x\(k) err \(maxErr)")
        }
    }

    @Test func seededRNGIsReproducibleAndRoughlyNormal() {
        var a = SeededRNG(seed: 7), b = SeededRNG(seed: 7), c = SeededRNG(seed: 8)
        #expect(a.next() == b.next())
        #expect(a.next() != c.next())
        var r = SeededRNG(seed: 1)
        let xs = (0..<20000).map { _ in Double(r.nextNormal()) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let varc = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        #expect(abs(mean) < 0.03)
        #expect(abs(varc - 1) < 0.05)
    }
}

@Suite struct HashingTests {
    @Test func sha256KnownVectors() {
        #expect(SHA256Hex.hash([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Hex.hash(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256Hex.hash(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Feeding in uneven pieces gives the same digest as one piece.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var s = SHA256()
        s.update(Array(data[0..<7])); s.update(Array(data[7..<200])); s.update(Array(data[200...]))
        #expect(SHA256Hex.hex(s.finalize()) == SHA256Hex.hash(data))
    }

    @Test func parameterDigestSeesOneBitFlips() {
        var xs = (0..<1001).map { Float($0) * 0.37 }
        let d0 = xs.withUnsafeBufferPointer { ParameterDigest.digest($0) }
        xs[500] = Float(bitPattern: xs[500].bitPattern ^ 1)
        let d1 = xs.withUnsafeBufferPointer { ParameterDigest.digest($0) }
        xs[500] = Float(bitPattern: xs[500].bitPattern ^ 1)
        let d2 = xs.withUnsafeBufferPointer { ParameterDigest.digest($0) }
        #expect(d0 != d1)
        #expect(d0 == d2)
        #expect(ParameterDigest.hex(d0).count == 16)
    }
}
