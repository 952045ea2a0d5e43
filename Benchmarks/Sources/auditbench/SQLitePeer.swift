import AuditBase
import AuditEntries
import CSQLite
import ChainIndex
import Foundation

/// The obvious alternative, implemented honestly (issue: "why not a hash-chained table?"):
/// one SQLite table in WAL mode with `synchronous=FULL`, an index on (org, received_at), the
/// same validation and canonical bytes as the log (`Entry.prepare`), and the same two hashes
/// per entry (content, and a 113-byte link over seq, org position, content hash, previous hash
/// and the org's previous hash), computed in process inside each write transaction. A
/// transaction is acknowledged when `COMMIT` returns, i.e. after SQLite's fsync of the WAL.
/// Each row keeps the sequence number of its org's previous entry (`prev_org`), as the log's
/// records keep the distance back to it, so that a reader can check a row as the log checks
/// each entry it reads (`newest` and `range` with `checked`).
final class SQLitePeer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let path: String
    private let lock = NSLock()
    private var head: (seq: UInt64, hash: Hash) = (0, .zero)
    private var orgs: [String: (count: UInt64, hash: Hash, seq: UInt64)] = [:]
    private var writers: [OpaquePointer] = []

    /// Opens (creating) the database at `path` with `connections` writer connections.
    init(path: String, connections: Int) throws {
        self.path = path
        for _ in 0..<max(1, connections) { writers.append(try Self.open(path)) }
        try exec(
            writers[0],
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS entries(
              seq INTEGER PRIMARY KEY, org TEXT NOT NULL, org_seq INTEGER NOT NULL, received_at INTEGER NOT NULL,
              category TEXT NOT NULL, outcome TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,
              content BLOB NOT NULL, hash BLOB NOT NULL, prev_org INTEGER);
            CREATE INDEX IF NOT EXISTS by_org_time ON entries(org, received_at);
            """)
    }

    deinit { for w in writers { sqlite3_close(w) } }

    static func open(_ path: String) throws -> OpaquePointer {
        var db: OpaquePointer?
        guard
            sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
                == SQLITE_OK, let db
        else {
            throw Failure(description: "cannot open \(path)")
        }
        sqlite3_busy_timeout(db, 30_000)
        let p = SQLitePeer.self
        try p.exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        return db
    }

    static func exec(_ db: OpaquePointer, _ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &err) == SQLITE_OK else {
            let m = err.map { String(cString: $0) } ?? "?"
            sqlite3_free(err)
            throw Failure(description: "\(sql.prefix(60)): \(m)")
        }
    }
    func exec(_ db: OpaquePointer, _ sql: String) throws { try Self.exec(db, sql) }

    /// Appends `entries` in one transaction on writer connection `w`; returns when durable.
    func append(_ entries: [PreparedEntry], writer w: Int) throws {
        let db = writers[w % writers.count]
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, "INSERT INTO entries VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &stmt, nil) == SQLITE_OK,
            let stmt
        else {
            throw Failure(description: "prepare: \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(stmt) }
        // One writer at a time, as SQLite itself would enforce: the chain head is only valid
        // inside the write transaction.
        try lock.withLock {
            try exec(db, "BEGIN IMMEDIATE")
            var h = head
            var o = orgs
            do {
                for e in entries {
                    let st = o[e.org]
                    let link = Link(
                        seq: h.seq, orgSeq: st?.count ?? 0, contentHash: SHA256.hash(e.content), prevHash: h.hash,
                        prevOrgHash: st?.hash ?? .zero)
                    let hash = link.leafHash
                    sqlite3_bind_int64(stmt, 1, Int64(h.seq))
                    sqlite3_bind_text(stmt, 2, e.org, -1, SQLITE_TRANSIENT)
                    sqlite3_bind_int64(stmt, 3, Int64(st?.count ?? 0))
                    sqlite3_bind_int64(stmt, 4, e.fields.time)
                    sqlite3_bind_text(stmt, 5, e.fields.category.rawValue, -1, SQLITE_TRANSIENT)
                    sqlite3_bind_text(stmt, 6, e.fields.outcome.rawValue, -1, SQLITE_TRANSIENT)
                    sqlite3_bind_text(stmt, 7, e.fields.action, -1, SQLITE_TRANSIENT)
                    sqlite3_bind_text(stmt, 8, e.fields.actor, -1, SQLITE_TRANSIENT)
                    e.content.withUnsafeBytes {
                        _ = sqlite3_bind_blob(stmt, 9, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT)
                    }
                    hash.bytes.withUnsafeBytes { _ = sqlite3_bind_blob(stmt, 10, $0.baseAddress, 32, SQLITE_TRANSIENT) }
                    if let st { sqlite3_bind_int64(stmt, 11, Int64(st.seq)) } else { sqlite3_bind_null(stmt, 11) }
                    guard sqlite3_step(stmt) == SQLITE_DONE else {
                        throw Failure(description: "insert: \(String(cString: sqlite3_errmsg(db)))")
                    }
                    sqlite3_reset(stmt)
                    o[e.org] = ((st?.count ?? 0) + 1, hash, h.seq)
                    h = (h.seq + 1, hash)
                }
                try exec(db, "COMMIT")
            } catch {
                try? exec(db, "ROLLBACK")
                throw error
            }
            head = h
            orgs = o
        }
    }

    /// Orgs in the table, busiest first.
    func orgNames(limit: Int) throws -> [String] {
        try rows("SELECT org FROM entries GROUP BY org ORDER BY count(*) DESC LIMIT \(limit)") {
            String(cString: sqlite3_column_text($0, 0))
        }
    }

    /// The org's newest `limit` entries with `outcome`, content read; with `checked`, each row
    /// checked as the log checks an entry it reads (`read`).
    func newest(org: String, outcome: String, limit: Int = 100, checked: Bool = false) throws -> Int {
        try read(
            "WHERE org=? AND outcome=? ORDER BY received_at DESC, seq DESC LIMIT \(limit)", [org, outcome],
            checked: checked)
    }

    /// The org's first `limit` entries received in [from, to); `checked` as in `newest`.
    func range(org: String, from: Int64, to: Int64, limit: Int = 100, checked: Bool = false) throws -> Int {
        try read(
            "WHERE org=? AND received_at>=\(from) AND received_at<\(to) ORDER BY received_at, seq LIMIT \(limit)",
            [org],
            checked: checked)
    }

    /// The rows `clause` selects, content read; with `checked`, each row's hash recomputed as
    /// the log recomputes an entry's leaf when it reads it: SHA-256 of its content, then the
    /// link over its position and the hashes of the entry before it and of its org's previous
    /// entry (each row's own `hash` column and those two, read in the same statement), which
    /// must give the row's `hash`. A row that does not is an error.
    private func read(_ clause: String, _ args: [String], checked: Bool) throws -> Int {
        guard checked else {
            return try rows("SELECT seq, content FROM entries e " + clause, args) { sqlite3_column_bytes($0, 1) }.count
        }
        let sql =
            "SELECT seq, org_seq, content, hash, (SELECT hash FROM entries p WHERE p.seq = e.seq - 1), "
            + "(SELECT hash FROM entries q WHERE q.seq = e.prev_org) FROM entries e " + clause
        let ok = try rows(sql, args) { st -> Bool in
            func hash(_ col: Int32) -> Hash {
                guard sqlite3_column_bytes(st, col) == 32, let b = sqlite3_column_blob(st, col) else { return .zero }
                return Hash(bytes: UnsafeRawBufferPointer(start: b, count: 32)) ?? .zero
            }
            let n = Int(sqlite3_column_bytes(st, 2))
            let content = SHA256.hash(sqlite3_column_blob(st, 2), n)
            let link = Link(
                seq: UInt64(sqlite3_column_int64(st, 0)), orgSeq: UInt64(sqlite3_column_int64(st, 1)),
                contentHash: content, prevHash: hash(4), prevOrgHash: hash(5))
            return link.leafHash == hash(3)
        }
        guard !ok.contains(false) else {
            throw Failure(description: "a row's hash does not match its content and links")
        }
        return ok.count
    }

    /// The span of `received_at`.
    func timeSpan() throws -> (Int64, Int64) {
        try rows("SELECT min(received_at), max(received_at) FROM entries") {
            (sqlite3_column_int64($0, 0), sqlite3_column_int64($0, 1))
        }.first ?? (0, 0)
    }

    func rows<T>(_ sql: String, _ args: [String] = [], _ body: (OpaquePointer) -> T) throws -> [T] {
        let db = writers[0]
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
            throw Failure(description: "prepare: \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(stmt) }
        for (i, a) in args.enumerated() { sqlite3_bind_text(stmt, Int32(i + 1), a, -1, SQLITE_TRANSIENT) }
        var out: [T] = []
        while sqlite3_step(stmt) == SQLITE_ROW { out.append(body(stmt)) }
        return out
    }

    /// Checkpoints the WAL into the database file, so its size is what the data costs.
    func checkpoint() throws { try exec(writers[0], "PRAGMA wal_checkpoint(TRUNCATE)") }

    /// Bytes on disk: the database, its WAL and shared-memory index.
    var bytesOnDisk: Int {
        [path, path + "-wal", path + "-shm"].reduce(0) {
            $0 + (((try? FileManager.default.attributesOfItem(atPath: $1))?[.size] as? Int) ?? 0)
        }
    }
}

/// SQLite's "free the buffer after binding" sentinel, which Swift does not import.
let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
