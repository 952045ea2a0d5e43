// Checks, in the browser, that an entry is in the log signed by the pinned key
// (format-spec.md §5.3 link and hash, §6 RFC 9162 tree, §8 signed notes). Nothing here trusts
// the server: the content bytes are hashed as received, the proof is recomputed, and the
// checkpoint's Ed25519 signature is checked against the key this browser pinned.

const utf8 = new TextEncoder();

export class ProofError extends Error {}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function unhex(s, what) {
  if (typeof s !== "string" || !/^(?:[0-9a-f]{2})*$/.test(s)) throw new ProofError(`${what} is not hex`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function unbase64(s, what) {
  let bin;
  try {
    bin = atob(s);
  } catch {
    throw new ProofError(`${what} is not base64`);
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function u64be(bytes, at) {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(bytes[at + i]);
  return v;
}

// A verifier key, `name+hex8(keyHash)+base64(0x01 || publicKey)` (§8), ready for WebCrypto.
export async function parseVerifierKey(text) {
  const t = (text || "").trim();
  const i = t.indexOf("+");
  const j = t.indexOf("+", i + 1);
  if (i <= 0 || j < 0) throw new ProofError("a verifier key looks like origin+1a2b3c4d+AbCd…= (auditd prints it when it starts)");
  const name = t.slice(0, i);
  const id = t.slice(i + 1, j);
  const raw = unbase64(t.slice(j + 1), "the key");
  if (raw.length !== 33 || raw[0] !== 1) throw new ProofError("this is not an Ed25519 verifier key");
  const pub = raw.slice(1);
  const keyHash = (await sha256(utf8.encode(name), new Uint8Array([0x0a, 0x01]), pub)).slice(0, 4);
  if (hex(keyHash) !== id) throw new ProofError("the key's id does not match the key (is it copied whole?)");
  let key;
  try {
    key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    throw new ProofError(`this browser cannot check Ed25519 signatures (${e.message})`);
  }
  return { name, keyHash, key, text: t };
}

// Whether signed note `note` (text `text`) carries a valid signature by `k`.
async function signedBy(note, text, k) {
  const end = note.indexOf("\n\n");
  for (const line of note.slice(end + 2).split("\n")) {
    if (!line.startsWith("\u2014 ")) continue;
    const space = line.lastIndexOf(" ");
    if (line.slice(2, space) !== k.name) continue;
    const sig = unbase64(line.slice(space + 1), "a signature");
    if (sig.length !== 68 || !equal(sig.slice(0, 4), k.keyHash)) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, k.key, sig.slice(4), utf8.encode(text))) return true;
  }
  return false;
}

// The keys in force over the log's life (§8.8), from the pinned key through each key
// succession, which must be signed by the key it replaces and by the new one:
// [{ k, from, to }] (sizes as BigInt; `to` null for the key in force now).
export async function followSuccessions(vkey, notes) {
  const chain = [{ k: vkey, from: 0n, to: null }];
  let reached = false;
  for (const note of notes || []) {
    const end = note.indexOf("\n\n");
    if (end < 0) throw new ProofError("a key succession is not a signed note");
    const text = note.slice(0, end + 1);
    const l = text.split("\n");
    if (l.length !== 7 || l[0] !== "auditlog key succession/1" || !/^[1-9][0-9]*$/.test(l[4]) || !/^[1-9][0-9]*$/.test(l[5])) {
      throw new ProofError("a key succession is malformed");
    }
    if (!reached) {
      reached = l[2] === vkey.text || l[3] === vkey.text;
      if (l[2] !== vkey.text) continue;
    }
    const cur = chain[chain.length - 1];
    if (l[2] !== cur.k.text) throw new ProofError("a key succession is not signed by the key it replaces: refused");
    const next = await parseVerifierKey(l[3]);
    const from = BigInt(l[4]);
    const to = BigInt(l[5]);
    if (next.name !== vkey.name || to < from || (chain.length > 1 && from <= cur.from)) {
      throw new ProofError("a key succession names keys or sizes it may not");
    }
    if (!(await signedBy(note, text, cur.k)) || !(await signedBy(note, text, next))) {
      throw new ProofError("a key succession is not signed by both the key it replaces and the new key: refused");
    }
    cur.to = to;
    chain.push({ k: next, from, to: null });
  }
  return chain;
}

// A checkpoint note signed by `vkey` (or a key it was handed on to, in force at the
// checkpoint's size: `vkey.chain`): its size and root. Throws unless such a key signed it.
export async function openCheckpoint(note, vkey) {
  const end = note.indexOf("\n\n");
  if (end < 0) throw new ProofError("the checkpoint is not a signed note");
  const text = note.slice(0, end + 1);
  const lines = text.split("\n");
  if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) throw new ProofError("the checkpoint's body is malformed");
  if (lines[0] !== vkey.name) throw new ProofError(`the checkpoint is for log "${lines[0]}", the pinned key for "${vkey.name}"`);
  const root = unbase64(lines[2], "the checkpoint's root");
  if (root.length !== 32) throw new ProofError("the checkpoint's root is not a SHA-256 hash");
  const size = BigInt(lines[1]);
  const chain = vkey.chain || [{ k: vkey, from: 0n, to: null }];
  for (const { k, from, to } of [...chain].reverse()) {
    if (size < from || (to !== null && size > to)) continue;
    if (await signedBy(note, text, k)) return { size, root };
  }
  throw new ProofError(
    chain.length > 1
      ? "the checkpoint carries no valid signature by the pinned key or a key it was handed on to (in force at its size); sign in again if the log's key was rotated since"
      : "the checkpoint carries no valid signature by the pinned key; sign in again if the log's key was rotated since");
}

// RFC 9162 §2.1.3.2: the root that `proof` leads to from leaf `index` of a tree of `size`.
export async function rootFromInclusion(index, size, leaf, proof) {
  if (index >= size) throw new ProofError("the entry is not inside the checkpoint's tree");
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  const node = new Uint8Array([0x01]);
  for (const p of proof) {
    if (sn === 0n) throw new ProofError("the inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(node, p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await sha256(node, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("the inclusion proof is too short");
  return r;
}

// The raw text of member `name` of the JSON object starting at `text[at]`, as [start, end].
// Entries are hashed as the bytes the server sent, so they are cut out, never re-serialised.
// An object naming a member twice is refused: JSON.parse keeps the last, this would find the
// first, and what is shown must be what was checked.
export function memberSpan(text, at, name) {
  let found = null;
  for (const [key, start, end] of members(text, at)) if (key === name) found = [start, end];
  if (!found) throw new ProofError(`the response has no "${name}"`);
  return found;
}

// Each member of the JSON object at `text[at]` as [name, start, end]; a name seen twice throws.
function members(text, at) {
  const out = [];
  const seen = new Set();
  let i = skip(text, at);
  if (text[i] !== "{") throw new ProofError("the response is not a JSON object");
  i = skip(text, i + 1);
  while (text[i] !== "}") {
    const keyEnd = valueEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd));
    if (seen.has(key)) throw new ProofError(`the JSON names "${key}" twice: what is shown could differ from what is checked`);
    seen.add(key);
    i = skip(text, keyEnd);
    if (text[i] !== ":") throw new ProofError("malformed JSON");
    const start = skip(text, i + 1);
    const end = valueEnd(text, start);
    out.push([key, start, end]);
    i = skip(text, end);
    if (text[i] === ",") i = skip(text, i + 1);
  }
  return out;
}

// Throws if any object inside the JSON value at `text[at]` names a member twice.
export function noDuplicateMembers(text, at) {
  const i = skip(text, at);
  if (text[i] === "{") for (const [, start] of members(text, i)) noDuplicateMembers(text, start);
  else if (text[i] === "[") for (const [start] of elementSpans(text, i)) noDuplicateMembers(text, start);
}

// The [start, end] of each element of the JSON array starting at `text[at]`.
export function elementSpans(text, at) {
  const out = [];
  let i = skip(text, at);
  if (text[i] !== "[") throw new ProofError("expected a JSON array");
  i = skip(text, i + 1);
  while (text[i] !== "]") {
    const end = valueEnd(text, i);
    out.push([i, end]);
    i = skip(text, end);
    if (text[i] === ",") i = skip(text, i + 1);
  }
  return out;
}

function skip(text, i) {
  while (i < text.length && " \t\r\n".includes(text[i])) i++;
  if (i >= text.length) throw new ProofError("the response ends too soon");
  return i;
}

function valueEnd(text, i) {
  const c = text[i];
  if (c === '"') {
    for (i++; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    throw new ProofError("unterminated string");
  }
  if (c === "{" || c === "[") {
    let depth = 0;
    for (; i < text.length; i++) {
      const d = text[i];
      if (d === '"') i = valueEnd(text, i) - 1;
      else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw new ProofError("unterminated JSON value");
  }
  while (i < text.length && !",}] \t\r\n".includes(text[i])) i++;
  return i;
}

// Checks the answer of GET /v1/orgs/ORG/entries/SEQ (its text, exactly as received):
// the content hashes to the link's content hash, the link names this seq, the leaf hash is
// H(0x00 || link), the inclusion proof leads to the checkpoint's root, the pinned key signed
// the checkpoint, and the entry belongs to `org`. `listed`, the entry's raw text in the page
// the person sees, must be the same bytes. An entry an erasure withholds (§5.4.3) has no
// content: its link and proof are checked, and `withheld` names the record the caller must
// check. Returns the steps checked; throws a ProofError.
export async function verifyEntry(text, { vkey, org, seq, listed, checkpoints, verifiedSize = 0n }) {
  noDuplicateMembers(text, 0);
  const body = JSON.parse(text);
  const hidden = body.entry === undefined && body.withheld !== undefined;
  let entry = null;
  let raw = null;
  if (hidden) {
    if (listed !== undefined && listed !== null) throw new ProofError("the page shows content for an entry the server withholds");
  } else {
    const [cs, ce] = memberSpan(text, 0, "entry");
    raw = text.slice(cs, ce);
    if (listed !== undefined && listed !== raw) throw new ProofError("the entry on the page differs from the entry proven");
    entry = JSON.parse(raw);
    if (entry.org !== org) throw new ProofError(`the entry belongs to another org (${entry.org})`);
  }
  if (body.seq !== seq) throw new ProofError(`asked for entry ${seq}, got ${body.seq}`);
  const link = unhex(body.link, "the link");
  if (link.length !== 113 || link[0] !== 1) throw new ProofError("the link is not a version-1 link of 113 bytes");
  if (u64be(link, 1) !== BigInt(seq)) throw new ProofError("the link names another sequence number");
  if (u64be(link, 9) !== BigInt(body.org_seq)) throw new ProofError("the link names another position in the org's chain");
  const contentHash = hidden ? link.slice(17, 49) : await sha256(utf8.encode(raw));
  if (!equal(contentHash, link.slice(17, 49))) throw new ProofError("the content does not hash to the link's content hash: it was changed");
  const leaf = await sha256(new Uint8Array([0x00]), link);
  if (hex(leaf) !== body.hash) throw new ProofError("the entry hash is not H(0x00 || link)");
  const orgSeq = u64be(link, 9);
  if (body.checkpoint_pending) {
    // A tree of this size was verified already: it holds this entry, so "not yet" is a lie.
    if (BigInt(seq) < verifiedSize) throw new ProofError(`the server says no checkpoint covers entry ${seq} yet, but a signed tree of ${verifiedSize} entries was verified`);
    return { pending: true, entry, withheld: hidden ? body.withheld : undefined, orgSeq, hash: hex(leaf), prevOrgHash: hex(link.slice(81, 113)), steps: ["content hash", "link", "leaf hash"] };
  }
  if (typeof body.checkpoint !== "string" || !Array.isArray(body.proof)) throw new ProofError("the answer carries no proof");
  // Opened checkpoints are remembered per key: a note checked with one key proves nothing
  // under another.
  const cacheKey = `${vkey.text}\n${body.checkpoint}`;
  let opened = checkpoints.get(cacheKey);
  if (!opened) {
    opened = openCheckpoint(body.checkpoint, vkey);
    checkpoints.set(cacheKey, opened);
  }
  const cp = await opened;
  if (BigInt(body.tree_size) !== cp.size) throw new ProofError("the proof is for another tree size than the checkpoint's");
  const proof = body.proof.map((p) => unhex(p, "a proof hash"));
  if (proof.some((p) => p.length !== 32)) throw new ProofError("a proof hash is not 32 bytes");
  const root = await rootFromInclusion(BigInt(seq), cp.size, leaf, proof);
  if (!equal(root, cp.root)) throw new ProofError("the inclusion proof does not lead to the signed root");
  return {
    pending: false,
    entry,
    withheld: hidden ? body.withheld : undefined,
    orgSeq,
    hash: hex(leaf),
    prevOrgHash: hex(link.slice(81, 113)),
    treeSize: cp.size,
    steps: [
      hidden
        ? `content withheld (not shown, not checked); the link commits to it: content hash ${hex(contentHash).slice(0, 16)}…`
        : `SHA-256 of the content = link's content hash ${hex(contentHash).slice(0, 16)}…`,
      `leaf hash H(0x00 || link) = ${body.hash.slice(0, 16)}…`,
      `inclusion proof (${proof.length} hashes) leads to the root of tree size ${cp.size}`,
      `checkpoint signed by the pinned key ${vkey.name}+${hex(vkey.keyHash)}`,
    ],
  };
}
