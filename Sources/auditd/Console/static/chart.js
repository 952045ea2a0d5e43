// An org's activity chart: entries per period by category, as SVG built from text nodes.
import { api } from "./api.js";
import { el, svg } from "./dom.js";
import { showTime, zoneName } from "./time.js";

const $ = (id) => document.getElementById(id);
const CATEGORY_COLORS = {
  authentication: "#2563eb", access: "#0d9488", credentials: "#9333ea", agents: "#ea580c", billing: "#ca8a04",
  infrastructure: "#475569", monitoring: "#0891b2", files: "#65a30d", org_settings: "#db2777", privacy: "#b91c1c",
};

// The chart of `path` (the org's activity route) for the filters `p` (text search aside: the
// activity counts ignore it).
export async function loadChart(path, p) {
  const text = p.has("q");
  p.delete("q");
  p.set("buckets", "30");
  const a = await api(`${path}?${p}`);
  const W = 900, H = 120, pad = 2;
  const totals = a.counts.map((c) => c.reduce((x, y) => x + y, 0));
  const max = Math.max(1, ...totals);
  const bw = W / a.counts.length;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 16}`, width: W, height: H + 16, role: "img", "aria-label": "entries per period by category" });
  a.counts.forEach((counts, i) => {
    let y = H;
    counts.forEach((n, c) => {
      if (n === 0) return;
      const h = (n / max) * (H - 4);
      y -= h;
      const r = svg("rect", { x: i * bw + pad, y, width: Math.max(1, bw - 2 * pad), height: h, fill: CATEGORY_COLORS[a.categories[c]] || "#888" });
      const t = svg("title");
      t.textContent = `${a.categories[c]}: ${n}`;
      r.append(t);
      chart.append(r);
    });
  });
  const label = (x, text, anchor) => {
    const t = svg("text", { x, y: H + 13, "font-size": 11, fill: "#5d6b78", "text-anchor": anchor });
    t.textContent = text;
    chart.append(t);
  };
  label(0, a.from.slice(0, 10), "start");
  label(W, a.to.slice(0, 10), "end");
  label(W / 2, `${totals.reduce((x, y) => x + y, 0)} entries${a.complete ? "" : " (counted in part: narrow the range)"}${text ? " matching the filters but not the text search (not counted here)" : ""}; tallest bar ${max}`, "middle");
  const legend = el("div", { class: "legend" });
  a.categories.forEach((c, i) => {
    if (a.counts.some((row) => row[i] > 0)) {
      const sw = el("span", { class: "swatch" });
      sw.style.background = CATEGORY_COLORS[c] || "#888";
      legend.append(el("span", {}, sw, c));
    }
  });
  $("chart-body").replaceChildren(chart, legend, dataTable(a));
}

// The same counts as a table (for screen readers, and for reading exact numbers), collapsed.
function dataTable(a) {
  const used = a.categories.map((c, i) => [c, i]).filter(([, i]) => a.counts.some((row) => row[i] > 0));
  const start = Date.parse(a.from);
  const head = el("tr", {}, el("th", { scope: "col", textContent: `Period from (${zoneName()})` }),
    ...used.map(([c]) => el("th", { scope: "col", textContent: c })), el("th", { scope: "col", textContent: "total" }));
  const rows = a.counts.map((counts, i) => el("tr", {},
    el("th", { scope: "row", textContent: showTime(new Date(start + i * a.bucket_ms).toISOString()) }),
    ...used.map(([, c]) => el("td", { textContent: String(counts[c]) })),
    el("td", { textContent: String(counts.reduce((x, y) => x + y, 0)) })));
  return el("details", { class: "chart-data" }, el("summary", { textContent: "The chart's numbers as a table" }),
    el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
}
