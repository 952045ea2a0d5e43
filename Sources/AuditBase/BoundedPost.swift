import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP POST whose answer is bounded in size and whose whole exchange is bounded in time:
/// a peer that answers 3 GiB, or one byte a second, costs only its own request. (URLSession's
/// own timeout is an idle timeout: a trickle never trips it, and `data(for:)` buffers any size.)
public final class BoundedPost: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    /// Why a bounded request did not complete.
    public struct Failed: Error, CustomStringConvertible {
        public var description: String
    }

    private let limit: Int
    private let lock = NSLock()
    private var body = Data()
    private var response: HTTPURLResponse?
    private var failure: String?
    private var continuation: CheckedContinuation<(Int, Data), Error>?
    private var finished = false

    private init(limit: Int) { self.limit = limit }

    /// POSTs `body` (of `contentType`) to `url`; the status and at most `limit` bytes of
    /// answer, within `deadline`. Plain `http://` goes over a socket read into a bounded
    /// buffer; `https://` through URLSession, whose delegate stops the transfer past the limit.
    public static func post(
        _ url: URL, body: Data, contentType: String = "text/plain", limit: Int, deadline: Duration
    ) async throws -> (Int, Data) {
        if url.scheme == "http", let host = url.host {
            let end = ContinuousClock.now + deadline
            let flag = CancelFlag()
            let path = url.path.isEmpty ? "/" : url.path
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { c in
                    Thread.detachNewThread {
                        c.resume(
                            with: Result {
                                // One request a connection: a peer (a witness, a time-stamping authority) is asked
                                // every few seconds at most.
                                let a = try HTTP1Client(
                                    host: host, port: url.port ?? 80, maxBody: limit, maxHead: 4096, maxIdle: 0
                                ).perform(
                                    "POST", path, headers: [("Content-Type", contentType), ("Connection", "close")],
                                    body: Array(body), deadline: end, cancelled: { flag.isSet })
                                return (a.status, Data(a.body))
                            })
                    }
                }
            } onCancel: {
                flag.set()
            }
        }
        let b = BoundedPost(limit: limit)
        let config = URLSessionConfiguration.ephemeral
        let seconds = deadline.inSeconds
        config.timeoutIntervalForRequest = seconds
        config.timeoutIntervalForResource = seconds
        let session = URLSession(configuration: config, delegate: b, delegateQueue: nil)
        defer { session.invalidateAndCancel() }
        var req = URLRequest(url: url, timeoutInterval: seconds)
        req.httpMethod = "POST"
        req.httpBody = body
        req.setValue(contentType, forHTTPHeaderField: "Content-Type")
        let task = session.dataTask(with: req)
        let timer = Task {
            try? await Task.sleep(for: deadline)
            if !Task.isCancelled { b.fail("no complete answer within \(seconds) s", task) }
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { c in
                b.lock.withLock { b.continuation = c }
                task.resume()
            }
        } onCancel: {
            b.fail("cancelled", task)
        }
    }

    private func fail(_ why: String, _ task: URLSessionTask) {
        lock.withLock { if failure == nil { failure = why } }
        task.cancel()
        finish()
    }

    private func finish() {
        let c: CheckedContinuation<(Int, Data), Error>?
        let result: Result<(Int, Data), Error>
        lock.lock()
        if finished || continuation == nil {
            lock.unlock()
            return
        }
        finished = true
        c = continuation
        continuation = nil
        if let failure {
            result = .failure(Failed(description: failure))
        } else {
            result = .success((response?.statusCode ?? 0, body))
        }
        lock.unlock()
        c?.resume(with: result)
    }

    public func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        lock.withLock { self.response = response as? HTTPURLResponse }
        completionHandler(.allow)
    }

    public func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let over: Bool = lock.withLock {
            body.append(data.prefix(max(0, limit + 1 - body.count)))
            return body.count > limit
        }
        if over { fail("the answer is larger than \(limit) bytes", dataTask) }
    }

    public func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error { lock.withLock { if failure == nil { failure = "unreachable: \(error.localizedDescription)" } } }
        finish()
    }
}

/// Set once, read from any thread.
public final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public var isSet: Bool { lock.withLock { value } }
    public func set() { lock.withLock { value = true } }
}
