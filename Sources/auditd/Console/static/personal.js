// Personal fields (format-spec.md §5.4): an entry's signed bytes hold commitments
// {"$c","$s"} where personal values were (one per subject: its other fields {"$s"}); the
// answer carries, beside them, `personal`: each value with the nonce that opens its
// subject's commitment, or the erasure record that forgot it. The
// browser checks each opening itself, and each erasure record against the log; only then does
// it show the value, or "ERASED (entry N, authority …)".
import { ProofError, hex, sha256, unhex } from "./proof.js";

const utf8 = new TextEncoder();
const PARTIES = ["actor", "metadata", "on_behalf_of", "source", "target"];

// RFC 4648 §5 without padding: how entries write commitments (§5.4.1).
function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function isCommitment(v) {
  const keys = v !== null && typeof v === "object" && !Array.isArray(v) ? Object.keys(v).sort().join() : "";
  return keys === "$c,$s" || keys === "$s";
}

// Path order (§5.4.1): the paths' UTF-8 bytes compared as bytes.
function byPath([a], [b]) {
  const x = utf8.encode(a), y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// The committed fields of a parsed entry, in path order: [path, commitment (base64url, or
// undefined where another field of the subject holds it), subject tag].
export function commitments(entry) {
  const out = [];
  for (const top of PARTIES) {
    for (const [k, v] of Object.entries(entry?.[top] || {})) if (isCommitment(v)) out.push([`${top}.${k}`, v.$c, v.$s]);
  }
  return out.sort(byPath);
}

// §5.4.1: the groups [{c, tag, paths}]: a subject's fields are each {"$c","$s"} (a group of
// one each), or one {"$c","$s"}, first in path order, and the rest {"$s"}.
function groups(committed) {
  const out = [], last = new Map(), heads = new Map();
  for (const [path, c, tag] of committed) {
    if (c !== undefined) {
      if (last.has(tag) && out[last.get(tag)].paths.length > 1) throw new ProofError(`${path} is a second commitment of a subject whose fields one commitment covers`);
      heads.set(tag, (heads.get(tag) ?? 0) + 1);
      last.set(tag, out.length);
      out.push({ c, tag, paths: [path] });
    } else if (heads.get(tag) === 1) {
      out[last.get(tag)].paths.push(path);
    } else {
      throw new ProofError(`${path} names no single commitment of its subject before it`);
    }
  }
  return out;
}

// A group's commitment: H(0x00 || nonce || v) for one field, else
// H(0x02 || nonce || (pathLen:u8 path valueLen:u16le v)*) in path order.
async function opening(nonce, paths, values) {
  if (paths.length === 1) return sha256(new Uint8Array([0]), nonce, utf8.encode(values[0]));
  const parts = [new Uint8Array([2]), nonce];
  for (let i = 0; i < paths.length; i++) {
    const p = utf8.encode(paths[i]), v = utf8.encode(values[i]);
    if (p.length > 255 || v.length > 65535) return null;
    parts.push(new Uint8Array([p.length]), p, new Uint8Array([v.length & 0xff, v.length >> 8]), v);
  }
  return sha256(...parts);
}

// Checks `personal` against the entry's commitments: every value opens its commitment, and
// every field is opened, erased or withheld; nothing is claimed for a field held in the clear.
// Returns the claimed erasures [{path, tag, entry, authority}] for the caller to check.
export async function checkOpenings(entry, personal) {
  const committed = commitments(entry);
  const shownFor = personal && typeof personal === "object" ? personal : {};
  for (const path of Object.keys(shownFor)) {
    if (!committed.some(([p]) => p === path)) throw new ProofError(`a personal value is claimed for ${path}, which the signed entry does not commit to`);
  }
  const erasures = [];
  for (const { c, tag, paths } of groups(committed)) {
    const fs = paths.map((p) => shownFor[p]);
    const nonces = new Set(fs.map((f) => f?.nonce));
    const records = new Set(fs.map((f) => f?.erased?.entry));
    // One commitment covers the group: shown values must open it together, and erased fields
    // must all be erased by one record; anything shown in part is refused, never shown.
    if (fs.some((f) => f?.nonce !== undefined || f?.value !== undefined)) {
      if (nonces.size !== 1 || typeof fs[0]?.nonce !== "string" || !fs.every((f) => typeof f.value === "string")) {
        throw new ProofError(`${paths.join(", ")} share one commitment but are not all shown with one nonce`);
      }
      const nonce = unhex(fs[0].nonce, `the nonce of ${paths[0]}`);
      const digest = nonce.length === 16 ? await opening(nonce, paths, fs.map((f) => f.value)) : null;
      if (digest === null || base64url(digest) !== c) {
        throw new ProofError(`the value shown for ${paths.join(", ")} does not open its commitment: it was changed`);
      }
    } else if (fs.some((f) => f?.erased !== undefined)) {
      if (records.size !== 1 || !Number.isSafeInteger(fs[0]?.erased?.entry)) {
        throw new ProofError(`${paths.join(", ")} share one commitment but are not all erased by one record`);
      }
      for (const [i, path] of paths.entries()) erasures.push({ path, tag, entry: fs[i].erased.entry, authority: String(fs[i].erased.authority ?? "") });
    }
  }
  return erasures;
}

// An erasure record proven in the log must be this org's data_subject.erased of `tag`, after
// the entry, by the authority claimed.
export function checkErasureRecord(record, claim, seq) {
  const ok = record?.category === "privacy" && record?.action === "data_subject.erased" &&
    record?.target?.id === claim.tag && record?.metadata?.subject_tag === claim.tag &&
    record?.metadata?.authority === claim.authority && claim.entry > seq;
  if (!ok) throw new ProofError(`${claim.path} is shown as erased by entry ${claim.entry}, which is not the erasure of its subject`);
}

// An entry withheld (§5.4.3: it names an erased subject in the clear) must be listed by its
// record: a proven data_subject.erased of this org, after it, by the authority claimed, whose
// signed withheld_sha256 is the SHA-256 of the list the server gives (seqs in decimal, joined
// by commas), and the list holds it.
export async function checkWithheldRecord(record, withholds, claim, seq, org) {
  const list = Array.isArray(withholds) ? withholds.filter(Number.isSafeInteger) : [];
  const ok = record?.org === org && record?.category === "privacy" && record?.action === "data_subject.erased" &&
    record?.metadata?.authority === claim.authority && claim.entry > seq && list.length === (withholds?.length ?? -1) &&
    list.includes(seq) && hex(await sha256(utf8.encode([...list].sort((a, b) => a - b).join(",")))) === record?.metadata?.withheld_sha256;
  if (!ok) throw new ProofError(`entry ${seq} is shown as withheld by entry ${claim.entry}, which does not withhold it: content removed without a record`);
}

// The entry as a person reads it: each committed field replaced by its value, or by what
// became of it.
export function readable(entry, personal) {
  const out = structuredClone(entry ?? {});
  for (const [path] of commitments(entry)) {
    const [top, key] = path.split(".");
    const f = personal?.[path];
    out[top][key] = typeof f?.value === "string" ? f.value
      : f?.erased ? `ERASED (entry ${f.erased.entry}, authority ${f.erased.authority})`
      : `WITHHELD${f?.withheld ? ` (${f.withheld})` : ""}`;
  }
  return out;
}
