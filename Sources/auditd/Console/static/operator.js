// The operator's overview: size, checkpoint, verification, segments, archive, holds.
import { api } from "./api.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);


function card(k, v, state) {
  return el("div", { class: "card" }, el("div", { class: "k", textContent: k }), el("div", { class: `v ${state || ""}`, textContent: String(v) }));
}

export async function showOperator() {
  const s = await api("/v1/operator/status");
  let health = null;
  try {
    const r = await fetch("/healthz", { cache: "no-store" });
    health = await r.json();
  } catch {}
  const seg = s.segments.by_state || {};
  const cards = [
    card("Log size", `${s.size} entries`),
    card("Latest checkpoint", s.checkpoint.size === undefined ? "none yet" : `size ${s.checkpoint.size}`),
    card("Verification", s.verification.status === "ok" ? `ok · ${s.verification.verified_entries} checked` : `FAILING: ${s.verification.failure}`, s.verification.status === "ok" ? "ok" : "bad"),
    card("Health", health ? health.status : "unknown", health && health.status === "ok" ? "ok" : "bad"),
    card("Writes", s.writes, s.writes.startsWith("accepting") ? "ok" : "bad"),
    card("Segments", `${s.segments.total} (${Object.entries(seg).map(([k, v]) => `${v} ${k}`).join(", ") || "none"})`),
    card("Hot / archived entries", `${s.segments.hot_entries} / ${s.segments.archived_entries}`),
    card("Archive bundles", s.archive.bundles),
    card("Active legal holds", s.holds.length),
  ];
  if (s.witnesses) cards.push(card("Witnesses", s.witnesses.failing ? `failing: ${s.witnesses.failing}` : `quorum ${s.witnesses.quorum}, cosigned size ${s.witnesses.cosigned_size}`, s.witnesses.failing ? "bad" : "ok"));
  $("cards").replaceChildren(...cards);
  const body = $("holds").tBodies[0];
  body.replaceChildren(...(s.holds.length === 0
    ? [el("tr", {}, el("td", { colSpan: 7, class: "sub", textContent: "No active holds." }))]
    : s.holds.map((h) => el("tr", {}, ...[h.id, h.org, h.from || "—", h.to || "—", h.reason, h.authority, h.created_at].map((v) => el("td", { textContent: v }))))));
  $("op-checkpoint").textContent = s.checkpoint.note || "No checkpoint has been signed yet.";
}
