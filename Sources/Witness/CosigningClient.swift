import AuditBase
import Foundation
import LogProofs

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A witness as a log sees it: where it takes `add-checkpoint`, and the key its cosignatures
/// verify with (format-spec.md §8.6).
public struct WitnessEndpoint: Sendable, Equatable {
    /// The submission prefix (`<url>/add-checkpoint` is posted to).
    public let url: String
    /// The witness's verifier key.
    public let verifier: CosignatureVerifier

    /// Parses `URL VKEY` (a space between them).
    public init(_ spec: String) throws {
        let parts = spec.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].hasPrefix("http://") || parts[0].hasPrefix("https://") else {
            throw AuditError(
                "witness \"\(spec)\" must be \"URL VKEY\": its add-checkpoint prefix (http:// or https://) and its verifier key (`auditctl witness key` prints it)"
            )
        }
        url = String(parts[0].hasSuffix("/") ? parts[0].dropLast() : parts[0])
        do { verifier = try CosignatureVerifier(String(parts[1])) } catch {
            throw AuditError("witness \(url): \(error.description)")
        }
    }
}

/// Gets a log's checkpoints cosigned by its witnesses (the client side of tlog-witness): it
/// learns the size each witness holds (from a 409), sends the consistency proof from there,
/// and keeps only cosignatures that verify with the witness's key.
public final class CosigningClient: @unchecked Sendable {
    /// The witnesses.
    public let witnesses: [WitnessEndpoint]
    /// How many cosignatures a checkpoint needs to count as witnessed.
    public let quorum: Int
    let proof: @Sendable (UInt64, UInt64) throws -> [Hash]
    let timeout: TimeInterval
    private let lock = NSLock()
    /// The size each witness holds for this log, as last learned.
    private var held: [Int: UInt64] = [:]
    /// The last error per witness (nil once it cosigns again).
    private var lastError: [Int: String] = [:]
    /// How many of the log's key successions each witness has taken (format-spec.md §8.8).
    private var delivered: [Int: Int] = [:]

    /// `proof(old, new)` gives the log's RFC 9162 consistency proof.
    public init(
        witnesses: [WitnessEndpoint], quorum: Int, timeout: TimeInterval = 5,
        proof: @escaping @Sendable (UInt64, UInt64) throws -> [Hash]
    ) throws {
        guard quorum >= 1, quorum <= witnesses.count else {
            throw AuditError(
                "witness quorum \(quorum) must be between 1 and the \(witnesses.count) witnesses configured")
        }
        do { try CosignatureVerifier.distinct(witnesses.map(\.verifier)) } catch {
            throw AuditError(error.description)
        }
        if let url = Dictionary(grouping: witnesses, by: \.url).first(where: { $0.value.count > 1 })?.key {
            throw AuditError("witness \(url) is listed twice; list each witness once")
        }
        self.witnesses = witnesses
        self.quorum = quorum
        self.timeout = timeout
        self.proof = proof
    }

    /// Witnesses whose last attempt failed, with why.
    public var failing: [(WitnessEndpoint, String)] {
        lock.withLock { lastError.sorted { $0.key < $1.key }.map { (witnesses[$0.key], $0.value) } }
    }

    /// The most a witness's answer may hold: a cosignature line is about 130 bytes.
    public static let maxAnswer = 16 << 10
    /// How long the others get once the quorum is reached.
    public static let afterQuorum = Duration.seconds(1)
    private static let timerMark = "\u{0}after-quorum"

    /// Asks every witness to cosign `cp`, at once; returns the note with every cosignature
    /// line obtained appended (the log's own signature first), and how many there are. Once
    /// the quorum has answered, the others get `afterQuorum` more; one that has not answered
    /// by then (or within `timeout` in all) counts as failing, and is asked again next time.
    /// `successions` are the log's key successions: each witness is sent those it has not
    /// taken yet (`add-key-succession`) before the checkpoint.
    public func cosign(_ cp: SignedCheckpoint, successions: [String] = []) async -> (note: String, cosignatures: Int) {
        let lines = await withTaskGroup(of: String?.self) { group in
            for i in witnesses.indices {
                group.addTask {
                    await self.deliver(i, successions)
                    return await self.submit(i, cp)
                }
            }
            var out: [String] = []
            var pending = witnesses.count
            var timer = false
            while let r = await group.next() {
                if r == Self.timerMark {
                    // Stragglers are cancelled a moment after the quorum: a slow witness must
                    // not hold up the checkpoint the others vouched for.
                    group.cancelAll()
                    continue
                }
                pending -= 1
                if let r { out.append(r) }
                if pending == 0 { break }
                if out.count >= quorum && !timer {
                    timer = true
                    group.addTask {
                        try? await Task.sleep(for: Self.afterQuorum)
                        return Self.timerMark
                    }
                }
            }
            group.cancelAll()
            return out
        }
        return (cp.note + lines.sorted().joined(), lines.count)
    }

    /// Sends witness `i` the successions it has not taken. A witness that does not follow
    /// them (another implementation: 404) is told again next time; during a grace range the
    /// old key still signs, and after it such a witness refuses until given the new key.
    func deliver(_ i: Int, _ successions: [String]) async {
        let from = lock.withLock { delivered[i] } ?? 0
        guard from < successions.count, let url = URL(string: witnesses[i].url + "/add-key-succession") else { return }
        for (n, note) in successions.enumerated().dropFirst(from) {
            guard
                let (status, _) = try? await BoundedPost.post(
                    url, body: Data(note.utf8), limit: Self.maxAnswer,
                    deadline: .milliseconds(Int64(timeout * 1000))),
                status == 200
            else { return }
            lock.withLock { delivered[i] = n + 1 }
        }
    }

    /// One witness: up to three tries (a 409 teaches it the size the witness holds).
    func submit(_ i: Int, _ cp: SignedCheckpoint) async -> String? {
        let w = witnesses[i]
        var old = lock.withLock { held[i] } ?? 0
        var why = ""
        // One deadline for the whole exchange, tries included.
        let end = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        for _ in 0..<3 {
            if old > cp.size {
                why =
                    "the witness holds a tree of \(old) entries, larger than this checkpoint's \(cp.checkpoint.size): it cosigns only newer ones"
                break
            }
            let lines: [Hash]
            do { lines = old == 0 || old == cp.checkpoint.size ? [] : try proof(old, cp.checkpoint.size) } catch {
                why = "cannot prove consistency from \(old): \(error)"
                break
            }
            let body =
                "old \(old)\n" + lines.map { Data($0.bytes).base64EncodedString() + "\n" }.joined() + "\n" + cp.note
            guard let url = URL(string: w.url + "/add-checkpoint") else {
                why = "\(w.url) is not a URL"
                break
            }
            do {
                let (status, data) = try await BoundedPost.post(
                    url, body: Data(body.utf8), limit: Self.maxAnswer, deadline: max(.milliseconds(1), end - .now))
                let text = String(decoding: data, as: UTF8.self)
                if status == 409, let size = UInt64(text.trimmingCharacters(in: .newlines)) {
                    old = size
                    lock.withLock { held[i] = size }
                    continue
                }
                guard status == 200 else {
                    why = "HTTP \(status): \(text.prefix(200))"
                    break
                }
                // Keep only the line that verifies with the configured key.
                for line in text.split(separator: "\n") {
                    if let body = try? Cosignature.split(note: cp.note).body,
                        (try? w.verifier.verify(line: line, body: body)) ?? nil != nil
                    {
                        lock.withLock {
                            held[i] = cp.checkpoint.size
                            lastError[i] = nil
                        }
                        return String(line) + "\n"
                    }
                }
                why = "its answer carries no cosignature that verifies with \(w.verifier.text)"
                break
            } catch {
                why =
                    Task.isCancelled
                    ? "no answer before the quorum was reached (and \(Self.afterQuorum) more)" : "\(error)"
                break
            }
        }
        lock.withLock { lastError[i] = why }
        return nil
    }
}

extension SignedCheckpoint {
    /// The checkpoint's size.
    var size: UInt64 { checkpoint.size }
}
