import Foundation
import TestSupport
import Testing

/// Issue 11, for operators: `auditd --check-config` validates a config file and exits, and
/// the systemd unit in contrib/ passes `systemd-analyze verify`.
@Suite struct OperatorConfigTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func auditd(_ args: [String]) throws -> (Int32, String) { try runProgram(Daemon.product("auditd"), args) }

    @Test func checkConfigAcceptsTheExampleAndNamesWhatIsWrong() throws {
        let example = Self.repo + "/contrib/auditd.json"
        let (ok, okOut) = try auditd(["--check-config", "--config", example])
        #expect(ok == 0 && okOut.contains("config OK: data /var/lib/auditd/data"), "\(okOut)")
        let dir = temporaryDirectory("check-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (json, says) in [
            (#"{"data":"/tmp/x","segmnt_bytes":5}"#, #"unknown setting "segmnt_bytes""#),
            (#"{"http_port":70000}"#, "http_port 70000 must be between 0 and 65535"),
            (#"{"segment_bytes":true}"#, "segment_bytes must be a whole number"),
            (#"{"http_port":8650.5}"#, "http_port must be a whole number"),
            (#"{"allow_gids":["wheel"]}"#, "allow_gids must be an array of numeric ids"),
            (#"{"witness_quorum":2}"#, "witness_quorum 2 must be between 1 and the 0 witnesses"),
            (#"{"witnesses":["ftp://x k"]}"#, "must be \"URL VKEY\""),
            (#"{"socket_mode":"0999"}"#, "is not octal"),
            ("[1,2]", "is not a JSON object"),
        ] {
            let path = dir + "/c.json"
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            let (s, out) = try auditd(["--check-config", "--config", path])
            #expect(s != 0 && out.contains(says), "\(json): \(out)")
        }
        // Flags are checked over the file.
        let (fs, fout) = try auditd(["--check-config", "--config", example, "--http-port", "99999"])
        #expect(fs != 0 && fout.contains("http_port 99999"), "\(fout)")
    }

    @Test func everySettingHasOneRowGivingItsFlagKeyRangeAndHelp() throws {
        let dir = temporaryDirectory("settings")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (hs, help) = try auditd(["--help"])
        #expect(hs == 0)
        // Every key of the example config, and the three settings that once had no flag.
        let example =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Self.repo + "/contrib/auditd.json"))) as? [String: Any]
            ?? [:]
        for key in example.keys.sorted() + [
            "max_inflight_per_connection", "max_inflight_total", "max_idempotency_keys",
        ] {
            let flag = key == "witnesses" ? "--witness" : "--" + key.replacingOccurrences(of: "_", with: "-")
            #expect(
                help.contains(flag + " ") && help.contains("[\(key); default"),
                "--help does not document \(key) as \(flag)")
        }
        let (ok, out) = try auditd([
            "--check-config", "--data", dir + "/d", "--max-inflight-total", "10", "--max-idempotency-keys=5",
            "--max-inflight-per-connection", "7", "--allow-uids", "1,2",
        ])
        #expect(ok == 0, "\(out)")
        for line in [
            "max_inflight_total = 10", "max_idempotency_keys = 5", "max_inflight_per_connection = 7",
            "allow_uids = 1,2",
        ] {
            #expect(out.contains(line), "\(line): \(out)")
        }
        for (args, says) in [
            (["--max-inflight-total", "0"], "max_inflight_total 0 must be at least 1"),
            (["--segmnt-bytes", "5"], "unknown option '--segmnt-bytes'"),
            (["--segment-bytes", "lots"], "--segment-bytes 'lots' is not a whole number"),
            (["--http-port"], "--http-port needs a value"),
        ] {
            let (s, text) = try auditd(["--check-config", "--data", dir + "/d"] + args)
            #expect(s != 0 && text.contains(says), "\(args): \(text)")
        }
    }

    @Test func theSystemdUnitVerifies() throws {
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let analyze else {
            Issue.record(
                "systemd-analyze is missing: install the systemd package (apt-get install -y systemd; .ci/run and scripts/setup do)"
            )
            return
        }
        let dir = temporaryDirectory("unit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The unit as installed, with the built binary and the example config in place of
        // /usr/local/bin and /etc (verify checks that the executables exist).
        let unit = try String(contentsOfFile: Self.repo + "/contrib/auditlog.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/auditd", with: Daemon.product("auditd"))
            .replacingOccurrences(of: "/etc/auditd/auditd.json", with: Self.repo + "/contrib/auditd.json")
        try unit.write(toFile: dir + "/auditlog.service", atomically: true, encoding: .utf8)
        let (status, text) = try runProgram(analyze, ["verify", dir + "/auditlog.service"])
        #expect(status == 0 && !text.contains("auditlog.service"), "systemd-analyze verify: \(text)")
        for setting in ["ProtectSystem=strict", "NoNewPrivileges=yes", "ReadWritePaths=/var/lib/auditd /run/auditd"] {
            #expect(unit.contains(setting))
        }
    }
}
