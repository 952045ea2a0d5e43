// The console's view of an org's log: filters, pages, proofs, detail, export, chart. Every
// string from the log is put in the page as text, never as HTML.
import { api, session, showError, ApiError } from "./api.js";
import { renderArchived } from "./archived.js";
import { loadChart } from "./chart.js";
import { closeDetail, showDetail } from "./detail.js";
import { describeExport, evidencePack, exportAs } from "./exports.js";
import { checkHead, resetConsistency } from "./consistency.js";
import { elementSpans, memberSpan, noDuplicateMembers } from "./proof.js";
import { checkAll, checkOrgChain, mark, renderRow, reportFailures } from "./rows.js";
import { fieldTime, labelTimes, preset, setZone } from "./time.js";
import { fillForm, readURL, writeURL } from "./urlstate.js";

const $ = (id) => document.getElementById(id);
// Filters that select some of the org's entries rather than a run of its chain.
const SELECTIVE = ["category", "action", "actor", "outcome", "q"];

// `checkpoints`: notes opened, per (key, note); `verifiedSize`: the largest signed tree verified
// under the pinned key, which every smaller seq is inside. Both start again at each sign-in.
// `applied`: the filters of the page shown (the form may hold edits not applied yet).
const view = { org: null, cursors: [], cursor: null, next: null, rows: [], applied: new URLSearchParams(), checkpoints: new Map(), verifiedSize: 0n, generation: 0, wired: false };

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

const newestFirst = () => $("f-order").value !== "asc";

// An entry opened: in the URL, then shown.
function open(row) {
  writeURL(view.org, view, { entry: row.item.seq });
  showDetail(row);
}

// The paging buttons say which way they go.
function labelPaging() {
  $("prev-page").textContent = newestFirst() ? "← Newer" : "← Older";
  $("next-page").textContent = newestFirst() ? "Older →" : "Newer →";
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
  // Paging goes on with the filter applied; edits typed in the form but not applied are
  // undone, so that the form, the URL and the page say the same.
  $("next-page").addEventListener("click", () => {
    if (view.next === null) return;
    fillForm(view.applied);
    view.cursors.push(view.cursor);
    view.cursor = view.next;
    // The last row shown, checked, is linked to the next page's first (same filter only).
    const last = view.rows.at(-1);
    loadPage({ push: true, edge: last ? { row: last, filter: view.applied.toString() } : null }).catch(showError);
  });
  $("prev-page").addEventListener("click", () => {
    if (view.cursors.length === 0) return;
    fillForm(view.applied);
    view.cursor = view.cursors.pop();
    loadPage({ push: true }).catch(showError);
  });
  const close = () => {
    closeDetail();
    writeURL(view.org, view);
  };
  $("detail-close").addEventListener("click", close);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("detail").hidden && !$("org").hidden) close();
  });
  for (const id of ["f-order", "f-limit"]) $(id).addEventListener("change", () => restart().catch(showError));
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
  for (const format of ["ndjson", "csv"]) {
    $(`export-${format}`).addEventListener("click", () => exportAs(orgPath("export"), view.applied, view.org, format).catch(showError));
  }
  $("export-evidence").addEventListener("click", () => evidencePack(orgPath("evidence"), view.applied, view.org).catch(showError));
}

export async function showOrg(org) {
  wire();
  view.org = org;
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

async function loadPage({ push = false, entry = null, edge = null } = {}) {
  const generation = ++view.generation;
  const p = filterParams();
  view.applied = new URLSearchParams(p);
  describeExport(p);
  labelPaging();
  const desc = newestFirst();
  p.set("limit", $("f-limit").value || "50");
  if (!desc) p.set("order", "asc");
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
    $("summary").textContent = `Searching ${desc ? "older" : "newer"} entries… ${searched} page${searched === 1 ? "" : "s"} searched so far.`;
    $("search-stop").hidden = false;
  }
  $("search-stop").hidden = true;
  view.cursor = cursor;
  writeURL(view.org, view, { push, entry });
  const [es] = memberSpan(text, 0, "entries");
  const spans = elementSpans(text, es);
  view.next = page.next_cursor;
  $("next-page").disabled = page.next_cursor === null;
  $("prev-page").disabled = view.cursors.length === 0;
  $("detail").hidden = true;
  // The archived entries are older than every hot one: past the last page newest first, before
  // the first oldest first.
  renderArchived(page.archived || [], desc ? page.next_cursor === null : view.cursors.length === 0);
  const body = $("entries").tBodies[0];
  body.replaceChildren();
  const rows = page.entries.map((item, i) => {
    let row;
    try {
      noDuplicateMembers(text, spans[i][0]);
      if (item.withheld && item.entry === undefined) row = renderRow(item, null, open);
      else {
        const [cs, ce] = memberSpan(text, spans[i][0], "entry");
        row = renderRow(item, text.slice(cs, ce), open);
      }
    } catch (e) {
      row = renderRow(item, null, open);
      row.result = { error: e.message };
      mark(row, "failed", "✗ not verified", e.message);
    }
    body.append(row.tr);
    return row;
  });
  view.rows = rows;
  $("summary").textContent = rows.length === 0
    ? (page.next_cursor === null ? "No entries match." : `Nothing found in the ${searched + 1} pages searched; ${desc ? "older" : "newer"} entries remain: "${$("next-page").textContent}" searches on.`)
    : `${rows.length} entr${rows.length === 1 ? "y" : "ies"}${page.next_cursor === null ? "" : ` on this page; ${desc ? "older" : "newer"} ones follow`}${view.cursors.length ? ` (page ${view.cursors.length + 1})` : ""}.`;
  $("entries-caption").textContent = `Audit log of org ${view.org}, ${desc ? "newest" : "oldest"} first. Select a row, or focus it and press Enter, to see what was checked.`;
  $("proof-status").textContent = "";
  // The server's newest checkpoint must extend the one this browser kept; when it cannot be
  // checked, or does not, every row says so instead of "verified".
  let head = null;
  try {
    await checkHead(session.vkey);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    head = e.message;
  }
  await checkAll(rows, view, generation, head);
  if (generation !== view.generation) return;
  const run = !SELECTIVE.some((k) => view.applied.has(k));
  if (run) checkOrgChain(rows, desc, edge?.filter === view.applied.toString() ? edge.row : null);
  reportFailures(rows);
  // The org's total where it is cheap: the newest entry of the whole org, checked, is its last.
  const newest = rows[0]?.result;
  if (run && desc && view.cursors.length === 0 && !view.applied.has("to") && newest && !newest.error) {
    $("summary").textContent += ` The org's log holds ${newest.orgSeq + 1n} entries.`;
  }
  // A link to one entry opens it once its proof is checked (when it is on this page).
  const linked = entry === null ? null : rows.find((r) => r.item.seq === entry);
  if (linked) showDetail(linked);
}


