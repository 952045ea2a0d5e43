// The daemon arrives with its own issue; until then it says so instead of pretending.
import Foundation
FileHandle.standardError.write("auditd: the ingest daemon is not built yet; use `auditctl import` to load a data directory\n".data(using: .utf8)!)
exit(2)
