import HTTPTypes
import Hummingbird
import NIOCore

/// The admin console (README "Console"): static files compiled into the binary
/// (`Console/static`: the shell `app.js`, an org's view `views.js` with its rows and their
/// checks `rows.js` and an opened entry `detail.js`, the operator's
/// `operator.js`, its activity chart `chart.js`, its state in the URL `urlstate.js`, the archived
/// ranges `archived.js`, its export button `exports.js`, times in a named zone
/// `time.js`, the proof checks `proof.js`, personal values and erasures `personal.js`, rollback and
/// fork detection against the checkpoint the browser kept `consistency.js`, and the leaves they share, `api.js` (session,
/// read-port calls, errors) and `dom.js` (elements), which import nothing; embedded by the
/// package manifest), served by the read port at `/`.
/// The pages only read: they call the same GET endpoints as any client, with the token the
/// person typed (kept in the tab's session storage), and check every entry's proof in the
/// browser against the log key pinned in it.
enum ConsoleAssets {
    struct Asset: Sendable {
        let bytes: [UInt8]
        let type: String
    }

    static let files: [(path: String, asset: Asset)] = [
        ("/", Asset(bytes: PackageResources.index_html, type: "text/html; charset=utf-8")),
        ("/console/app.js", Asset(bytes: PackageResources.app_js, type: "text/javascript; charset=utf-8")),
        ("/console/api.js", Asset(bytes: PackageResources.api_js, type: "text/javascript; charset=utf-8")),
        ("/console/dom.js", Asset(bytes: PackageResources.dom_js, type: "text/javascript; charset=utf-8")),
        ("/console/views.js", Asset(bytes: PackageResources.views_js, type: "text/javascript; charset=utf-8")),
        ("/console/operator.js", Asset(bytes: PackageResources.operator_js, type: "text/javascript; charset=utf-8")),
        ("/console/proof.js", Asset(bytes: PackageResources.proof_js, type: "text/javascript; charset=utf-8")),
        (
            "/console/consistency.js",
            Asset(bytes: PackageResources.consistency_js, type: "text/javascript; charset=utf-8")
        ),
        ("/console/chart.js", Asset(bytes: PackageResources.chart_js, type: "text/javascript; charset=utf-8")),
        ("/console/urlstate.js", Asset(bytes: PackageResources.urlstate_js, type: "text/javascript; charset=utf-8")),
        ("/console/archived.js", Asset(bytes: PackageResources.archived_js, type: "text/javascript; charset=utf-8")),
        ("/console/exports.js", Asset(bytes: PackageResources.exports_js, type: "text/javascript; charset=utf-8")),
        ("/console/personal.js", Asset(bytes: PackageResources.personal_js, type: "text/javascript; charset=utf-8")),
        ("/console/time.js", Asset(bytes: PackageResources.time_js, type: "text/javascript; charset=utf-8")),
        ("/console/rows.js", Asset(bytes: PackageResources.rows_js, type: "text/javascript; charset=utf-8")),
        ("/console/detail.js", Asset(bytes: PackageResources.detail_js, type: "text/javascript; charset=utf-8")),
        ("/console/console.css", Asset(bytes: PackageResources.console_css, type: "text/css; charset=utf-8")),
    ]
}

extension ReadPort {
    /// Adds the console's files to `router`.
    func addConsole(to router: Router<ReadContext>) {
        for (path, asset) in ConsoleAssets.files {
            router.get(RouterPath(path)) { _, _ in
                Response(
                    status: .ok, headers: [.contentType: asset.type, .cacheControl: "no-cache"],
                    body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
            }
        }
    }
}
