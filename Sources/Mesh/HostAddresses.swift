#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The IP addresses of this machine's interfaces, to decide which peers of a topology it hosts.
public enum HostAddresses {
    /// Numeric IPv4 and IPv6 addresses of every interface that is up (via `getifaddrs`).
    /// Returns an empty set if the system call fails: only loopback peers then count as local.
    public static func current() -> Set<String> {
        var result: Set<String> = ["127.0.0.1", "localhost", "::1"]
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0 else { return result }
        defer { freeifaddrs(first) }
        var cursor = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                // Drop an IPv6 zone suffix ("fe80::1%eth0"): endpoints never carry one.
                result.insert(String(text.split(separator: "%").first ?? Substring(text)))
            }
        }
        return result
    }
}
