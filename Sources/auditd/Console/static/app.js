// The console's shell: sign in, the token (this tab's session storage only), the pinned key
// (local storage: it is public, and pinning it is the point), and which view shows.
import { api, session, show, showError, signOut, TOKEN } from "./api.js";
import { followSuccessions, parseVerifierKey, ProofError } from "./proof.js";
import { showOperator } from "./operator.js";
import { showOrg } from "./views.js";

const PIN = "auditlog.pinned-key";
// "yes" once the admin gave the pinned key themselves (pasted at sign-in), not the server.
const CONFIRMED = "auditlog.pinned-key.confirmed";

const $ = (id) => document.getElementById(id);

// The key proofs are checked against: the one typed (it replaces a different pinned one only
// when `replace` is ticked), else the one pinned, else the server's, pinned as unconfirmed.
async function signIn(token, keyText, replace = false) {
  session.token = token;
  const s = await api("/v1/session");
  const typed = keyText.trim();
  const stored = localStorage.getItem(PIN);
  let vkey;
  try {
    vkey = await parseVerifierKey(typed || stored || s.verifier_key);
    vkey.chain = await followSuccessions(vkey, s.key_successions);
  } catch (e) {
    session.token = null;
    throw new ProofError(`The log key: ${e.message}`);
  }
  if (typed && stored && vkey.text !== stored && !replace) {
    session.token = null;
    throw new ProofError(`This browser has pinned the log key ${stored}; the key given is another. Compare it with the one your operator publishes (auditctl key DATA), then tick "Replace" to pin it.`);
  }
  const confirmed = typed ? true : stored ? localStorage.getItem(CONFIRMED) === "yes" : false;
  localStorage.setItem(PIN, vkey.text);
  localStorage.setItem(CONFIRMED, confirmed ? "yes" : "no");
  session.vkeyConfirmed = confirmed;
  sessionStorage.setItem(TOKEN, token);
  Object.assign(session, { scope: s.scope, org: s.org || null, vkey, serverKey: s.verifier_key });
  const ends = s.expires_at ? ` · token valid until ${s.expires_at}` : "";
  $("who").textContent = (s.scope === "operator" ? `operator (token ${s.token_id}) · log ${s.origin}` : `org ${s.org} (token ${s.token_id}) · log ${s.origin}`) + ends;
  showError(null);
  if (s.scope === "operator") await openOperator();
  else await openOrg(s.org);
}

export async function openOrg(org) {
  session.org = org;
  show("org");
  // An operator who opened an org has the way back to the overview.
  $("to-operator").hidden = session.scope !== "operator";
  const note = $("pinned");
  note.textContent = `Proofs are checked in this browser against the pinned key ${session.vkey.text}.`;
  note.classList.toggle("unconfirmed", !session.vkeyConfirmed);
  if (!session.vkeyConfirmed) {
    note.textContent = `UNCONFIRMED KEY: ${session.vkey.text} was taken from the server at the first sign-in, so a dishonest server could have named its own. Compare it with the key your operator publishes (auditctl key DATA) and paste that at sign-in to confirm it; until then "verified" means verified against this unconfirmed key.`;
  }
  if (session.serverKey !== session.vkey.text) {
    note.textContent += ` The server names a different key (${session.serverKey}): entries will not verify until your operator confirms which is the log's.`;
  }
  await showOrg(org);
}

async function openOperator() {
  show("operator");
  await showOperator();
}

document.addEventListener("DOMContentLoaded", () => {
  $("pin").value = localStorage.getItem(PIN) || "";
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("token").value.trim(), $("pin").value, $("repin").checked).catch(showError);
  });
  $("signout").addEventListener("click", () => signOut());
  $("op-refresh").addEventListener("click", () => showOperator().catch(showError));
  $("to-operator").addEventListener("click", () => {
    history.pushState({}, "", location.pathname);
    openOperator().catch(showError);
  });
  $("open-org").addEventListener("submit", (ev) => {
    ev.preventDefault();
    openOrg($("open-org-name").value.trim()).catch(showError);
  });
  const saved = sessionStorage.getItem(TOKEN);
  if (saved) signIn(saved, "").catch((e) => signOut(e.message));
  else show("signin");
});
