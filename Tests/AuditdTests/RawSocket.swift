import AuditWire
import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A deliberately low-level socket client: sends any bytes, reads frames, with timeouts.
final class RawSocket {
    let fd: Int32
    var buffer: [UInt8] = []
    var parser = FrameParser(maxBody: 1 << 20)

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let r = withUnixAddress(path) { connect(fd, $0, $1) }
        guard r == 0 else {
            close(fd)
            throw DaemonFailed(message: "connect \(path): \(String(cString: strerror(errno)))")
        }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            // MSG_NOSIGNAL: a daemon that closed the connection must not kill the test with SIGPIPE.
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return }
            done += n
        }
    }

    func send(_ f: Frame) { send(f.encoded) }

    func append(_ json: String, id: UInt64) { send(Frame(type: .append, id: id, body: Array(json.utf8))) }

    /// The next frame, or nil if the connection closed (or timed out).
    func next() -> Frame? {
        while true {
            for item in parser.parse(&buffer) {
                if case .frame(let f) = item { pending.append(f) }
            }
            if !pending.isEmpty { return pending.removeFirst() }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
    private var pending: [Frame] = []

    /// True if the peer has closed the connection.
    func isClosed() -> Bool {
        var c = [UInt8](repeating: 0, count: 1)
        return read(fd, &c, 1) == 0
    }
}
