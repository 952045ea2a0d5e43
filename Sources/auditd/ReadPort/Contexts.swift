import AuditAccess
import AuditEntries
import Hummingbird
import NIOCore

/// The read port's request context: the token's scope, once `TokenMiddleware` checked it.
struct ReadContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Who is asking; set for every route under `/v1`.
    var scope: TokenScope?
    /// The connection, so that a long answer (a feed) can be ended when the daemon stops.
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The context of every route under `/v1/orgs/:org`. It can only be made by checking the
/// double scope (the token's org and the path's org agree), so no route of the group can
/// skip that check: a handler that has an `OrgContext` has an org it may read.
struct OrgContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage
    /// The org of the path, which the token may read.
    let org: String
    /// The token's scope.
    let scope: TokenScope
    /// The connection.
    let channel: any Channel

    init(context: ReadContext) throws {
        coreContext = context.coreContext
        guard let scope = context.scope else {
            throw HTTPError(
                .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
                message: "send Authorization: Bearer <token> (create one with `auditctl token create`)")
        }
        // An org name may hold "/" (format-spec §4): in a path it is sent as %2F, which the
        // router leaves encoded.
        let raw = context.parameters.get("org") ?? ""
        let org = raw.removingPercentEncoding ?? raw
        // The same answer whether or not the org exists: nothing about other orgs leaks.
        guard scope.allows(org: org) else {
            throw HTTPError(.forbidden, message: "this token reads only its own org's log")
        }
        guard Entry.isValidOrgName(org) else {
            throw HTTPError(
                .badRequest, message: "org: '\(org.prefix(80))' is not an org name (1–64 of [A-Za-z0-9_.:@/-])")
        }
        self.org = org
        self.scope = scope
        channel = context.channel
    }
}

/// Authenticates the bearer token of every request it guards (the scheme is
/// case-insensitive, RFC 9110 §11.1) and records its scope in the context.
struct TokenMiddleware: RouterMiddleware {
    let tokens: TokenStore

    func handle(
        _ request: Request, context: ReadContext, next: (Request, ReadContext) async throws -> Response
    ) async throws -> Response {
        guard let h = request.headers[.authorization], let space = h.firstIndex(of: " "),
            h[..<space].lowercased() == "bearer"
        else {
            throw HTTPError(
                .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
                message: "send Authorization: Bearer <token> (create one with `auditctl token create`)")
        }
        let s: TokenScope
        switch tokens.check(String(h[h.index(after: space)...].drop { $0 == " " })) {
        case .scope(let scope): s = scope
        case .expired(let id, let at):
            throw HTTPError(
                .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
                message: "token \(id) expired at \(at); ask your operator for a new one (`auditctl token create --ttl`)"
            )
        case .refused:
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "unknown or revoked token")
        }
        var ctx = context
        ctx.scope = s
        return try await next(request, ctx)
    }
}

/// Every request that would change or remove something is refused: the log is append-only,
/// and entries arrive only through the ingest socket.
struct AppendOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            throw HTTPError(
                .methodNotAllowed, headers: [.allow: "GET, HEAD"],
                message: "the audit log is append-only: nothing can be changed or deleted through the read port")
        }
        return try await next(request, context)
    }
}
