import AuditWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for auditd's ingest socket: a Unix socket whose every request frame is answered
/// by `answer` (any frames, in any order, or none), so a client can be tested against exactly
/// the replies a log could send, a hostile one included. One thread per connection.
public final class FakeIngestSocket: @unchecked Sendable {
    /// The socket's path.
    public let path: String
    private let listener: Int32
    private let answer: @Sendable (Frame) -> [Frame]
    private let lock = NSLock()
    private var connections: [Int32] = []
    private var stopped = false

    /// Listens at a fresh path under the temporary directory.
    public init(answer: @escaping @Sendable (Frame) -> [Frame]) throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("fake-\(UUID().uuidString.prefix(8)).sock")
            .path
        self.answer = answer
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let r = withUnixAddress(path) { bind(listener, $0, $1) }
        guard r == 0, listen(listener, 16) == 0 else {
            let why = String(cString: strerror(errno))
            close(listener)
            throw FakeSocketError(description: "cannot listen at \(path): \(why)")
        }
        let t = Thread { [self] in acceptLoop() }
        t.name = "fake-ingest-accept"
        t.start()
    }

    /// Stops listening and closes every connection.
    public func stop() {
        let open: [Int32] = lock.withLock {
            stopped = true
            return connections
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        unlink(path)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            let keep: Bool = lock.withLock {
                if !stopped { connections.append(fd) }
                return !stopped
            }
            guard keep else {
                close(fd)
                return
            }
            let t = Thread { [self] in serve(fd) }
            t.name = "fake-ingest-conn"
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var parser = FrameParser()
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            buffer.append(contentsOf: chunk[..<n])
            for item in parser.parse(&buffer) {
                guard case .frame(let f) = item else { return }
                for reply in answer(f) {
                    let bytes = reply.encoded
                    var done = 0
                    while done < bytes.count {
                        let w = bytes.withUnsafeBytes {
                            send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
                        }
                        guard w > 0 else { return }
                        done += w
                    }
                }
            }
        }
    }
}

/// The fake socket could not be set up.
public struct FakeSocketError: Error, CustomStringConvertible {
    /// In words.
    public var description: String
}

/// Calls `body` with the `sockaddr_un` of Unix socket `path` (at most 107 bytes) and its length.
public func withUnixAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: addr.sun_path) - 1))
    withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}
