// The export buttons: the applied filter's export, saved as a file, its progress shown, and one
// at a time. The export itself is written into the org's log first, as every export is.
import { ApiError, session } from "./api.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const BUTTONS = ["export-ndjson", "export-csv"];

// What an export of the filter `p` will prove, said before it is made (format-spec §9.3: only
// a time range, or nothing, can be proven complete).
export function describeExport(p) {
  const selective = ["category", "action", "actor", "outcome", "q"].filter((k) => p.has(k));
  const what = p.has("from") || p.has("to") ? "the applied time range" : "the whole log of this org";
  $("export-note").textContent = selective.length === 0
    ? `Exports ${what}; the file verifies as complete (auditctl verify-export proves no entry is missing). The export is recorded in this org's log.`
    : `Exports the applied filter (${selective.join(", ")}) over ${what}; the file verifies as an authentic selection: each entry is proven, but not that none is left out. The export is recorded in this org's log.`;
}

function size(n) {
  return n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

// Streams the export of `p` to a file, showing bytes and lines as they arrive.
export async function exportAs(path, p, org, format) {
  if (BUTTONS.some((id) => $(id).disabled)) return;
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
    for (const id of BUTTONS) $(id).disabled = false;
  }
}
