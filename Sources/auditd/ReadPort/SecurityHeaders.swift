import HTTPTypes
import Hummingbird

/// Headers on every answer of the read port, the console's pages and the API alike: scripts
/// only from the port itself (no inline script, no CDN), no framing, no referrer, no sniffing,
/// and nothing kept by a cache unless the route says otherwise: an answer holds an org's
/// entries or the log's newest checkpoint, which a shared cache must never keep and a client
/// must never be shown stale.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var policy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    }

    static var frameOptions: HTTPField.Name? { HTTPField.Name("X-Frame-Options") }
    static var referrerPolicy: HTTPField.Name? { HTTPField.Name("Referrer-Policy") }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let e as any HTTPResponseError {
            response = try e.response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        if let n = Self.frameOptions { response.headers[n] = "DENY" }
        if let n = Self.referrerPolicy { response.headers[n] = "no-referrer" }
        response.headers[.xContentTypeOptions] = "nosniff"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}
