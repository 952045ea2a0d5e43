#!/usr/bin/env python3
"""Verify an auditlog export (NDJSON or CSV) offline, written from format-spec.md alone.

    python3 scripts/verify_export.py FILE --key VERIFIER_KEY [--checkpoint NOTE_FILE]... [--require-complete]
                                     [--tsa-trust PEM_FILE]
    python3 scripts/verify_export.py --evidence PACK_DIR --key VERIFIER_KEY [--tsa-trust PEM_FILE]

Standard library only (Ed25519 verification is RFC 8032's reference algorithm), so an
auditor can read every line of it. It follows format-spec.md §8 (signed notes, checkpoints),
§5.3 (links), RFC 9162 (tree hashing, consistency proofs), §9.3 (exports, steps 1-9), §8.7
(time-stamps) and §9.5 (evidence packs), and
prints the same verdicts as `auditctl verify-export`: OK (complete), AUTHENTIC SELECTION /
NOT PROVEN COMPLETE, or FAILED. Exit status 0, 0, 1 (3 for a selection with --require-complete).
With --tsa-trust, the trailer's RFC 3161 tokens (§8.7) are checked by the openssl command
(`openssl ts -verify`), which then must be installed; exit 4 if none covers the export.
"""
import argparse
import base64
import csv
import datetime
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile

# ---------------------------------------------------------------- Ed25519 (RFC 8032 §6)
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 % P == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _add(a, b):
    A = (a[1] - a[0]) * (b[1] - b[0]) % P
    B = (a[1] + a[0]) * (b[1] + b[0]) % P
    C = 2 * a[3] * b[3] * D % P
    Dd = 2 * a[2] * b[2] % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F, G * H, F * G, E * H)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    a, r = _decompress(public), _decompress(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % L
    return _equal(_mul(s, _G), _add(r, _mul(h, a)))


# ---------------------------------------------------------------- signed notes (§8)
class Failure(Exception):
    pass


def parse_key(text):
    """A verifier key: name+hex(keyhash)+base64(0x01 || public key); the base64 may hold '+'."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise Failure("the verifier key is not name+hash+key")
    name, raw = parts[0], base64.b64decode(parts[2])
    if len(raw) != 33 or raw[0] != 1:
        raise Failure("the verifier key is not an Ed25519 key")
    key_hash = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_hash.hex() != parts[1]:
        raise Failure("the verifier key's hash does not match its name and key")
    return name, key_hash, raw[1:]


def open_note(note, key):
    """The text of a signed note whose signature by `key` verifies."""
    name, key_hash, public = key
    text, sep, sigs = note.partition("\n\n")
    if not sep:
        raise Failure("the note has no signature block")
    text += "\n"
    for line in sigs.split("\n"):
        if not line.startswith("\u2014 "):
            continue
        who, _, b64 = line[2:].rpartition(" ")
        blob = base64.b64decode(b64)
        if who == name and blob[:4] == key_hash and ed25519_verify(public, text.encode(), blob[4:]):
            return text
    raise Failure("no valid signature by the trusted key")


def follow(key, successions):
    """The keys in force over the log's life (section 8.8): [(key, first size, last size or
    None)], from the trusted key through each statement signed by the key it replaces and by
    the new one. Statements before the one replacing the trusted key are skipped."""
    chain, reached = [(key, 0, None)], False
    for note in successions:
        lines = (note.partition("\n\n")[0] + "\n").split("\n")[:-1]
        if len(lines) != 6 or lines[0] != "auditlog key succession/1":
            raise Failure("a key succession is not 'auditlog key succession/1', origin, keys, sizes")
        old, new = parse_key(lines[2]), parse_key(lines[3])
        if not (lines[4].isdigit() and lines[5].isdigit() and str(int(lines[4])) == lines[4]
                and str(int(lines[5])) == lines[5]):
            raise Failure("a key succession's sizes are not decimal numbers")
        handover, grace_end = int(lines[4]), int(lines[5])
        if old[0] != lines[1] or new[0] != lines[1] or old == new or not 0 < handover <= grace_end:
            raise Failure("a key succession names keys or sizes it may not")
        if not reached:
            reached = old == key or new == key
            if old != key:
                continue
        current, first, _ = chain[-1]
        if old != current:
            raise Failure("a key succession is not signed by the key it replaces (the key in force)")
        if len(chain) > 1 and handover <= first:
            raise Failure("a key succession does not hand over after the previous one")
        open_note(note, old)
        open_note(note, new)
        chain[-1] = (current, first, grace_end)
        chain.append((new, handover, None))
    return chain


def chain_of(keys):
    return [(keys, 0, None)] if isinstance(keys, tuple) else keys


def open_any(note, keys):
    """A note other than a checkpoint (a bundle manifest) signed by any key of the chain."""
    for k, _, _ in reversed(chain_of(keys)):
        try:
            return open_note(note, k)
        except Failure:
            pass
    raise Failure("no valid signature by the trusted key or a key it was handed on to")


def checkpoint(note, keys):
    """Origin, size and root of a checkpoint signed by a key in force at its size."""
    body = (note.partition("\n\n")[0] + "\n").split("\n")
    if len(body) < 4 or not body[1].isdigit():
        raise Failure("the checkpoint is not origin, size, root")
    size = int(body[1])
    for k, first, last in reversed(chain_of(keys)):
        if first <= size and (last is None or size <= last):
            try:
                lines = open_note(note, k).split("\n")
                return lines[0], int(lines[1]), base64.b64decode(lines[2])
            except Failure:
                pass
    raise Failure("no valid signature by the trusted key (or a key it was handed on to, in force at the checkpoint's size)")


# ---------------------------------------------------------------- RFC 9162 proofs
def node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def gap_hash(text, hex_gap):
    """A gap block's 32-byte hash, or None: canonical unpadded base64url (§9.3), or hex before /7."""
    if hex_gap:
        ok = len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
        return bytes.fromhex(text) if ok else None
    if len(text) != 43 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        return None
    raw = base64.urlsafe_b64decode(text + "=")
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None


class CompactRange:
    """The right edge of a tree built left to right: perfect subtrees of decreasing height."""

    def __init__(self):
        self.nodes, self.size = [], 0

    def append(self, height, h):
        if self.size % (1 << height):
            raise Failure(f"a subtree of height {height} cannot start at leaf {self.size}")
        self.nodes.append((height, h))
        self.size += 1 << height
        while len(self.nodes) > 1 and self.nodes[-1][0] == self.nodes[-2][0]:
            (hr, r), (hl, l) = self.nodes.pop(), self.nodes.pop()
            self.nodes.append((hl + 1, node(l, r)))

    def cover(self, blocks, end, where, hex_gap=False):
        """Step 2: the gap's subtrees, `<height>:<hash>`, must fill exactly up to leaf `end`.
        The hash is base64url without padding (43 characters); in /4 to /6 exports, 64 hex digits."""
        for b in blocks:
            height, _, text = b.partition(":")
            h = gap_hash(text, hex_gap)
            if not 0 < len(height) <= 2 or not all(c in "0123456789" for c in height) or \
                    (height[0] == "0" and height != "0") or h is None:
                raise Failure(f"{where}: gap block {b[:80]!r} is not <height>:<hash>")
            height = int(height)
            if not 0 <= height <= 62 or self.size + (1 << height) > end:
                raise Failure(f"{where}: gap block {b[:80]!r} does not fit before leaf {end}")
            self.append(height, h)
        if self.size != end:
            raise Failure(f"{where}: the gap covers leaves up to {self.size}, not up to {end}")

    def root(self):
        if not self.nodes:
            return hashlib.sha256(b"").digest()
        r = self.nodes[-1][1]
        for _, h in reversed(self.nodes[:-1]):
            r = node(h, r)
        return r


def verify_consistency(first, second, first_root, second_root, proof):
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second:
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------- personal fields (§5.4)
def commitments(entry):
    """The committed fields of an entry: path -> (C or None, S), the objects {"$c","$s"} and,
    for the other fields of a subject whose commitment one field holds, {"$s"} (§5.4.1)."""
    out = {}
    for top in ("actor", "metadata", "on_behalf_of", "source", "target"):
        for k, v in (entry.get(top) or {}).items():
            if isinstance(v, dict) and set(v) in ({"$c", "$s"}, {"$s"}):
                out[f"{top}.{k}"] = (v.get("$c"), v["$s"])
    return dict(sorted(out.items(), key=lambda kv: kv[0].encode()))


def groups(committed, where):
    """§5.4.1: [(C, S, [paths])]: a subject's fields are each {"$c","$s"} (a group of one
    each), or one {"$c","$s"}, first in path order, and the rest {"$s"} (one group)."""
    out, last, heads = [], {}, {}
    for path, (c, s) in committed.items():
        if c is not None:
            if s in last and len(out[last[s]][2]) > 1:
                raise Failure(f"{where}: {path} is a second commitment of a subject whose fields one commitment covers")
            heads[s] = heads.get(s, 0) + 1
            last[s] = len(out)
            out.append((c, s, [path]))
        elif heads.get(s) == 1:
            out[last[s]][2].append(path)
        else:
            raise Failure(f"{where}: {path} names no single commitment of its subject before it")
    return out


def opening(nonce, paths, values):
    """A group's commitment: H(0x00 || nonce || v) for one field, else
    H(0x02 || nonce || (pathLen:u8 path valueLen:u16le v)*) in path order."""
    if len(paths) == 1:
        return hashlib.sha256(b"\x00" + nonce + values[0].encode()).digest()
    pre = b"\x02" + nonce
    for p, v in zip(paths, values):
        pb, vb = p.encode(), v.encode()
        if len(pb) > 255 or len(vb) > 65535:
            return None
        pre += bytes([len(pb)]) + pb + len(vb).to_bytes(2, "little") + vb
    return hashlib.sha256(pre).digest()


def actor_id(entry):
    """The actor's id as filters and the index see it: a committed one by its subject tag."""
    ident = entry["actor"]["id"]
    return "$s:" + ident["$s"] if isinstance(ident, dict) else ident


def check_personal(e, entry, where):
    """§5.4.4: every commitment opened (nonce, value) or erased (a record the trailer proves)."""
    committed, shown, claims, opened = commitments(entry), e.get("personal") or {}, [], 0
    for path in shown:
        if path not in committed:
            raise Failure(f"{where}: personal claims {path}, which the signed entry does not commit to")
    for c, s, paths in groups(committed, where):
        fs = [shown.get(p) for p in paths]
        for p, f in zip(paths, fs):
            if not isinstance(f, dict):
                raise Failure(f"{where}: {p} is committed but neither opened nor erased (withheld)")
        names = ", ".join(paths)
        nonces = {f.get("nonce") for f in fs}
        erased = {f["erased"].get("entry") if isinstance(f.get("erased"), dict) else None for f in fs}
        if len(nonces) == 1 and None not in nonces and all(isinstance(f.get("value"), str) for f in fs):
            nonce = bytes.fromhex(nonces.pop())
            digest = opening(nonce, paths, [f["value"] for f in fs]) if len(nonce) == 16 else None
            if digest is None or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != c:
                raise Failure(f"{where}: the values shown for {names} do not open their commitment (edited)")
            opened += len(paths)
        elif len(erased) == 1 and isinstance(r := erased.pop(), int) and r > e["seq"]:
            claims.extend((e["seq"], p, s, r) for p in paths)
        else:
            why = next((f["withheld"] for f in fs if "withheld" in f), "withheld")
            raise Failure(f"{where}: {names} (one subject's, under one commitment) are neither all opened "
                          f"with one nonce nor all erased by one later entry: {why}")
    return opened, claims


def check_erasures(records, claims, withheld, org, size, root):
    """The trailer's erasure records: each in the checkpoint, the org's data_subject.erased of
    the claimed subject tag, the entries it withholds the ones it signed (§5.4.3: SHA-256 of
    their seqs in decimal, joined by commas). Returns the erased fields (seq, path, record,
    authority) and the withheld entries (seq, record, authority)."""
    seen = {}
    for r in records or []:
        link, content = bytes.fromhex(r["link"]), r["content"].encode()
        leaf = hashlib.sha256(b"\x00" + link).digest()
        ok = len(link) == 113 and hashlib.sha256(content).digest() == link[17:49]
        ok = ok and int.from_bytes(link[1:9], "big") == r["seq"]
        if not ok or not verify_inclusion(r["seq"], size, leaf, [bytes.fromhex(p) for p in r["proof"]], root):
            raise Failure(f"trailer: erasure record {r.get('seq')} is not in the export's checkpoint")
        v = json.loads(content)
        tag = v.get("target", {}).get("id")
        if (v.get("org"), v.get("category"), v.get("action")) != (org, "privacy", "data_subject.erased") or \
                v.get("metadata", {}).get("subject_tag") != tag:
            raise Failure(f"trailer: entry {r['seq']} is not a data_subject.erased record of org {org}")
        holds = r.get("withheld", [])
        listed = ",".join(str(x) for x in sorted(holds)).encode()
        if v["metadata"].get("withheld_sha256") != (hashlib.sha256(listed).hexdigest() if holds else None):
            raise Failure(f"trailer: erasure record {r['seq']} withholds other entries than the trailer lists")
        seen[r["seq"]] = (tag, v["metadata"].get("authority", ""), set(holds))
    out, held = [], []
    for seq, path, s, record in claims:
        if record not in seen or seen[record][0] != s:
            raise Failure(f"entry {seq} {path}: no erasure record {record} of its subject in the trailer")
        out.append((seq, path, record, seen[record][1]))
    for seq, record in withheld:
        if record not in seen or seq not in seen[record][2]:
            raise Failure(f"entry {seq} is withheld without a record that withholds it (entry {record}): content removed")
        held.append((seq, record, seen[record][1]))
    return out, held


# ---------------------------------------------------------------- the export (§9.3)
def ms(text):
    # RFC 3339 UTC; "T" and "Z" may be lower case (§5.6).
    t = datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    return int(t.timestamp() * 1000 + (0.5 if t.timestamp() >= 0 else -0.5))


def matches(entry, flt):
    """Step 4: the read port's matching."""
    t = ms(entry["received_at"])
    if "from" in flt and t < ms(flt["from"]):
        return False
    if "to" in flt and t >= ms(flt["to"]):
        return False
    for k in ("category", "outcome"):
        if k in flt and entry[k] != flt[k]:
            return False
    if "action" in flt:
        a = flt["action"]
        if not (entry["action"].startswith(a[:-1]) if a.endswith("*") else entry["action"] == a):
            return False
    if "actor" in flt:
        a, ident = flt["actor"], actor_id(entry)
        actor = entry["actor"]["type"] + ":" + ident
        if a.endswith("*"):
            if not (actor.startswith(a[:-1]) or ident.startswith(a[:-1])):
                return False
        elif actor != a and not actor.endswith(":" + a):
            return False
    if "q" in flt and flt["q"].lower().encode() not in entry["_bytes"].lower():
        return False
    return True


def csv_lines(rows):
    """CSV rows (after the column names) as the NDJSON objects they stand for, one at a time,
    each readable column checked."""
    for n, r in enumerate(rows, start=2):
        if not r:
            continue
        if len(r) not in (12, 13):  # 13 since personal fields (§5.4.4)
            raise Failure(f"CSV row {n} has {len(r)} columns")
        if r[0] in ("header", "trailer"):
            yield json.loads(r[11])
            continue
        p = json.loads(r[12]) if len(r) == 13 and r[12] else None
        if not r[11] and isinstance(p, dict) and list(p) == ["withheld"]:  # §5.4.3: a withheld entry
            if any(r[3:8]):
                raise Failure(f"CSV row {n}: a withheld entry shows readable columns")
            yield {"type": r[0], "seq": int(r[1]), "org_seq": int(r[2]), "hash": r[8], "link": r[9],
                   "gap": r[10].split(), "withheld": p["withheld"]}
            continue
        c = json.loads(r[11])
        want = [c["received_at"], c["category"], c["action"], c["actor"]["type"] + ":" + actor_id(c), c["outcome"]]
        for name, shown, signed in zip(["received_at", "category", "action", "actor", "outcome"], r[3:8], want):
            if shown != signed:
                raise Failure(f"CSV row {n}: column {name} says {shown!r} but the signed content says {signed!r}")
        o = {"type": r[0], "seq": int(r[1]), "org_seq": int(r[2]), "hash": r[8], "link": r[9],
             "gap": r[10].split(), "content": r[11]}
        if len(r) == 13 and r[12]:
            o["personal"] = json.loads(r[12])
        yield o


def token_time(der):
    """The genTime of a time-stamp token, in ms, as `openssl ts -reply -text` prints it."""
    with tempfile.NamedTemporaryFile(suffix=".tst") as f:
        f.write(der)
        f.flush()
        p = subprocess.run(["openssl", "ts", "-reply", "-in", f.name, "-token_in", "-text"],
                           capture_output=True, text=True)
    for line in p.stdout.split("\n"):
        if line.startswith("Time stamp: "):
            t = " ".join(line[len("Time stamp: "):].split())  # "Dec 5 01:09:17.275 2026 GMT"
            fmt = "%b %d %H:%M:%S.%f %Y GMT" if "." in t else "%b %d %H:%M:%S %Y GMT"
            d = datetime.datetime.strptime(t, fmt).replace(tzinfo=datetime.timezone.utc)
            return int(d.timestamp() * 1000 + 0.5)
    raise Failure("a time-stamp token's time cannot be read")


def check_timestamps(stamps, origin, size, root, trust):
    """§8.7: each token's checkpoint (origin, tree_size, root_hash) is consistent with the
    export's; with a trust file, `openssl ts -verify` checks its signature and its imprint,
    SHA-256 of that checkpoint's body, and its time is the one stated. Returns (size, time ms,
    authority, checked) per token."""
    out = []
    for i, t in enumerate(stamps or []):
        ts, r = t["tree_size"], base64.b64decode(t["root_hash"])
        if not (isinstance(ts, int) and 1 <= ts <= size) or len(r) != 32:
            raise Failure(f"trailer: timestamps: token {i + 1} names no tree of this log")
        if not verify_consistency(ts, size, r, root, [bytes.fromhex(h) for h in t["consistency"]]):
            raise Failure(f"trailer: timestamps: token {i + 1} stamps a tree of {ts} entries that is not "
                          "consistent with the export's checkpoint")
        stated = ms(t["time"])
        if trust is None:
            out.append((ts, stated, t["authority"], False))
            continue
        if shutil.which("openssl") is None:
            raise Failure("--tsa-trust needs the openssl command to check time-stamp tokens; install it")
        body = f"{origin}\n{ts}\n{base64.b64encode(r).decode()}\n".encode()
        der = base64.b64decode(t["token"])
        with tempfile.NamedTemporaryFile(suffix=".tst") as f:
            f.write(der)
            f.flush()
            p = subprocess.run(["openssl", "ts", "-verify", "-digest", hashlib.sha256(body).hexdigest(),
                                "-in", f.name, "-token_in", "-CAfile", trust, "-partial_chain"],
                               capture_output=True, text=True)
        if p.returncode != 0 or "Verification: OK" not in p.stdout:
            raise Failure(f"trailer: timestamps: token {i + 1} (tree of {ts} entries, by {t['authority']}) does "
                          f"not verify against {trust}")
        if token_time(der) != stated:
            raise Failure(f"trailer: timestamps: token {i + 1}'s time is not the trailer's: the trailer was edited")
        out.append((ts, stated, t["authority"], True))
    return sorted(out)


def verify(objs, fmt, key, kept, trust=None):
    """Steps 1-9 over `objs`, the export's objects in order (any iterable: read as they come)."""
    objs = iter(objs)
    header = next(objs, {})
    # /5 added "personal" beside entries and the trailer's "erasures" (§5.4.4); /6 its
    # "timestamps" (§8.7); /4 has none of them.
    if header.get("type") != "header" or header.get("format") not in (
            "auditlog-export/4", "auditlog-export/5", "auditlog-export/6", "auditlog-export/7"):
        raise Failure("line 1: not an auditlog-export/4, /5, /6 or /7 header")
    hex_gap = header["format"] != "auditlog-export/7"  # /7 spells gap hashes in base64url
    ended = []  # the trailer, once met

    def lines():
        """The objects between the header and the trailer, which must be the last."""
        for o in objs:
            if o.get("type") == "trailer":
                ended.append(o)
                break
            yield o
        if not ended:
            raise Failure("no trailer: the export is truncated")
        if next(objs, None) is not None:
            raise Failure("data after the trailer")
    key = follow(key, header.get("key_successions", []))  # section 8.8
    origin, size, root = checkpoint(header["checkpoint"], key)  # step 1
    if header["tree_size"] != size:
        raise Failure("tree_size is not the checkpoint's size")
    org, flt = header["org"], header["filter"]
    archived = signed_bundles(header.get("archived_bundles", []), org, origin, key)
    if header["filtered"] != bool(flt):
        raise Failure("'filtered' contradicts the filter")
    for k in kept:  # step 8
        k_origin, k_size, k_root = checkpoint(k, key)
        if k_origin != origin:
            raise Failure("the kept checkpoint is for another log")
        if k_size > size:
            raise Failure("the export's tree is older than the kept checkpoint")
        if k_size == size and k_root != root:
            raise Failure("same size, different root: the log forked")
        if k_size < size:
            c = header.get("consistency") or {}
            if c.get("from") != k_size:
                raise Failure(f"no consistency proof from {k_size}")
            if not verify_consistency(k_size, size, k_root, root, [bytes.fromhex(h) for h in c["proof"]]):
                raise Failure("the export does not extend the kept checkpoint: rolled back or forked")
    provable = set(flt) <= {"from", "to"}
    prev, gaps, counts, tree = None, [], {"entry": 0, "context": 0, "opened": 0}, CompactRange()
    claims, withheld = [], []
    first = None
    for n, e in enumerate(lines(), start=2):
        where = f"line {n} (seq {e.get('seq')})"
        if first is None:
            first = e.get("seq")
        link = bytes.fromhex(e["link"])
        if len(link) != 113 or link[0] != 1:  # step 2
            raise Failure(f"{where}: not a link")
        hidden = "withheld" in e  # §5.4.3: no content; the link stands for it
        if hidden == ("content" in e):
            raise Failure(f"{where}: an entry has content or is withheld, not both or neither")
        content = b"" if hidden else e["content"].encode()
        if not hidden and hashlib.sha256(content).digest() != link[17:49]:
            raise Failure(f"{where}: content does not match its content hash (edited)")
        if int.from_bytes(link[1:9], "big") != e["seq"] or int.from_bytes(link[9:17], "big") != e["org_seq"]:
            raise Failure(f"{where}: link names another seq or org_seq")
        h = hashlib.sha256(b"\x00" + link).digest()
        if h.hex() != e["hash"]:
            raise Failure(f"{where}: hash is not SHA-256(0x00 || link)")
        if e["seq"] >= size or e["seq"] < tree.size:
            raise Failure(f"{where}: outside the tree or out of order")
        tree.cover(e["gap"], e["seq"], where, hex_gap)
        tree.append(0, h)
        if hidden:
            w = e["withheld"]
            if not provable or "personal" in e or not isinstance(w.get("authority"), str) or \
                    not isinstance(w.get("entry"), int) or w["entry"] <= e["seq"]:
                raise Failure(f"{where}: a withheld entry must name a later erasure record, in a time-range export")
            withheld.append((e["seq"], w["entry"]))
            entry, t = None, prev["t"] if prev else None  # its time is the last one shown (never decreasing)
        else:
            entry = json.loads(content)
            entry["_bytes"] = content
            if entry["org"] != org:
                raise Failure(f"{where}: another org's entry")
            opened, more = check_personal(e, entry, where)
            counts["opened"] += opened
            claims += more
            t = ms(entry["received_at"])
        if prev is not None:  # step 3
            if e["org_seq"] <= prev["org_seq"] or (t is not None and prev["t"] is not None and t < prev["t"]):
                raise Failure(f"{where}: out of order")
            if e["org_seq"] == prev["org_seq"] + 1:
                if link[81:113] != prev["hash"]:
                    raise Failure(f"{where}: does not chain to the org's previous entry")
            elif provable and not ("to" in flt and prev["t"] is not None and prev["t"] >= ms(flt["to"])):
                gaps.append((prev["org_seq"] + 1, e["org_seq"], prev["seq"] + 1, e["seq"]))
        elif e["org_seq"] == 0:
            if link[81:113] != bytes(32):
                raise Failure(f"{where}: the org's first entry has a previous org hash")
        elif provable and not (not hidden and e["type"] == "context" and "from" in flt and t < ms(flt["from"])):
            gaps.append((0, e["org_seq"], 0, e["seq"]))
        if not hidden:
            selected = matches(entry, flt)  # step 4
            if e["type"] == "entry" and not selected:
                raise Failure(f"{where}: does not match the filter")
            if e["type"] == "context" and selected:
                raise Failure(f"{where}: matches the filter but is marked context")
        counts[e["type"]] += 1
        prev = {"org_seq": e["org_seq"], "hash": h, "t": t, "seq": e["seq"], "entry": entry}
    trailer = ended[0]
    if trailer.get("count") != counts["entry"] or trailer.get("context") != counts["context"]:  # step 5
        raise Failure("the trailer's counts are not the lines': entries were removed or added")
    a = prev  # step 6
    if a is None or a["seq"] != size - 1 or a["entry"] is None:
        raise Failure("the export does not end with its own audit entry at tree_size - 1")
    ae = a["entry"]
    if ae["category"] != "privacy" or ae["action"] != "audit_log.exported":
        raise Failure("the last entry is not the export's own audit entry")
    meta = ae.get("metadata", {})
    signed = {k[7:]: v for k, v in meta.items() if k.startswith("filter.") and k != "filter.text_search"}
    stated = {k: v for k, v in flt.items() if k != "q"}
    if meta.get("format") != fmt or signed != stated or (meta.get("filter.text_search") is True) != ("q" in flt):
        raise Failure("the header's filter or format is not the one the signed audit entry recorded")
    tree.cover(trailer.get("gap", []), size, "trailer", hex_gap)  # step 2: the one proof
    if tree.root() != root:
        raise Failure("the entries and their gap subtrees do not rebuild the checkpoint's root")
    counts["erased"], counts["withheld"] = check_erasures(trailer.get("erasures"), claims, withheld, org, size, root)
    counts["first"] = first
    counts["size"] = size
    counts["keys"] = [(first, k) for k, first, _ in key[1:]]
    counts["stamps"] = check_timestamps(trailer.get("timestamps"), origin, size, root, trust)
    for lo, hi, first, end in gaps:  # step 7: only signed bundles in the range may explain a gap
        held = sum(n for b_first, b_end, n in archived if first <= b_first and b_end <= end)
        if held != hi - lo:
            raise Failure(f"org entries {lo}..<{hi} are missing from an export that selects them (the signed bundles hold {held} there)")
    if not provable:
        return counts, "only everything or a time range can be proven complete"
    if gaps:
        return counts, f"org entries {[(g[0], g[1]) for g in gaps]} are in archived bundles"
    return counts, None


def signed_bundles(bundles, org, origin, key):
    """Step 7's bundles: (first_seq, end_seq, the org's entries) from each manifest the log's
    key signed (§12.3: the note text is "auditlog bundle", origin, segment, SHA-256 of the
    manifest); a bundle named without a manifest explains nothing."""
    out = []
    for b in bundles:
        if "manifest" not in b:
            continue
        m = b["manifest"]
        text = open_any(b["manifest_note"], key)
        summary = json.loads(m)
        want = f"auditlog bundle\n{origin}\n{summary['segment']}\n{hashlib.sha256(m.encode()).hexdigest()}\n"
        if text != want or summary["first_seq"] >= summary["end_seq"]:
            raise Failure(f"archived bundle {b.get('bundle')}: its manifest is not one the log's key signed")
        n = sum(o["entries"] for o in summary["orgs"] if o["org"] == org)
        out.append((summary["first_seq"], summary["end_seq"], n))
    return out


PACK_FILES = ["export.ndjson", "export.csv", "checkpoint.txt", "sample.json", "summary.json", "controls.json",
              "report.html", "VERIFY.md", "verify_export.py"]
PRIVILEGED = {"role", "roles", "permission", "permissions", "privilege", "privileges", "retention", "legal_hold",
              "policy", "token", "admin"}
CHANGES = {"assigned", "unassigned", "granted", "revoked", "removed", "added", "created", "deleted", "changed",
           "updated", "set", "initiated", "released", "rotated", "enabled", "disabled", "elevated"}


def privileged(cat, act):
    """§9.5: org settings, an export, or a change (last word) to a privileged object (a word before it)."""
    w = act.split(".")
    return cat == "org_settings" or w[-1] == "exported" or (w[-1] in CHANGES and any(x in PRIVILEGED for x in w[:-1]))


# §9.5: the control mapping, as the table there writes it.
CONTROLS_STATEMENT = ("These are controls that the entries in this pack can evidence (the log records the activity the control requires to be recorded or reviewed). The mapping is not a certification: an auditor tests the controls themselves.")
CONTROLS = [
    ("authentication", [('SOC 2', 'CC6.1', 'Logical access security software and infrastructure'), ('ISO/IEC 27001:2022', 'A.5.17', 'Authentication information'), ('ISO/IEC 27001:2022', 'A.8.15', 'Logging'), ('HIPAA', '164.312(b)', 'Audit controls'), ('PCI DSS v4.0', '10.2', 'Audit logs record user activities and events')]),
    ("access", [('SOC 2', 'CC6.1', 'Logical access security software and infrastructure'), ('SOC 2', 'CC6.3', 'Role-based access, changes and removal'), ('ISO/IEC 27001:2022', 'A.5.15', 'Access control'), ('ISO/IEC 27001:2022', 'A.5.18', 'Access rights'), ('HIPAA', '164.312(b)', 'Audit controls'), ('PCI DSS v4.0', '10.2', 'Audit logs record user activities and events')]),
    ("credentials", [('SOC 2', 'CC6.1', 'Logical access security software and infrastructure'), ('ISO/IEC 27001:2022', 'A.5.17', 'Authentication information'), ('PCI DSS v4.0', '10.2', 'Audit logs record user activities and events')]),
    ("agents", [('SOC 2', 'CC6.2', 'User registration and authorization'), ('SOC 2', 'CC6.3', 'Role-based access, changes and removal'), ('ISO/IEC 27001:2022', 'A.5.16', 'Identity management'), ('ISO/IEC 27001:2022', 'A.8.15', 'Logging')]),
    ("billing", [('SOC 2', 'CC8.1', 'Change management'), ('ISO/IEC 27001:2022', 'A.8.15', 'Logging')]),
    ("infrastructure", [('SOC 2', 'CC7.2', 'Monitoring of system components for anomalies'), ('SOC 2', 'CC8.1', 'Change management'), ('ISO/IEC 27001:2022', 'A.8.16', 'Monitoring activities'), ('PCI DSS v4.0', '10.2', 'Audit logs record user activities and events')]),
    ("monitoring", [('SOC 2', 'CC7.2', 'Monitoring of system components for anomalies'), ('SOC 2', 'CC7.3', 'Evaluation of security events'), ('ISO/IEC 27001:2022', 'A.8.16', 'Monitoring activities'), ('ISO/IEC 27001:2022', 'A.8.17', 'Clock synchronization')]),
    ("files", [('SOC 2', 'CC6.1', 'Logical access security software and infrastructure'), ('ISO/IEC 27001:2022', 'A.8.15', 'Logging'), ('HIPAA', '164.312(b)', 'Audit controls'), ('PCI DSS v4.0', '10.2', 'Audit logs record user activities and events')]),
    ("org_settings", [('SOC 2', 'CC6.2', 'User registration and authorization'), ('SOC 2', 'CC6.3', 'Role-based access, changes and removal'), ('SOC 2', 'CC8.1', 'Change management'), ('ISO/IEC 27001:2022', 'A.5.18', 'Access rights'), ('PCI DSS v4.0', '10.2', 'Audit logs record user activities and events')]),
    ("privacy", [('SOC 2', 'CC7.3', 'Evaluation of security events'), ('GDPR', 'Art. 30', 'Records of processing activities'), ('GDPR', 'Art. 33', 'Notification of a personal data breach')]),
]


def read_export(f):
    """An open export file's format and its objects, read one line (or row) at a time: an
    export of millions of entries is verified in little memory."""
    first = f.readline()
    if first.startswith("type,seq,org_seq,"):
        return "csv", csv_lines(csv.reader(f))
    return "ndjson", (json.loads(x) for x in itertools.chain([first], f) if x.strip("\n"))


def read_whole(path):
    """`read_export` of a small file (an evidence pack's), as a list."""
    with open(path, encoding="utf-8", newline="") as f:
        fmt, objs = read_export(f)
        return fmt, list(objs)


def actor_name(a):
    """§9.5: "type:id", a committed id as its subject tag ("type:$s:TAG")."""
    if not isinstance(a, dict):
        return "?"
    t, i = a.get("type", "?"), a.get("id")
    if isinstance(i, str):
        return f"{t}:{i}"
    if isinstance(i, dict) and isinstance(i.get("$s"), str):
        return f"{t}:$s:{i['$s']}"
    return f"{t}:?"


def summarize(contents, org, frm, to):
    """§9.5: the figures of a pack, from the selected entries' contents (None: withheld)."""
    s = {"org": org, "from": frm, "to": to, "entries": 0, "withheld": 0, "by_category": {}, "by_action": {},
         "by_outcome": {}}
    bad, priv, actors = {}, {}, {}
    for c in contents:
        s["entries"] += 1
        if c is None:
            s["withheld"] += 1
            continue
        e = json.loads(c)
        cat, act, out = e.get("category", ""), e.get("action", ""), e.get("outcome", "")
        for k, v in (("by_category", cat), ("by_action", act), ("by_outcome", out)):
            s[k][v] = s[k].get(v, 0) + 1
        is_bad = out in ("denied", "failure")
        is_priv = privileged(cat, act)
        if is_bad:
            bad[act] = bad.get(act, 0) + 1
        if is_priv:
            priv[act] = priv.get(act, 0) + 1
        name = actor_name(e.get("actor"))
        c0, t0 = actors.get(name, (0, 0))
        actors[name] = (c0 + (1 if is_bad or is_priv else 0), t0 + 1)
    s["denied_or_failed"] = {"count": sum(bad.values()), "by_action": bad}
    s["privileged_changes"] = {"count": sum(priv.values()), "by_action": priv}
    ranked = sorted(actors.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:10]
    s["top_actors"] = [{"actor": k, "consequential": c, "total": t} for k, (c, t) in ranked]
    return s


def verify_evidence(d, key, trust):
    """§9.5: an evidence pack: its files as pack.json hashes them, both exports complete for its
    range, the sample the seed draws (each entry proven in the checkpoint), every figure."""
    pack = json.load(open(os.path.join(d, "pack.json"), encoding="utf-8"))
    if pack.get("format") != "auditlog-evidence/1":
        raise Failure("pack.json is not an auditlog-evidence/1 manifest")
    for name in PACK_FILES:
        if hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest() != pack["files"].get(name):
            raise Failure(f"{name} is not the file pack.json names: it was changed")
    org, frm, to, k = pack["org"], pack["from"], pack["to"], pack["sample_size"]
    for name in ("export.ndjson", "export.csv"):
        fmt, objs = read_whole(os.path.join(d, name))
        counts, why = verify(objs, fmt, key, [], trust)
        if why is not None or objs[0]["org"] != org or objs[0]["filter"] != {"from": frm, "to": to}:
            raise Failure(f"{name} is not the complete export of org {org} from {frm} to {to}")
    _, objs = read_whole(os.path.join(d, "export.ndjson"))
    origin, size, root = checkpoint(objs[0]["checkpoint"], follow(key, objs[0].get("key_successions", [])))
    sel = [o for o in objs[1:-1] if o["type"] == "entry"]
    seed = hashlib.sha256(root + (pack.get("auditor_seed") or "").encode()).digest()
    drawn, seen, n = [], set(), 0
    while len(drawn) < min(k, len(sel)):
        h = hashlib.sha256(b"auditlog evidence sample v1\n" + seed + n.to_bytes(8, "big")).digest()
        j = int.from_bytes(h[:8], "big") % len(sel)
        if j not in seen:
            seen.add(j)
            drawn.append(j)
        n += 1
    sample = json.load(open(os.path.join(d, "sample.json"), encoding="utf-8"))
    if sample.get("seed") != seed.hex() or len(sample["entries"]) != len(drawn):
        raise Failure("sample.json is not the sample the seed draws")
    for i, j in enumerate(drawn):
        e, want = sample["entries"][i], sel[j]
        if (e["index"] != j or e["seq"] != want["seq"] or e["hash"] != want["hash"]
                or not verify_inclusion(want["seq"], size, bytes.fromhex(want["hash"]),
                                        [bytes.fromhex(h) for h in e["inclusion"]], root)):
            raise Failure(f"sample.json entry {i + 1} is not selected entry {j} with its inclusion proof")
    stated = json.load(open(os.path.join(d, "summary.json"), encoding="utf-8"))
    if stated != summarize([o.get("content") for o in sel], org, frm, to):
        raise Failure("summary.json's figures are not the ones the export's entries give")
    controls = {"statement": CONTROLS_STATEMENT, "categories": [
        {"category": cat, "controls": [{"framework": f, "id": i, "title": t} for f, i, t in cs]} for cat, cs in CONTROLS]}
    if json.load(open(os.path.join(d, "controls.json"), encoding="utf-8")) != controls:
        raise Failure("controls.json is not the control mapping format-spec.md §9.5 gives")
    return len(sel), len(drawn)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--key", required=True)
    ap.add_argument("--evidence", metavar="DIR", help="check an evidence pack's folder (format-spec.md §9.5)")
    ap.add_argument("--checkpoint", action="append", default=[])
    ap.add_argument("--require-complete", action="store_true")
    ap.add_argument("--tsa-trust")
    args = ap.parse_args()
    if args.evidence is not None:
        try:
            entries, sampled = verify_evidence(args.evidence, parse_key(args.key), args.tsa_trust)
        except (Failure, ValueError, KeyError, TypeError, IndexError, AttributeError, OSError) as e:
            print(f"FAILED: {e}")
            return 1
        print(f"OK: evidence pack: both exports complete, {entries} entries; the sample of {sampled} is the one "
              "the seed draws, each entry proven; every figure of summary.json recomputed; the control "
              "mapping is the published one")
        return 0
    if args.file is None:
        ap.error("give an export FILE, or --evidence DIR")
    try:
        kept = [open(p, encoding="utf-8").read() for p in args.checkpoint]
        if args.tsa_trust is not None and not os.path.isfile(args.tsa_trust):
            raise Failure(f"--tsa-trust: {args.tsa_trust} does not exist")
        with open(args.file, encoding="utf-8", newline="") as f:
            fmt, objs = read_export(f)
            counts, why = verify(objs, fmt, parse_key(args.key), kept, args.tsa_trust)
    except (Failure, ValueError, KeyError, TypeError, IndexError, AttributeError, OSError) as e:
        print(f"FAILED: {e}")
        return 1
    if counts["opened"] or counts["erased"]:
        print(f"PERSONAL: {counts['opened']} personal values checked against their commitments; "
              f"{len(counts['erased'])} fields erased under a signed record")
        for seq, path, record, authority in counts["erased"][:50]:
            print(f"  entry {seq} {path}: ERASED (entry {record}, authority {authority})")
    if counts["withheld"]:
        n = len(counts["withheld"])
        print(f"WITHHELD: {n} entr{'y names' if n == 1 else 'ies name'} an erased subject in the clear: "
              "each one's link, hash and place in the org's chain are checked, its content is not shown")
        for seq, record, authority in counts["withheld"][:50]:
            print(f"  entry {seq}: WITHHELD (entry {record}, authority {authority})")
    if counts["keys"]:
        n = len(counts["keys"])
        print(f"KEYS: the log's key was handed on {n} time{'' if n == 1 else 's'} since the trusted key, each "
              "handover signed by the key it replaced and the new key: "
              + "; ".join(f"at size {at} to {k[0]}+{k[1].hex()}" for at, k in counts["keys"]))
    covering = [t for t in counts["stamps"] if t[0] > (counts["first"] or 0)]
    bound = True
    if covering and args.tsa_trust is None:
        print(f"TIME: {len(covering)} time-stamp tokens carried but not checked: give --tsa-trust")
    elif covering:
        print(f"TIME: {len(covering)} time-stamp tokens checked against {args.tsa_trust}:")
        for ts, when, authority, _ in covering:
            stamp = datetime.datetime.fromtimestamp(when / 1000, datetime.timezone.utc)
            print(f"  entries up to seq {ts - 1} existed no later than "
                  f"{stamp.strftime('%Y-%m-%dT%H:%M:%S.')}{when % 1000:03d}Z, by {authority}")
    elif args.tsa_trust is not None:
        print("NO TIME BOUND: the export carries no time-stamp token over its entries")
        bound = False
    if why is None:
        print(f"OK: complete: {counts['entry']} entries, {counts['context']} context")
        return 0 if bound else 4
    print(f"AUTHENTIC SELECTION: {counts['entry']} entries\nNOT PROVEN COMPLETE: {why}")
    return 3 if args.require_complete else (0 if bound else 4)


if __name__ == "__main__":
    sys.exit(main())
