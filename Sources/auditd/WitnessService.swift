import AuditBase
import ChainIndex
import Foundation
import LogProofs
import Logging
import Metrics
import SegmentStore
import ServiceLifecycle
import Witness

/// The log's witnesses (format-spec.md §8.6): new checkpoints are sent to them in the
/// background, and ingest never waits for them. The newest checkpoint with a quorum of
/// cosignatures is kept in `checkpoints/cosigned` (the log's note with the cosignature lines
/// appended) and served on the read port; exports carry their checkpoint's cosignatures.
final class Witnessing: @unchecked Sendable {
    let client: CosigningClient
    /// The log: its keys grow with each handover (§8.8).
    let ledger: Ledger
    let path: String
    private let lock = NSLock()
    private let keepLock = NSLock()
    private var _cosigned: SignedCheckpoint?
    let cosignedSize = Gauge(label: "auditd_witnessed_checkpoint_size")
    let failures = Counter(label: "auditd_witness_failures_total")
    let failingNow = Gauge(label: "auditd_witnesses_failing")

    init(ledger: Ledger, witnesses: [String], quorum: Int?) throws {
        let endpoints = try witnesses.map { try WitnessEndpoint($0) }
        client = try CosigningClient(witnesses: endpoints, quorum: quorum ?? endpoints.count) { old, new in
            try ledger.consistencyProof(old: old, new: new)
        }
        self.ledger = ledger
        path = DataDirectory(ledger.directory).cosigned
        // Kept from the last run, if it is still the log's and holds its quorum.
        if let bytes = try FileOps.readFile(path, limit: 1 << 20),
            let cp = try? SignedCheckpoint(note: String(decoding: bytes, as: UTF8.self), verifier: ledger.verifier),
            Self.count(cp.note, endpoints) >= client.quorum
        {
            _cosigned = cp
            cosignedSize.record(Int64(cp.checkpoint.size))
        }
    }

    /// How many of `witnesses` validly cosigned `note`.
    static func count(_ note: String, _ witnesses: [WitnessEndpoint]) -> Int {
        witnesses.filter { ((try? $0.verifier.cosignature(in: note)) ?? nil) != nil }.count
    }

    /// The newest checkpoint with a quorum of cosignatures.
    var cosigned: SignedCheckpoint? { lock.withLock { _cosigned } }

    /// Witnesses whose last attempt failed, in words (nil when none).
    var failing: String? {
        let f = client.failing
        return f.isEmpty ? nil : f.map { "\($0.0.url): \($0.1)" }.joined(separator: "; ")
    }

    /// Asks every witness to cosign `cp`; returns it with the cosignatures obtained, and keeps
    /// it as the newest witnessed checkpoint when they reach the quorum.
    func cosign(_ cp: SignedCheckpoint, logger: Logger) async -> (SignedCheckpoint, Int) {
        let (note, n) = await client.cosign(cp, successions: ledger.verifier.notes)
        let f = client.failing
        failingNow.record(f.count)
        if !f.isEmpty {
            failures.increment(by: f.count)
            logger.warning(
                "witnesses did not cosign", metadata: ["size": "\(cp.checkpoint.size)", "failing": "\(failing ?? "")"])
        }
        let signed = (try? SignedCheckpoint(note: note, verifier: ledger.verifier)) ?? cp
        if n >= client.quorum { keep(signed, logger: logger) }
        return (signed, n)
    }

    /// Keeps `cp` as the newest witnessed checkpoint unless a larger one is kept already. The
    /// decision, the file and the published value change together under one lock, so that
    /// `checkpoints/cosigned` never goes backwards when exports cosign beside the service.
    func keep(_ cp: SignedCheckpoint, logger: Logger) {
        keepLock.withLock {
            guard (cosigned?.checkpoint.size ?? 0) <= cp.checkpoint.size else { return }
            do {
                try FileOps.replaceFile(path, contents: Array(cp.note.utf8))
                lock.withLock { _cosigned = cp }
                cosignedSize.record(Int64(cp.checkpoint.size))
            } catch {
                logger.error("cannot keep the cosigned checkpoint", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Sends each new checkpoint to the witnesses, and retries those that failed, every `interval`.
struct WitnessService: Service {
    let witnessing: Witnessing
    let publication: Publication
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var done: UInt64 = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let cp = publication.latest, cp.checkpoint.size > done || witnessing.failing != nil {
                let (_, n) = await witnessing.cosign(cp, logger: logger)
                if n >= witnessing.client.quorum { done = cp.checkpoint.size }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
