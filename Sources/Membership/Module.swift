/// Membership: heartbeats and failure detection, a pure state machine (time is an input).
enum MembershipNamespace {}
