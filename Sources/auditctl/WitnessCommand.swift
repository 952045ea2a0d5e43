import ArgumentParser
import Foundation
import Hummingbird
import LogProofs
import Logging
import NIOCore
import Witness

/// `auditctl witness`: run a transparency-log witness (C2SP tlog-witness) for one or more logs.
struct WitnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "Run a witness that cosigns a log's checkpoints only while its history stays consistent.",
        subcommands: [WitnessKey.self, WitnessServe.self])
}

/// The witness's key file: created on first use (mode 0600), its verifier key printed.
struct WitnessKeyOptions: ParsableArguments {
    @Option(help: "The witness's signing key file (created, mode 0600, if it does not exist).") var key: String
    @Option(help: "The witness's name when the key is created (a schema-less URL, e.g. witness.example.com/w1).")
    var name: String?

    func cosigner() throws -> Cosigner {
        if !FileManager.default.fileExists(atPath: key) {
            guard let name else {
                throw ValidationError("\(key) does not exist: give --name to create the witness key")
            }
            return Cosigner(key: try KeyFile.loadOrCreate(path: key, name: name).0)
        }
        let c = Cosigner(key: try KeyFile.load(path: key))
        if let name, name != c.name { throw ValidationError("the key in \(key) is named \(c.name), not \(name)") }
        return c
    }
}

struct WitnessKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Print the witness's verifier key (creating its key if needed).")
    @OptionGroup var key: WitnessKeyOptions

    func run() throws { print(try key.cosigner().verifier.text) }
}

struct WitnessServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve POST /add-checkpoint (C2SP tlog-witness) for the configured logs.",
        discussion: """
            Each --log is a log's verifier key (`auditctl key DIR`); its name is the origin of
            its checkpoints. The latest checkpoint cosigned per log is kept in --state, and is
            written (fsync) before a cosignature is returned.
            """)
    @OptionGroup var key: WitnessKeyOptions
    @Option(help: "Directory for the witness's state (the latest cosigned checkpoint per log).") var state: String
    @Option(help: "A log's verifier key (repeatable).") var log: [String]
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port; the chosen one is printed).") var port = 8660

    func run() async throws {
        guard !log.isEmpty else {
            throw ValidationError("give at least one --log (a log's verifier key, as `auditctl key DIR` prints it)")
        }
        let logs = try log.map { text -> LogKeys in
            do { return LogKeys(try NoteVerifier(text)) } catch let e as Note.Failure {
                throw ValidationError("--log \(text): \(e.description)")
            }
        }
        let witness = try Witness(cosigner: try key.cosigner(), logs: logs, stateDirectory: state)
        let router = Router()
        router.post("add-checkpoint") { req, _ -> Response in
            let body = try await req.body.collect(upTo: 1 << 20)
            let r = witness.addCheckpoint(Array(buffer: body))
            return Response(
                status: .init(code: r.status), headers: [.contentType: r.contentType],
                body: .init(byteBuffer: ByteBuffer(string: r.body)))
        }
        router.post("add-key-succession") { req, _ -> Response in
            let body = try await req.body.collect(upTo: 4096)
            let r = witness.addKeySuccession(Array(buffer: body))
            return Response(
                status: .init(code: r.status), headers: [.contentType: r.contentType],
                body: .init(byteBuffer: ByteBuffer(string: r.body)))
        }
        // add-checkpoint is POST only (tlog-witness): any other method is 405, not 404.
        for method in [HTTPRequest.Method.get, .head, .put, .delete, .patch] {
            router.on("add-checkpoint", method: method) { _, _ -> Response in
                Response(
                    status: .methodNotAllowed, headers: [.allow: "POST", .contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "add-checkpoint takes POST only\n")))
            }
        }
        let name = witness.cosigner.verifier.text
        var logger = Logger(label: "witness")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "auditctl-witness"),
            onServerRunning: { channel in
                // Unbuffered: scripts and tests read the chosen port from it.
                try? FileHandle.standardOutput.write(
                    contentsOf: Data("witness \(name) on http://\(host):\(channel.localAddress?.port ?? port)\n".utf8))
            },
            logger: logger)
        try await app.runService()
    }
}
