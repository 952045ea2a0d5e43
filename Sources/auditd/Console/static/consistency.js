// Rollback and split-view detection in every browser: per pinned log key, this browser keeps
// the newest checkpoint it verified (the signed note itself, in local storage). Every
// checkpoint the server shows afterwards must extend it, by an RFC 9162 consistency proof
// checked here against the roots of the two signed notes, never the server's word for them.
// A smaller newest tree, another root at the same size or a proof that fails means the log was
// rolled back or forked: the page says so, nothing is shown as verified, and the two notes,
// both signed by the log's key, are offered as evidence anyone can check.
import { api } from "./api.js";
import { hex, openCheckpoint, ProofError, sha256, unhex } from "./proof.js";

const KEPT = "auditlog.kept-checkpoint";
const $ = (id) => document.getElementById(id);

// Once caught, the log stays caught for this page: its reason and the two notes.
const state = { fork: null, trusted: new Map() };

export class ForkError extends ProofError {}

// Starts again for a new sign-in (another key may be pinned).
export function resetConsistency() {
  state.trusted = new Map();
}

// RFC 9162 §2.1.4.2: true when `proof` shows a tree of `size1` with root `root1` is a prefix
// of a tree of `size2` with root `root2`.
export async function consistent(size1, size2, root1, root2, proof) {
  const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && eq(root1, root2);
  if (size1 === 0n) return proof.length === 0;
  const node = new Uint8Array([0x01]);
  let path = proof;
  // A first tree whose size is a power of two is a node of the second: its root starts the path.
  if ((size1 & (size1 - 1n)) === 0n) path = [root1, ...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await sha256(node, c, fr);
      sr = await sha256(node, c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await sha256(node, sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && eq(fr, root1) && eq(sr, root2);
}

function caught(reason, kept, shown) {
  if (!state.fork) {
    state.fork = { reason, kept, shown };
    const evidence = [
      "Two checkpoints signed by the same log key that cannot both be true.",
      `Why: ${reason}`,
      `Seen at ${new Date().toISOString()} on ${location.origin}.`,
      "Check each signature with the log's verifier key; a log that only grows can never have signed both.",
      "",
      "--- the checkpoint this browser verified before ---",
      kept.trimEnd(),
      "",
      "--- the checkpoint the server showed now ---",
      shown.trimEnd(),
      "",
    ].join("\n");
    const link = $("fork-evidence");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([evidence], { type: "text/plain" }));
    $("fork-why").textContent = reason;
    $("fork-notes").textContent = evidence;
    $("fork").hidden = false;
  }
  throw new ForkError(`this log was rolled back or forked: ${state.fork.reason}`);
}

// Throws unless the checkpoint `note` (signed by `vkey`) is consistent with the one this
// browser kept; keeps it when it is the larger. `head`: the server's newest, which must not
// be smaller than the kept one. Fails closed: a proof that cannot be had is not a pass.
export async function trust(note, vkey, { head = false } = {}) {
  if (state.fork) throw new ForkError(`this log was rolled back or forked: ${state.fork.reason}`);
  const done = state.trusted.get(note);
  if (done && !head) return done;
  const shown = await openCheckpoint(note, vkey);
  const slot = `${KEPT}:${vkey.text}`;
  const keptNote = localStorage.getItem(slot);
  let kept = null;
  if (keptNote) {
    try {
      kept = await openCheckpoint(keptNote, vkey);
    } catch {
      // Not a note of this key (storage edited by hand): it proves nothing, so it is replaced.
    }
  }
  if (kept === null) {
    localStorage.setItem(slot, note);
  } else if (shown.size === kept.size) {
    if (hex(shown.root) !== hex(kept.root)) {
      caught(`two checkpoints of ${shown.size} entries with different roots: the log was forked`, keptNote, note);
    }
  } else if (head && shown.size < kept.size) {
    caught(`the server's newest checkpoint holds ${shown.size} entries, but this browser verified one of ${kept.size} before: the log was rolled back`, keptNote, note);
  } else {
    const [small, big] = shown.size < kept.size ? [shown, kept] : [kept, shown];
    let answer;
    try {
      answer = await api(`/v1/proofs/consistency?old=${small.size}&new=${big.size}`);
    } catch (e) {
      throw new ProofError(`cannot check that this log extends the checkpoint of ${kept.size} entries this browser verified before (${e.message}); nothing is shown as verified until it can`);
    }
    const proof = Array.isArray(answer.proof) ? answer.proof.map((p) => unhex(p, "a consistency proof hash")) : null;
    if (proof === null || proof.some((p) => p.length !== 32) || !(await consistent(small.size, big.size, small.root, big.root, proof))) {
      caught(`the checkpoint of ${shown.size} entries does not extend the one of ${kept.size} this browser verified before (the consistency proof fails): the log was forked or rewritten`, keptNote, note);
    }
    if (shown.size > kept.size) localStorage.setItem(slot, note);
  }
  const result = { size: shown.size };
  state.trusted.set(note, result);
  return result;
}

// The server's newest checkpoint, checked against the kept one (each visit and refresh).
export async function checkHead(vkey) {
  let note;
  try {
    note = await api("/v1/checkpoint", { text: true });
  } catch (e) {
    if (e.status !== 404) throw e;
    const keptNote = localStorage.getItem(`${KEPT}:${vkey.text}`);
    // An empty log never seen larger: nothing to extend yet.
    if (keptNote === null) return null;
    caught("the server shows no checkpoint at all, but this browser verified one before: the log was rolled back", keptNote, "(none: the server answered that it has no checkpoint)\n");
  }
  return trust(note, vkey, { head: true });
}
