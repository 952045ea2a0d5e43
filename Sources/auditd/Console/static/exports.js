// The export buttons: the applied filter's export, saved as a file, its progress shown, and one
// at a time. The export itself is written into the org's log first, as every export is.
import { ApiError, session } from "./api.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const BUTTONS = ["export-ndjson", "export-csv", "export-evidence"];
// One export or pack at a time: a press while one runs does nothing.
let busy = false;

// What an export of the filter `p` will prove, said before it is made (format-spec §9.3: only
// a time range, or nothing, can be proven complete).
export function describeExport(p) {
  const selective = ["category", "action", "actor", "outcome", "q"].filter((k) => p.has(k));
  const what = p.has("from") || p.has("to") ? "the applied time range" : "the whole log of this org";
  $("export-note").textContent = selective.length === 0
    ? `Exports ${what}; the file verifies as complete (auditctl verify-export proves no entry is missing). The export is recorded in this org's log.`
    : `Exports the applied filter (${selective.join(", ")}) over ${what}; the file verifies as an authentic selection: each entry is proven, but not that none is left out. The export is recorded in this org's log.`;
  // An evidence pack covers a time range from one time to another, and nothing else.
  const pack = $("export-evidence");
  pack.dataset.ready = String(selective.length === 0 && p.has("from") && p.has("to"));
  pack.disabled = pack.dataset.ready !== "true";
  pack.title = pack.disabled ? "Apply a time range (from and to, no other filter) to make an evidence pack" : "";
}

function size(n) {
  return n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

// Streams the export of `p` to a file, showing bytes and lines as they arrive.
export async function exportAs(path, p, org, format) {
  if (busy) return;
  busy = true;
  for (const id of BUTTONS) $(id).disabled = true;
  const progress = $("export-progress");
  try {
    const q = new URLSearchParams(p);
    q.set("format", format);
    const r = await fetch(`${path}?${q}`, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
    if (!r.ok) {
      let m = `export failed (HTTP ${r.status})`;
      try {
        m = (await r.json()).error.message;
      } catch {}
      throw new ApiError(r.status, m);
    }
    const parts = [];
    let bytes = 0;
    let lines = 0;
    const reader = r.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      bytes += value.length;
      for (const b of value) if (b === 10) lines++;
      progress.textContent = `Exporting… ${size(bytes)}, ${lines} lines so far.`;
    }
    const blob = new Blob(parts, { type: format === "csv" ? "text/csv" : "application/x-ndjson" });
    // The trailer (the last line) counts the entries and the context lines around them.
    const tail = (await blob.slice(Math.max(0, blob.size - 4096)).text()).replaceAll('""', '"');
    const trailer = tail.slice(tail.lastIndexOf('"type":"trailer"') < 0 ? tail.length : tail.lastIndexOf("{"));
    const count = /"count":([0-9]+)/.exec(trailer)?.[1];
    const context = /"context":([0-9]+)/.exec(trailer)?.[1];
    const name = `${org.replace(/[^A-Za-z0-9_.-]/g, "_")}-audit.${format}`;
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
    progress.textContent = `Saved ${name}: ${count && context ? `${count} entries and ${context} context lines` : `${lines} lines`}, ${size(bytes)}. Check it with: auditctl verify-export ${name} --key KEY`;
  } catch (e) {
    progress.textContent = "";
    throw e;
  } finally {
    release();
  }
}

function release() {
  busy = false;
  for (const id of BUTTONS) $(id).disabled = id === "export-evidence" && $(id).dataset.ready !== "true";
}

// The applied time range's evidence pack (format-spec §9.5): one .tar an auditor checks
// with auditctl verify-evidence, made by the read port (its two exports are recorded).
export async function evidencePack(path, p, org) {
  if (busy) return;
  busy = true;
  for (const id of BUTTONS) $(id).disabled = true;
  const progress = $("export-progress");
  try {
    const q = new URLSearchParams({ from: p.get("from"), to: p.get("to") });
    progress.textContent = "Making the evidence pack…";
    const r = await fetch(`${path}?${q}`, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
    if (!r.ok) {
      let m = `evidence pack failed (HTTP ${r.status})`;
      try {
        m = (await r.json()).error.message;
      } catch {}
      throw new ApiError(r.status, m);
    }
    const blob = await r.blob();
    const name = `${org.replace(/[^A-Za-z0-9_.-]/g, "_")}-evidence.tar`;
    const url = URL.createObjectURL(new Blob([blob], { type: "application/x-tar" }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
    progress.textContent = `Saved ${name}, ${size(blob.size)}: the complete export, a sample drawn from the checkpoint, the figures and a report. Check it with: auditctl verify-evidence ${name} --key KEY`;
  } catch (e) {
    progress.textContent = "";
    throw e;
  } finally {
    release();
  }
}
