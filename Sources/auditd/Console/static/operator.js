// The operator's overview: size, checkpoint, verification, health and why, ingest rate and
// acknowledgement latency (from /metrics), replication and witness lag, segments, archive,
// holds, tokens. Refreshed by hand or every 10 s while it is shown.
import { api } from "./api.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const EVERY = 10000;
// Recent /metrics samples (the last minute's), so that rates cover up to a minute of traffic.
const WINDOW = 60000;
let samples = [];
let timer = null;

function card(k, v, state) {
  return el("div", { class: "card" }, el("div", { class: "k", textContent: k }), el("div", { class: `v ${state || ""}`, textContent: String(v) }));
}

function ago(iso) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t)) return "never";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

// Prometheus text: each sample's value by its name with labels (`name{le="0.005"}`).
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    const v = Number(line.slice(i + 1));
    if (i > 0 && !Number.isNaN(v)) m.set(line.slice(0, i), v);
  }
  return m;
}

// The bucket bound under which `q` of a histogram's observations fall, between two samples
// (or since the start): "≤ 5 ms". Null when nothing was observed.
export function quantile(now, then, name, q) {
  const buckets = [];
  for (const [k, v] of now) {
    const le = k.startsWith(`${name}_bucket{le="`) ? k.slice(name.length + 12, -2) : null;
    if (le !== null) buckets.push([le === "+Inf" ? Infinity : Number(le), v - (then?.get(k) ?? 0)]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const bound = buckets.find(([, n]) => n >= q * total)?.[0];
  return bound === Infinity ? `> ${buckets.at(-2)?.[0] * 1000} ms` : `≤ ${bound * 1000} ms`;
}

async function sample() {
  try {
    const r = await fetch("/metrics", { cache: "no-store" });
    return { at: Date.now(), m: parseMetrics(await r.text()) };
  } catch {
    return null;
  }
}

function traffic(now) {
  if (!now) return [card("Ingest", "metrics unavailable", "bad")];
  samples = [...samples.filter((x) => now.at - x.at <= WINDOW), now];
  const then = samples.length > 1 ? samples[0] : null;
  const over = then ? `over the last ${Math.round((now.at - then.at) / 1000)} s` : "since the daemon started";
  const entries = now.m.get("auditd_entries_ingested_total") ?? 0;
  const rate = then ? `${Math.round((entries - (then.m.get("auditd_entries_ingested_total") ?? 0)) / ((now.at - then.at) / 1000))} entries/s` : `${entries} entries`;
  const p50 = quantile(now.m, then?.m, "auditd_ack_latency_seconds", 0.5);
  const p99 = quantile(now.m, then?.m, "auditd_ack_latency_seconds", 0.99);
  const rejected = [...now.m].filter(([k]) => k.startsWith("auditd_rejected_total")).reduce((n, [, v]) => n + v, 0);
  return [
    card(`Ingest ${over}`, rate),
    card(`Ack latency ${over}`, p50 === null ? "no acknowledgements" : `p50 ${p50}, p99 ${p99}`),
    card("Rejected entries (since start)", rejected, rejected > 0 ? "bad" : ""),
  ];
}

export async function showOperator() {
  const [s, health, tokens, now] = await Promise.all([
    api("/v1/operator/status"),
    fetch("/healthz", { cache: "no-store" }).then((r) => r.json()).catch(() => null),
    api("/v1/operator/tokens"),
    sample(),
  ]);
  const seg = s.segments.by_state || {};
  const cp = s.checkpoint;
  const reason = health ? ["verification", "writes", "witnesses", "replication_failing", "archive"].map((k) => health[k] && typeof health[k] === "string" ? `${k}: ${health[k]}` : null).filter(Boolean).join("; ") : "";
  const cards = [
    card("Log size", `${s.size} entries`),
    card("Latest checkpoint", cp.size === undefined ? "none yet" : `size ${cp.size}${cp.signed_at ? `, signed ${ago(cp.signed_at)}` : ""}, ${cp.entries_behind > 0 ? `${cp.entries_behind} entries not yet covered` : "covers every entry"}`, cp.entries_behind > 1000 ? "bad" : ""),
    card("Verification", s.verification.status === "ok" ? `ok · ${s.verification.verified_entries} checked · last pass ${ago(s.verification.last_pass)}` : `FAILING: ${s.verification.failure}`, s.verification.status === "ok" ? "ok" : "bad"),
    card("Health", health ? `${health.status}${reason ? ` (${reason})` : ""}` : "unknown", health && health.status === "ok" ? "ok" : "bad"),
    card("Writes", s.writes, s.writes.startsWith("accepting") ? "ok" : "bad"),
    ...traffic(now),
    card("Segments", `${s.segments.total} (${Object.entries(seg).map(([k, v]) => `${v} ${k}`).join(", ") || "none"})`),
    card("Hot / archived entries", `${s.segments.hot_entries} / ${s.segments.archived_entries}`),
    card("Archive", `${s.archive.bundles} bundles · last run ${ago(s.archive.last_run)}${s.archive.last_result ? ` (${s.archive.last_result})` : ""}`, s.archive.last_result?.startsWith("failed") ? "bad" : ""),
    card("Active legal holds", s.holds.length),
  ];
  if (s.replication) {
    const r = s.replication;
    cards.push(card("Replication lag", `${r.lag_entries ?? 0} entries, ${r.lag_bytes ?? 0} bytes, ${r.lag_seconds ?? 0} s${r.failing ? ` · FAILING: ${r.failing}` : ""}`, r.failing ? "bad" : "ok"));
  }
  if (s.witnesses) {
    const w = s.witnesses;
    const lag = typeof w.cosigned_size === "number" && cp.size !== undefined ? cp.size - w.cosigned_size : null;
    cards.push(card("Witnesses", w.failing ? `failing: ${w.failing}` : `quorum ${w.quorum}, cosigned size ${w.cosigned_size ?? "none yet"}${lag ? `, ${lag} entries behind` : ""}`, w.failing ? "bad" : "ok"));
  }
  $("cards").replaceChildren(...cards);
  $("op-refreshed").textContent = `Refreshed ${new Date().toLocaleTimeString()}; again every ${EVERY / 1000} s while shown.`;
  const body = $("holds").tBodies[0];
  body.replaceChildren(...(s.holds.length === 0
    ? [el("tr", {}, el("td", { colSpan: 7, class: "sub", textContent: "No active holds." }))]
    : s.holds.map((h) => el("tr", {}, ...[h.id, h.org, h.from || "—", h.to || "—", h.reason, h.authority, h.created_at].map((v) => el("td", { textContent: v }))))));
  $("tokens").tBodies[0].replaceChildren(...tokens.tokens.map((t) => {
    const state = t.state === "revoked" ? `revoked ${t.revoked_at}` : t.state === "refused" ? "REFUSED: no audit entry backs it (see the daemon's log)" : t.state;
    return el("tr", {}, ...[t.id, t.scope, t.label || "—", t.created_at, t.expires_at || "never", state].map((v) => el("td", { textContent: v })));
  }));
  $("op-checkpoint").textContent = cp.note || "No checkpoint has been signed yet.";
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!$("operator").hidden) showOperator().catch(() => {});
  }, EVERY);
}
