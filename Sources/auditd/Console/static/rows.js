// The rows of an org's page and what the browser checked about each: its own proof, and, on a
// page that holds a run of the org's chain, the links between neighbours.
import { api, session, ApiError } from "./api.js";
import { el, shown } from "./dom.js";
import { trust } from "./consistency.js";
import { verifyEntry } from "./proof.js";
import { checkErasureRecord, checkOpenings, checkWithheldRecord, commitments, readable } from "./personal.js";
import { showTime } from "./time.js";

const $ = (id) => document.getElementById(id);
const COLUMNS = ["Received", "Actor", "Action", "Target", "Outcome", "Source", "Proof"];

function who(party) {
  if (!party) return "";
  return shown(`${party.type}:${party.id}${party.name ? ` (${party.name})` : ""}`);
}

// A row shows the entry's own bytes (`raw`, the ones its proof is checked against), never a
// re-parse of the page that could say something else. It is focusable; Enter opens it.
export function renderRow(item, raw, open) {
  let e = {};
  if (raw !== null) {
    try {
      e = readable(JSON.parse(raw), item.personal);
    } catch {}
  } else if (item.withheld) {
    // Withheld (§5.4.3): nothing of it is shown but the record that withholds it.
    e = { action: `WITHHELD (entry ${item.withheld.entry}, authority ${item.withheld.authority})`, category: "content not shown" };
  }
  const proof = el("span", { class: "proof pending", textContent: "checking…" });
  const cells = [
    el("td", { class: "time" }, el("div", { textContent: showTime(e.received_at) }),
      el("div", { class: "sub", textContent: `happened ${showTime(e.occurred_at)}` })),
    el("td", {}, el("div", { textContent: who(e.actor) }),
      e.on_behalf_of ? el("div", { class: "sub", textContent: `on behalf of ${who(e.on_behalf_of)}` }) : null),
    el("td", {}, el("div", { textContent: shown(e.action) }), el("div", { class: "sub", textContent: shown(e.category) })),
    el("td", { textContent: who(e.target) }),
    el("td", { class: `outcome-${e.outcome}`, textContent: shown(e.outcome) }),
    el("td", {}, el("div", { textContent: shown(e.source?.service) }), e.source?.ip ? el("div", { class: "sub", textContent: shown(e.source.ip) }) : null),
    el("td", {}, proof),
  ];
  // Each cell names its column, for the narrow layout that stacks them.
  cells.forEach((td, i) => (td.dataset.label = COLUMNS[i]));
  const tr = el("tr", { tabIndex: 0, data: { seq: String(item.seq) } }, ...cells);
  const row = { item, raw, entry: e, tr, proof, result: null };
  tr.addEventListener("click", () => open(row));
  tr.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      open(row);
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      (ev.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling)?.focus();
    }
  });
  return row;
}

export function mark(row, state, text, title) {
  row.proof.className = `proof ${state}`;
  row.proof.textContent = text;
  row.proof.title = title || "";
}

function fail(row, why) {
  row.result = { error: why };
  mark(row, "failed", "✗ not verified", why);
}

// Each row's proof, a few at a time: the entry with its inclusion proof and checkpoint, checked
// here; the row's own bytes must be the entry proven. `view` holds what was verified already.
export async function checkAll(rows, view, generation, head) {
  let next = 0;
  const worker = async () => {
    while (next < rows.length && generation === view.generation) {
      const row = rows[next++];
      if (head !== null) fail(row, head);
      else if (!row.result) await check(row, view);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // A row called pending before a larger tree was verified: that tree holds it.
  for (const row of rows) {
    if (row.result?.pending && BigInt(row.item.seq) < view.verifiedSize) {
      fail(row, `the server says no checkpoint covers entry ${row.item.seq} yet, but a signed tree of ${view.verifiedSize} entries was verified`);
    }
  }
}

async function check(row, view) {
  try {
    const text = await api(`/v1/orgs/${encodeURIComponent(view.org)}/entries/${row.item.seq}`, { text: true });
    if (!row.item.withheld && row.entry.org !== view.org) throw new Error(`the page holds an entry of another org (${row.entry.org})`);
    row.result = await verifyEntry(text, { vkey: session.vkey, org: view.org, seq: row.item.seq, listed: row.raw, checkpoints: view.checkpoints, verifiedSize: view.verifiedSize });
    if (row.result.withheld) return await checkWithheld(row, view, text);
    // Personal values (§5.4.4): each opens its commitment, the page shows the ones proven, and
    // each erasure shown is checked against its record, itself proven in the log.
    const personal = JSON.parse(text).personal;
    const erasures = await checkOpenings(row.result.entry, personal);
    if (JSON.stringify(row.item.personal ?? null) !== JSON.stringify(personal ?? null)) {
      throw new Error("the personal values on the page differ from the ones proven");
    }
    row.result.shownEntry = readable(row.result.entry, personal);
    const committed = commitments(row.result.entry).length;
    if (committed) row.result.steps.push(`personal fields: ${committed - erasures.length} open their commitments, ${erasures.length} erased (each record checked)`);
    for (const claim of erasures) {
      if (!view.records) view.records = new Map();
      let proven = view.records.get(claim.entry);
      if (!proven) {
        proven = api(`/v1/orgs/${encodeURIComponent(view.org)}/entries/${claim.entry}`, { text: true })
          .then((t) => verifyEntry(t, { vkey: session.vkey, org: view.org, seq: claim.entry, checkpoints: view.checkpoints, verifiedSize: view.verifiedSize }));
        view.records.set(claim.entry, proven);
      }
      checkErasureRecord((await proven).entry, claim, row.item.seq);
    }
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
    fail(row, e.message);
  }
}

// A withheld row: its link and proof are checked (verifyEntry); its record is proven in the
// log and must list it. Then it reads "WITHHELD (entry N, authority …)", never "verified".
async function checkWithheld(row, view, text) {
  const claim = row.result.withheld;
  if (JSON.stringify(claim) !== JSON.stringify(row.item.withheld)) throw new Error("the page names another record than the one proven");
  if (!Number.isSafeInteger(claim?.entry) || typeof claim?.authority !== "string") throw new Error("the withheld entry names no record");
  const recordText = await api(`/v1/orgs/${encodeURIComponent(view.org)}/entries/${claim.entry}`, { text: true });
  const record = await verifyEntry(recordText, { vkey: session.vkey, org: view.org, seq: claim.entry, checkpoints: view.checkpoints, verifiedSize: view.verifiedSize });
  await checkWithheldRecord(record.entry, JSON.parse(recordText).withholds, claim, row.item.seq, view.org);
  row.result.shownEntry = { action: `WITHHELD (entry ${claim.entry}, authority ${claim.authority})`, category: "content not shown" };
  row.result.steps.push(`withheld by entry ${claim.entry} (authority ${claim.authority}): that record is proven in the log and lists this entry`);
  if (!row.result.pending) await trust(JSON.parse(text).checkpoint, session.vkey);
  if (row.result.pending) mark(row, "pending", "… not yet checkpointed", "the entry is linked, but no signed checkpoint covers it yet");
  else mark(row, "verified", `WITHHELD (entry ${claim.entry}, authority ${claim.authority})`, row.result.steps.join("\n"));
}

// On a page that holds a run of the org's chain (no filter but a time range, which selects a
// run), each row's `prevOrgHash` must be the hash of the row below it in the chain, one
// position earlier: a row left out of the page or shown twice breaks that, though every row's
// own proof holds. `edge`, the last row of the page the admin paged on from, is linked to this
// page's first row the same way, so a row left out at the page boundary is caught too. Rows
// that failed their own check are named already and are skipped.
export function checkOrgChain(rows, newestFirst, edge = null) {
  // In paging order the edge comes first either way (newer than the page newest first, older
  // oldest first).
  const shown = edge ? [edge, ...rows] : rows;
  const chain = newestFirst ? [...shown].reverse() : shown;
  for (let i = 1; i < chain.length; i++) {
    const [older, newer] = [chain[i - 1], chain[i]];
    const a = older.result;
    const b = newer.result;
    if (!a || !b || a.error || b.error) continue;
    // The row blamed is one on this page: the newer, unless that is the edge.
    const blamed = newer === edge ? older : newer;
    const across = older === edge || newer === edge;
    if (b.orgSeq < a.orgSeq) {
      fail(blamed, `the org chain runs backwards from position ${a.orgSeq} (entry ${older.item.seq}) to ${b.orgSeq} (entry ${newer.item.seq}): the rows are out of order`);
    } else if (b.orgSeq !== a.orgSeq + 1n) {
      fail(blamed, b.orgSeq === a.orgSeq
        ? `the org chain shows its position ${b.orgSeq} twice (entries ${older.item.seq} and ${newer.item.seq}): the page repeats an entry`
        : `the org chain jumps from position ${a.orgSeq} (entry ${older.item.seq}) to ${b.orgSeq} (entry ${newer.item.seq}): ${across ? "the paging" : "the page"} leaves out ${b.orgSeq - a.orgSeq - 1n} of the org's entries${across ? " between this page and the one before" : ""}`);
    } else if (b.prevOrgHash !== a.hash) {
      fail(blamed, `entry ${newer.item.seq} does not link to entry ${older.item.seq}, the one before it in the org's chain`);
    }
  }
}

// A page-wide notice when any row failed, with the reasons on the page (not only in tooltips),
// and the tally read out to screen readers.
export function reportFailures(rows) {
  const box = $("page-failed");
  const failed = rows.filter((r) => r.result?.error);
  const pending = rows.filter((r) => r.result?.pending).length;
  $("proof-status").textContent = rows.length === 0 ? "" : `Proofs checked in this browser: ${rows.length - failed.length - pending} verified, ${pending} not yet checkpointed, ${failed.length} not verified.`;
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
