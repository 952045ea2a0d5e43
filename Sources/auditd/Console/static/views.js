// The console's view of an org's log: filters, pages, proofs, detail, export, chart. Every
// string from the log is put in the page as text, never as HTML.
import { api, session, showError, ApiError } from "./api.js";
import { el, shown } from "./dom.js";
import { renderArchived } from "./archived.js";
import { loadChart } from "./chart.js";
import { exportAs } from "./exports.js";
import { checkHead, resetConsistency, trust } from "./consistency.js";
import { elementSpans, memberSpan, noDuplicateMembers, verifyEntry } from "./proof.js";
import { fieldTime, labelTimes, preset, setZone, showTime, zoneName } from "./time.js";
import { readURL, writeURL } from "./urlstate.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
// ---- An org's log ----

// `checkpoints`: notes opened, per (key, note); `verifiedSize`: the largest signed tree verified
// under the pinned key, which every smaller seq is inside. Both start again at each sign-in.
const view = { org: null, cursors: [], cursor: null, next: null, checks: new Map(), checkpoints: new Map(), verifiedSize: 0n, generation: 0, wired: false };

function filterParams() {
  const p = new URLSearchParams();
  const from = fieldTime($("f-from").value);
  const to = fieldTime($("f-to").value);
  if (from) p.set("from", from);
  if (to) p.set("to", to);
  for (const [id, name] of [["f-category", "category"], ["f-action", "action"], ["f-actor", "actor"], ["f-outcome", "outcome"], ["f-q", "q"]]) {
    const v = $(id).value.trim();
    if (v) p.set(name, v);
  }
  return p;
}

function orgPath(suffix) {
  return `/v1/orgs/${encodeURIComponent(view.org)}/${suffix}`;
}

function wire() {
  if (view.wired) return;
  view.wired = true;
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    restart().catch(showError);
  });
  $("f-clear").addEventListener("click", () => {
    for (const id of ["f-from", "f-to", "f-category", "f-action", "f-actor", "f-outcome", "f-q"]) $(id).value = "";
    restart().catch(showError);
  });
  $("older").addEventListener("click", () => {
    if (view.next === null) return;
    view.cursors.push(view.cursor);
    view.cursor = view.next;
    loadPage({ push: true }).catch(showError);
  });
  $("newer").addEventListener("click", () => {
    if (view.cursors.length === 0) return;
    view.cursor = view.cursors.pop();
    loadPage({ push: true }).catch(showError);
  });
  $("detail-close").addEventListener("click", () => {
    $("detail").hidden = true;
    writeURL(view.org, view);
  });
  // Back and Forward: the view the URL names.
  window.addEventListener("popstate", () => {
    if (view.org === null || $("org").hidden) return;
    fromURL().catch(showError);
  });
  $("search-stop").addEventListener("click", () => (view.stopped = true));
  $("f-zone").addEventListener("change", () => {
    setZone($("f-zone").value);
    restart().catch(showError);
  });
  for (const b of document.querySelectorAll("[data-preset]")) {
    b.addEventListener("click", () => {
      preset(Number(b.dataset.preset));
      restart().catch(showError);
    });
  }
  labelTimes();
  $("export-ndjson").addEventListener("click", () => exportAs(orgPath("export"), filterParams(), view.org, "ndjson").catch(showError));
  $("export-csv").addEventListener("click", () => exportAs(orgPath("export"), filterParams(), view.org, "csv").catch(showError));
}

export async function showOrg(org) {
  wire();
  view.org = org;
  view.checks = new Map();
  view.checkpoints = new Map();
  view.verifiedSize = 0n;
  resetConsistency();
  await fromURL();
}

// The view the URL names (a reload, Back, a shared link), or the newest page of the org.
async function fromURL() {
  const u = readURL(view.org);
  view.cursor = u?.cursor ?? null;
  view.cursors = u?.cursors ?? [];
  showError(null);
  await Promise.all([loadPage({ entry: u?.entry ?? null }), loadChart(orgPath("activity"), filterParams())]);
}

async function restart() {
  view.cursors = [];
  view.cursor = null;
  showError(null);
  await Promise.all([loadPage({ push: true }), loadChart(orgPath("activity"), filterParams())]);
}

async function loadPage({ push = false, entry = null } = {}) {
  const generation = ++view.generation;
  const p = filterParams();
  p.set("limit", String(PAGE));
  // A search over a long history may end a page early with nothing found and a cursor: it
  // goes on by itself until it finds entries or reaches the start, or the admin stops it.
  let cursor = view.cursor;
  let text;
  let page;
  let searched = 0;
  view.stopped = false;
  for (;;) {
    if (cursor !== null) p.set("cursor", cursor);
    text = await api(`${orgPath("entries")}?${p}`, { text: true });
    if (generation !== view.generation) return;
    page = JSON.parse(text);
    if (page.entries.length > 0 || page.next_cursor === null || view.stopped) break;
    searched += 1;
    cursor = page.next_cursor;
    $("summary").textContent = `Searching older entries… ${searched} page${searched === 1 ? "" : "s"} searched so far.`;
    $("search-stop").hidden = false;
  }
  $("search-stop").hidden = true;
  view.cursor = cursor;
  writeURL(view.org, view, { push, entry });
  const [es] = memberSpan(text, 0, "entries");
  const spans = elementSpans(text, es);
  view.next = page.next_cursor;
  $("older").disabled = page.next_cursor === null;
  $("newer").disabled = view.cursors.length === 0;
  $("detail").hidden = true;
  renderArchived(page.archived || []);
  const body = $("entries").tBodies[0];
  body.replaceChildren();
  const rows = page.entries.map((item, i) => {
    let row;
    try {
      noDuplicateMembers(text, spans[i][0]);
      const [cs, ce] = memberSpan(text, spans[i][0], "entry");
      row = renderRow(item, text.slice(cs, ce));
    } catch (e) {
      row = renderRow(item, null);
      row.result = { error: e.message };
      mark(row, "failed", "✗ not verified", e.message);
    }
    body.append(row.tr);
    return row;
  });
  $("summary").textContent = rows.length === 0
    ? (page.next_cursor === null ? "No entries match." : `Nothing found in the ${searched + 1} pages searched; older entries remain: "Older" searches on.`)
    : `${rows.length} entr${rows.length === 1 ? "y" : "ies"}${page.next_cursor === null ? "" : " on this page; older ones follow"}${view.cursors.length ? ` (page ${view.cursors.length + 1})` : ""}.`;
  // The server's newest checkpoint must extend the one this browser kept; when it cannot be
  // checked, or does not, every row says so instead of "verified".
  let head = null;
  try {
    await checkHead(session.vkey);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    head = e.message;
  }
  await checkAll(rows, generation, head);
  if (generation !== view.generation) return;
  reportFailures(rows);
  // A link to one entry opens it once its proof is checked (when it is on this page).
  const open = entry === null ? null : rows.find((r) => r.item.seq === entry);
  if (open) showDetail(open);
}

// A page-wide notice when any row failed, with the reasons on the page (not only in tooltips).
function reportFailures(rows) {
  const box = $("page-failed");
  const failed = rows.filter((r) => r.result?.error);
  box.hidden = failed.length === 0;
  if (failed.length === 0) return box.replaceChildren();
  const reasons = new Map();
  for (const r of failed) reasons.set(r.result.error, [...(reasons.get(r.result.error) || []), r.item.seq]);
  const ul = el("ul");
  for (const [why, seqs] of [...reasons].slice(0, 5)) {
    ul.append(el("li", { textContent: `${shown(why)} (entr${seqs.length === 1 ? "y" : "ies"} ${seqs.slice(0, 8).join(", ")}${seqs.length > 8 ? ", …" : ""})` }));
  }
  box.replaceChildren(el("strong", { textContent: `${failed.length} of ${rows.length} entries on this page did not verify.` }), ul);
}

function who(party) {
  if (!party) return "";
  return shown(`${party.type}:${party.id}${party.name ? ` (${party.name})` : ""}`);
}

// A row shows the entry's own bytes (`raw`, the ones its proof is checked against), never a
// re-parse of the page that could say something else.
function renderRow(item, raw) {
  let e = {};
  if (raw !== null) {
    try {
      e = JSON.parse(raw);
    } catch {}
  }
  const proof = el("span", { class: "proof pending", textContent: "checking…" });
  const tr = el("tr", { data: { seq: String(item.seq) } },
    el("td", { class: "time" }, el("div", { textContent: showTime(e.received_at) }),
      el("div", { class: "sub", textContent: `happened ${showTime(e.occurred_at)}` })),
    el("td", {}, el("div", { textContent: who(e.actor) }),
      e.on_behalf_of ? el("div", { class: "sub", textContent: `on behalf of ${who(e.on_behalf_of)}` }) : null),
    el("td", {}, el("div", { textContent: shown(e.action) }), el("div", { class: "sub", textContent: shown(e.category) })),
    el("td", { textContent: who(e.target) }),
    el("td", { class: `outcome-${e.outcome}`, textContent: shown(e.outcome) }),
    el("td", {}, el("div", { textContent: shown(e.source?.service) }), e.source?.ip ? el("div", { class: "sub", textContent: shown(e.source.ip) }) : null),
    el("td", {}, proof));
  const row = { item, raw, entry: e, tr, proof, result: null };
  tr.addEventListener("click", () => showDetail(row));
  return row;
}

function mark(row, state, text, title) {
  row.proof.className = `proof ${state}`;
  row.proof.textContent = text;
  row.proof.title = title || "";
}

// Each row's proof, a few at a time: the entry with its inclusion proof and checkpoint, checked
// here; the row's own bytes must be the entry proven.
async function checkAll(rows, generation, head) {
  let next = 0;
  const worker = async () => {
    while (next < rows.length && generation === view.generation) {
      const row = rows[next++];
      if (head !== null) {
        row.result = { error: head };
        mark(row, "failed", "✗ not verified", head);
      } else if (!row.result) await check(row);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // A row called pending before a larger tree was verified: that tree holds it.
  for (const row of rows) {
    if (row.result?.pending && BigInt(row.item.seq) < view.verifiedSize) {
      row.result = { error: `the server says no checkpoint covers entry ${row.item.seq} yet, but a signed tree of ${view.verifiedSize} entries was verified` };
      mark(row, "failed", "✗ not verified", row.result.error);
    }
  }
}

async function check(row) {
  try {
    const text = await api(orgPath(`entries/${row.item.seq}`), { text: true });
    if (row.entry.org !== view.org) throw new Error(`the page holds an entry of another org (${row.entry.org})`);
    row.result = await verifyEntry(text, { vkey: session.vkey, org: view.org, seq: row.item.seq, listed: row.raw, checkpoints: view.checkpoints, verifiedSize: view.verifiedSize });
    // The checkpoint it was proven against must extend the one this browser kept, too.
    if (!row.result.pending) await trust(JSON.parse(text).checkpoint, session.vkey);
    if (row.result.pending) mark(row, "pending", "… not yet checkpointed", "the entry is linked, but no signed checkpoint covers it yet");
    else {
      if (row.result.treeSize > view.verifiedSize) view.verifiedSize = row.result.treeSize;
      const unconfirmed = session.vkeyConfirmed ? "" : " (key unconfirmed)";
      mark(row, "verified", `✓ verified${unconfirmed}`, row.result.steps.join("\n"));
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    row.result = { error: e.message };
    mark(row, "failed", "✗ not verified", e.message);
  }
}

function showDetail(row) {
  writeURL(view.org, view, { entry: row.item.seq });
  const r = row.result;
  const verified = r && !r.error;
  const e = verified ? r.entry : row.entry;
  $("detail-title").textContent = `Entry ${row.item.seq} · ${shown(e.action)} · received ${showTime(e.received_at)} ${zoneName()}`;
  const list = $("detail-proof");
  list.replaceChildren();
  if (!r) list.append(el("li", { textContent: "The proof is still being checked." }));
  else if (r.error) list.append(el("li", { class: "failed", textContent: `Not verified: ${r.error}` }));
  else if (r.pending) list.append(el("li", { textContent: "Linked into the chain; no signed checkpoint covers it yet. Reload in a few seconds." }));
  else for (const s of r.steps) list.append(el("li", { class: "verified", textContent: `✓ ${s}` }));
  // Position and hash as the proof established them; the listing's own claims are not shown.
  list.append(el("li", { class: "sub", textContent: verified
    ? `seq ${row.item.seq}, position ${r.orgSeq} in the org's chain, hash ${r.hash}`
    : `seq ${row.item.seq} (position and hash not shown: not verified)` }));
  $("detail-json").textContent = (verified ? "" : "NOT VERIFIED:\n") + JSON.stringify(e, null, 2).split("\n").map(shown).join("\n");
  $("detail").hidden = false;
  $("detail").scrollIntoView({ block: "nearest" });
}

