// Where an org's older entries went: the archived ranges a page answer names, with what an
// operator runs to bring them back.
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

export function renderArchived(ranges) {
  const box = $("archived");
  box.replaceChildren();
  if (ranges.length === 0) {
    box.hidden = true;
    return;
  }
  box.append(el("strong", { textContent: "Some of this org's entries are in the archive tier, not on this page." }));
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
  box.hidden = false;
}
