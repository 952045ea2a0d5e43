// The console's leaves: the session, calls to the read port, and what the page shows when one
// fails. They import nothing, so every view can use them without an import circle.
export const TOKEN = "auditlog.token";

const $ = (id) => document.getElementById(id);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The session: the token, what it may read, and the key proofs are checked against.
export const session = { token: null, scope: null, org: null, vkey: null, vkeyConfirmed: false, serverKey: null };

// A GET on the read port with the token; the answer's text (proofs hash the bytes received)
// or its parsed JSON. Errors carry the server's message, which says what to do.
export async function api(path, { text = false } = {}) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
  const body = await r.text();
  if (!r.ok) {
    let message = body.slice(0, 300);
    try {
      message = JSON.parse(body).error.message;
    } catch {}
    if (r.status === 401) {
      signOut(`Signed out: ${message}`);
    }
    throw new ApiError(r.status, message);
  }
  return text ? body : JSON.parse(body);
}

export function showError(e) {
  const p = $("error");
  if (!e) {
    p.hidden = true;
    p.textContent = "";
    return;
  }
  p.textContent = e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : e.message || String(e);
  p.hidden = false;
}

export function show(view) {
  for (const id of ["signin", "org", "operator"]) $(id).hidden = id !== view;
  $("signout").hidden = view === "signin";
}

export function signOut(message) {
  sessionStorage.removeItem(TOKEN);
  Object.assign(session, { token: null, scope: null, org: null, vkey: null });
  $("who").textContent = "";
  // Nothing of the session stays on the page: the token typed, the org's entries, the overview.
  $("token").value = "";
  for (const table of ["entries", "holds", "tokens"]) $(table).tBodies[0]?.replaceChildren();
  for (const id of ["chart-body", "archived", "page-failed", "detail-proof", "detail-copy", "cards"]) $(id).replaceChildren();
  for (const id of ["summary", "proof-status", "entries-caption", "export-note", "export-progress", "copied", "detail-title", "detail-json", "op-checkpoint", "op-refreshed"]) $(id).textContent = "";
  $("detail").hidden = true;
  show("signin");
  if (message) showError(new Error(message));
}
