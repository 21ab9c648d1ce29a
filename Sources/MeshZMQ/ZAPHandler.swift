import CZMQ

/// The ZAP authenticator (RFC 27) for CURVE servers: admits only listed client public keys.
///
/// It owns a REP socket bound to `inproc://zeromq.zap.01` in its context; bind it **before** any
/// CURVE server socket of that context exists. libzmq then sends it one request per handshake and
/// waits for the answer, so the owning thread must call `serve()` whenever `socket` is readable
/// (from its poll loop). Without a handler, a CURVE server admits any key; with
/// `ZMQ_ZAP_ENFORCE_DOMAIN` = 1 on the servers, a missing handler refuses everyone instead.
/// Threading: not Sendable; one thread, like its socket.
public final class ZAPHandler {
    public static let endpoint = "inproc://zeromq.zap.01"
    /// The `ZMQ_ZAP_DOMAIN` servers set; requests for other domains are refused.
    public static let domain = "murmur"

    public let socket: ZMQSocket
    /// Allowed client keys (32 raw bytes) → user id reported to the application (the peer id).
    private var allowed: [[UInt8]: String]
    public private(set) var accepted = 0
    public private(set) var refused = 0

    /// - Parameter allowed: Z85 public key → name (e.g. peer id). Malformed keys are ignored.
    public init(context: ZMQContext, allowed: [String: String]) throws(ZMQError) {
        socket = try ZMQSocket(context, type: ZMQ_REP)
        var table: [[UInt8]: String] = [:]
        for (key, name) in allowed { if let raw = Z85.decode(key) { table[raw] = name } }
        self.allowed = table
        try socket.bind(Self.endpoint)
    }

    /// Answers every pending request (never blocks). Returns how many were answered.
    @discardableResult
    public func serve() throws(ZMQError) -> Int {
        var answered = 0
        // Bounded: libzmq sends one request per handshake, so a burst is at most the number of peers.
        while answered < 256, let request = try socket.receive(dontWait: true, maxFrames: 8) {
            try socket.send(reply(to: request), dontWait: false)
            answered += 1
        }
        return answered
    }

    /// The 6-frame reply to one request: version, request id, status code, status text, user id,
    /// metadata. Pure apart from the counters.
    func reply(to request: [[UInt8]]) -> [[UInt8]] {
        // Request frames: version, request id, domain, address, identity, mechanism, credentials…
        let requestID = request.count > 1 ? request[1] : []
        func answer(_ code: String, _ text: String, _ user: String = "") -> [[UInt8]] {
            if code == "200" { accepted += 1 } else { refused += 1 }
            return [Array("1.0".utf8), requestID, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard request.count >= 7, request[0] == Array("1.0".utf8) else { return answer("400", "malformed ZAP request") }
        guard request[2] == Array(Self.domain.utf8) else { return answer("400", "unknown domain") }
        guard request[5] == Array("CURVE".utf8) else { return answer("400", "CURVE required") }
        guard let name = allowed[request[6]] else { return answer("400", "public key not in the topology") }
        return answer("200", "OK", name)
    }
}

extension ZMQSocket {
    /// Makes this (listening) socket a CURVE server that asks the ZAP handler about every client.
    /// Call before `bind`.
    public func makeCurveServer(secretKey: String) throws(ZMQError) {
        try set(ZMQ_CURVE_SERVER, 1)
        try set(ZMQ_CURVE_SECRETKEY, string: secretKey)
        try set(ZMQ_ZAP_DOMAIN, string: ZAPHandler.domain)
        try set(ZMQ_ZAP_ENFORCE_DOMAIN, 1)
    }

    /// Gives this (connecting) socket its own keypair; set once, before the first `connect`.
    public func setCurveClientKeys(_ pair: CurveKeyPair) throws(ZMQError) {
        try set(ZMQ_CURVE_PUBLICKEY, string: pair.publicKey)
        try set(ZMQ_CURVE_SECRETKEY, string: pair.secretKey)
    }

    /// The server key the next `connect` will expect; set right before each `connect`.
    public func setCurveServerKey(_ publicKey: String) throws(ZMQError) {
        try set(ZMQ_CURVE_SERVERKEY, string: publicKey)
    }
}
