// One entry opened: what the browser checked, the entry as proven, and buttons that copy its
// ids, hash and JSON. Escape closes it and gives the focus back to its row.
import { el, shown } from "./dom.js";
import { showTime, zoneName } from "./time.js";

const $ = (id) => document.getElementById(id);
let openRow = null;

export function showDetail(row) {
  openRow = row;
  const r = row.result;
  const verified = r && !r.error;
  // Personal fields as the proof opened them (values, or ERASED with the record checked).
  const e = verified ? r.shownEntry : row.entry;
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
  // What may be copied: the values themselves (a search for an id needs its exact bytes); the
  // hash only when it was proven, and an unverified entry's JSON says so in its label.
  const copies = [["seq", String(row.item.seq)]];
  if (verified) copies.push(["hash", r.hash]);
  if (e.actor?.id) copies.push(["actor id", e.actor.id]);
  if (e.target?.id) copies.push(["target id", e.target.id]);
  copies.push([verified ? "entry JSON" : "entry JSON (not verified)", row.raw ?? JSON.stringify(e)]);
  $("detail-copy").replaceChildren(...copies.map(([what, value]) => {
    const b = el("button", { type: "button", textContent: `Copy ${what}` });
    b.addEventListener("click", () => copy(what, value));
    return b;
  }));
  $("copied").textContent = "";
  $("detail").hidden = false;
  $("detail").scrollIntoView({ block: "nearest" });
  $("detail-title").focus({ preventScroll: true });
}

// Closes the detail; the focus goes back to the row it was opened from.
export function closeDetail() {
  $("detail").hidden = true;
  const tr = openRow?.tr;
  openRow = null;
  if (tr?.isConnected) tr.focus();
}

async function copy(what, value) {
  try {
    await navigator.clipboard.writeText(value);
  } catch {
    // Without the clipboard API (or its permission), the older way: a selected text area.
    const t = el("textarea", { value, readOnly: true });
    document.body.append(t);
    t.select();
    const ok = document.execCommand("copy");
    t.remove();
    if (!ok) {
      $("copied").textContent = `This browser did not allow copying; select the ${what} above instead.`;
      return;
    }
  }
  $("copied").textContent = `Copied the ${what}.`;
}
