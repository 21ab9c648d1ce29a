@testable import Mesh
import Testing
@testable import MeshZMQ

/// ZMTP connection timeouts for a run follow its failure detector (never below the defaults).
@Suite struct OptionsTests {
    @Test func slowLinkTopologiesGetLongerConnectionTimeouts() {
        let weak = HeartbeatSpec(interval: .milliseconds(250), suspectAfter: .seconds(4), deadAfter: .seconds(12), adaptive: false)
        let o = ZMQTransportOptions(heartbeat: weak)
        #expect(o.zmtpHeartbeatTimeout == .seconds(4))
        #expect(o.zmtpHeartbeatTTL == .seconds(12))
        #expect(o.zmtpHeartbeatInterval == ZMQTransportOptions().zmtpHeartbeatInterval)
    }

    @Test func fastDetectorsKeepTheDefaults() {
        let fast = HeartbeatSpec(interval: .milliseconds(100), suspectAfter: .milliseconds(500), deadAfter: .milliseconds(1500), adaptive: false)
        let o = ZMQTransportOptions(heartbeat: fast)
        #expect(o.zmtpHeartbeatTimeout == .seconds(1))
        #expect(o.zmtpHeartbeatTTL == .seconds(2))
    }
}
