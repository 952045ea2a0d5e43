import Foundation

/// Default locations shared by auditd and auditctl.
enum Paths {
    /// The signing key of data directory `dir` when none is given: `<parent>/auditd-keys/<name>.key`,
    /// outside the data directory so that copying or exporting the data never copies the key.
    static func defaultKey(forData dir: String) -> String {
        let url = URL(fileURLWithPath: dir).standardizedFileURL
        let parent = url.deletingLastPathComponent().path
        return parent + "/auditd-keys/" + url.lastPathComponent + ".key"
    }

    /// The archive of data directory `dir` when none is given: `<parent>/auditd-archive`.
    static func defaultArchive(forData dir: String) -> String {
        URL(fileURLWithPath: dir).standardizedFileURL.deletingLastPathComponent().path + "/auditd-archive"
    }
}
