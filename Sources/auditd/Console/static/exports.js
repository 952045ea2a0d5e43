import { ApiError, session } from "./api.js";
import { el } from "./dom.js";

// An export of the current filter, downloaded as a file (the export itself is recorded in the
// org's log, as every export is).
export async function exportAs(path, p, org, format) {
  p.set("format", format);
  const r = await fetch(`${path}?${p}`, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
  if (!r.ok) {
    let m = `export failed (HTTP ${r.status})`;
    try {
      m = (await r.json()).error.message;
    } catch {}
    throw new ApiError(r.status, m);
  }
  const url = URL.createObjectURL(await r.blob());
  const a = el("a", { href: url, download: `${org.replace(/[^A-Za-z0-9_.-]/g, "_")}-audit.${format}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}
