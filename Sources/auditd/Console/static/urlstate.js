// The org view's state in the URL (its filters, the page's cursor, the open entry), so that a
// reload, Back and a shared link show the same view; the way back to newer pages rides in the
// history entry. The token never goes in the URL.
import { fieldTime, fieldValue } from "./time.js";

const $ = (id) => document.getElementById(id);
const FIELDS = [["f-category", "category"], ["f-action", "action"], ["f-actor", "actor"], ["f-outcome", "outcome"], ["f-q", "q"]];
const TIMES = [["f-from", "from"], ["f-to", "to"]];
// The page's shape, in the URL only when it is not the default.
const CHOICES = [["f-order", "order", "desc"], ["f-limit", "limit", "50"]];

// Records the view: a new history entry (`push`) or the current one replaced.
export function writeURL(org, view, { push = false, entry = null } = {}) {
  const p = new URLSearchParams();
  p.set("org", org);
  // Times as instants (UTC), so that a link means the same window in every zone.
  for (const [id, name] of TIMES) {
    const t = fieldTime($(id).value);
    if (t) p.set(name, t);
  }
  for (const [id, name] of FIELDS) {
    const v = $(id).value.trim();
    if (v) p.set(name, v);
  }
  for (const [id, name, otherwise] of CHOICES) if ($(id).value !== otherwise) p.set(name, $(id).value);
  if (view.cursor !== null) p.set("cursor", view.cursor);
  if (entry !== null) p.set("entry", String(entry));
  const url = `${location.pathname}?${p}`;
  const state = { cursors: view.cursors };
  if (push && url !== location.pathname + location.search) history.pushState(state, "", url);
  else history.replaceState(state, "", url);
}

// Puts the filters `p` (URL parameters: times as UTC instants) in the form.
export function fillForm(p) {
  for (const [id, name] of TIMES) $(id).value = fieldValue(p.get(name));
  for (const [id, name] of FIELDS) $(id).value = p.get(name) || "";
}

// Puts the URL's filters in the form and returns its cursor, the cursors of the newer pages
// (when this history entry kept them) and the entry to open; nothing when it names another org.
export function readURL(org) {
  const p = new URLSearchParams(location.search);
  if (p.get("org") !== org) return null;
  fillForm(p);
  for (const [id, name, otherwise] of CHOICES) {
    $(id).value = p.get(name) || otherwise;
    // A value the list does not offer leaves a select empty: the default then.
    if ($(id).value === "") $(id).value = otherwise;
  }
  const entry = p.get("entry");
  return {
    cursor: p.get("cursor"),
    cursors: Array.isArray(history.state?.cursors) ? history.state.cursors : [],
    entry: entry !== null && /^[0-9]{1,20}$/.test(entry) ? Number(entry) : null,
  };
}
