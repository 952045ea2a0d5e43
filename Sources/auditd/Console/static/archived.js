// Where an org's older entries went: the archived ranges a page answer names, shown where the
// paging reaches them (after the oldest hot entry), collapsed, with what an operator runs to
// bring them back.
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

// `atEdge`: this page is the one next to the archived entries (the last page newest first, the
// first oldest first); elsewhere nothing is shown.
export function renderArchived(ranges, atEdge) {
  const box = $("archived");
  box.replaceChildren();
  if (ranges.length === 0 || !atEdge) {
    box.hidden = true;
    return;
  }
  const entries = ranges.reduce((n, r) => n + r.entries, 0);
  const purged = ranges.filter((r) => r.purged).length;
  box.append(el("summary", {
    textContent: `${entries} older entr${entries === 1 ? "y" : "ies"} of this org ${entries === 1 ? "is" : "are"} in the archive tier (${ranges.length} bundle${ranges.length === 1 ? "" : "s"}${purged ? `, ${purged} purged at the end of retention` : ""}), not on these pages.`,
  }));
  const ul = el("ul");
  for (const r of ranges) {
    const what = `${r.entries} entries (seq ${r.first_seq}–${r.end_seq - 1}) in bundle ${r.bundle}`;
    ul.append(el("li", {
      textContent: r.purged
        ? `${what}: purged at the end of their retention (a signed tombstone remains).`
        : `${what}: ask an operator to run "auditctl archive restore DATA ${r.bundle}" to read them here.`,
    }));
  }
  box.append(ul);
  box.open = false;
  box.hidden = false;
}
