// Personal fields (format-spec.md §5.4): an entry's signed bytes hold commitments
// {"$c","$s"} where personal values were; the answer carries, beside them, `personal`: each
// value with the nonce that opens its commitment, or the erasure record that forgot it. The
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
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).sort().join() === "$c,$s";
}

// The committed fields of a parsed entry: [path, commitment hex, subject tag hex].
export function commitments(entry) {
  const out = [];
  for (const top of PARTIES) {
    for (const [k, v] of Object.entries(entry?.[top] || {})) if (isCommitment(v)) out.push([`${top}.${k}`, v.$c, v.$s]);
  }
  return out;
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
  for (const [path, c, tag] of committed) {
    const f = shownFor[path];
    if (f && typeof f.value === "string" && typeof f.nonce === "string") {
      const nonce = unhex(f.nonce, `the nonce of ${path}`);
      if (nonce.length !== 16 || base64url(await sha256(new Uint8Array([0]), nonce, utf8.encode(f.value))) !== c) {
        throw new ProofError(`the value shown for ${path} does not open its commitment: it was changed`);
      }
    } else if (f?.erased && Number.isSafeInteger(f.erased.entry)) {
      erasures.push({ path, tag, entry: f.erased.entry, authority: String(f.erased.authority ?? "") });
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
