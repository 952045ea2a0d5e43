// DOM helpers: elements built with their text as text, never as HTML.
const SVG = "http://www.w3.org/2000/svg";

export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "data") Object.assign(e.dataset, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// Characters that change how the text around them looks without being seen: bidirectional
// controls (U+202A–U+202E, U+2066–U+2069, marks), zero-width and other invisible ones, and
// control characters. "usr_\u202Enimda" would otherwise display as "usr_admin".
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]/g;

// `s` as it may be shown: every such character written as a visible escape (\u202E).
export function shown(s) {
  return String(s ?? "").replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`);
}
