"""Every writer a witness (format-spec.md §8, §9.1), standard library only.

A writer keeps, in a file, the newest checkpoint of the log it verified; on each check it asks
the daemon for its newest with the RFC 9162 consistency proof from the kept one. A smaller
tree is a rollback; another root at the same size, or a proof that fails, is a fork. Either
is refused (Rollback, Fork) and the file is left as it was: it and the log's answer are two
notes signed by one key that cannot both hold. The same rule as `auditctl append --state`.

    from auditlog_client import Client
    from auditlog_client.witness import CheckpointState, VerifierKey
    state = CheckpointState("/var/lib/billing/audit.checkpoint", VerifierKey("auditd.local/log+dd2e…"))
    with Client(sock) as c:
        size = state.check(c)   # raises Rollback or Fork: stop writing and tell the auditors
"""

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import List, Optional

__all__ = ["VerifierKey", "CheckpointState", "Rollback", "Fork", "consistent", "ed25519_verify"]

# Ed25519 verification (RFC 8032 §5.1.7) in pure Python: a few milliseconds per signature,
# which a writer checking one checkpoint at a time can afford, and no dependency.
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> Optional[int]:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _point(b: bytes):
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    x = _recover_x(y & ((1 << 255) - 1), y >> 255)
    if x is None:
        return None
    y &= (1 << 255) - 1
    return (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519 verification (cofactorless, as OpenSSL and Go do)."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _point(public), _point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    left, right = _mul(s, _G), _add(r, _mul(h, a))
    return (left[0] * right[2] - right[0] * left[2]) % _P == 0 and (left[1] * right[2] - right[1] * left[2]) % _P == 0


def _b64(text: str) -> Optional[bytes]:
    """Canonical padded base64 only (C2SP)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


class VerifierKey:
    """A log's public key as `auditctl key DATA` prints it: name+hash+base64 (C2SP signed-note)."""

    def __init__(self, text: str):
        parts = text.strip().split("+", 2)
        raw = _b64(parts[2]) if len(parts) == 3 else None
        if len(parts) != 3 or not parts[0] or len(parts[1]) != 8 or raw is None or len(raw) != 33 or raw[0] != 1:
            raise ValueError(f"{text!r} is not an Ed25519 verifier key (name+hash+base64)")
        self.name, self.key_hash, self.public = parts[0], hashlib.sha256(parts[0].encode() + b"\n" + raw).digest()[:4], raw[1:]
        if self.key_hash.hex() != parts[1]:
            raise ValueError(f"the key hash in {text!r} does not match its key")
        self.text = text.strip()

    def open(self, note: str) -> "Checkpoint":
        """The checkpoint `note` holds; raises ValueError unless this key signed it."""
        sep = note.find("\n\n")
        if sep < 0 or not note.endswith("\n"):
            raise ValueError("not a signed note")
        text = note[:sep + 1]
        lines = text[:-1].split("\n")
        if len(lines) < 3 or lines[0] != self.name:
            raise ValueError(f"not a checkpoint of log {self.name}")
        if not lines[1].isdigit() or str(int(lines[1])) != lines[1] or int(lines[1]) >= 1 << 64:
            raise ValueError("the checkpoint's size is not a decimal number")
        root = _b64(lines[2])
        if root is None or len(root) != 32:
            raise ValueError("the checkpoint's root is not a SHA-256 hash")
        prefix = "\u2014 " + self.name + " "
        for line in note[sep + 2:-1].split("\n"):
            sig = _b64(line[len(prefix):]) if line.startswith(prefix) else None
            if sig is None or len(sig) != 68 or sig[:4] != self.key_hash:
                continue
            if ed25519_verify(self.public, text.encode(), sig[4:]):
                return Checkpoint(int(lines[1]), root, note)
            raise ValueError("the checkpoint's signature does not verify with the log's key")
        raise ValueError("the checkpoint carries no signature by the log's key")


def _signed_by(key: VerifierKey, note: str) -> bool:
    """Whether `note` carries a valid signature by `key` over its text."""
    sep = note.find("\n\n")
    if sep < 0:
        return False
    prefix = "\u2014 " + key.name + " "
    for line in note[sep + 2:].rstrip("\n").split("\n"):
        sig = _b64(line[len(prefix):]) if line.startswith(prefix) else None
        if sig is not None and len(sig) == 68 and sig[:4] == key.key_hash and \
                ed25519_verify(key.public, note[:sep + 1].encode(), sig[4:]):
            return True
    return False


def follow(key: VerifierKey, notes: List[str]) -> list:
    """The keys in force from `key` through the statements handing the log's key on
    (format-spec.md §8.8): [(key, first size, last size or None)]. Each statement must be signed
    by the key in force (the one it replaces) and by the new key, and hand over after the one
    before; those before the one replacing `key` are skipped. Raises ValueError otherwise."""
    chain, reached = [(key, 0, None)], False
    for note in notes:
        lines = note.partition("\n\n")[0].split("\n")
        if len(lines) != 6 or lines[0] != "auditlog key succession/1":
            raise ValueError("a key succession is malformed")
        if not reached:
            reached = key.text in (lines[2], lines[3])
            if lines[2] != key.text:
                continue
        current, first, _ = chain[-1]
        if lines[2] != current.text:
            raise ValueError("a key succession is not signed by the key it replaces: refused")
        new = VerifierKey(lines[3])
        if new.name != key.name or not all(x.isdigit() and str(int(x)) == x for x in lines[4:6]):
            raise ValueError("a key succession names another log's key, or sizes that are not numbers")
        handover, grace_end = int(lines[4]), int(lines[5])
        if not 0 < handover <= grace_end or (len(chain) > 1 and handover <= first):
            raise ValueError("a key succession's sizes are not in order")
        if not (_signed_by(current, note) and _signed_by(new, note)):
            raise ValueError("a key succession is not signed by both the key it replaces and the new key: refused")
        chain[-1] = (current, first, grace_end)
        chain.append((new, handover, None))
    return chain


def open_in(chain: list, note: str) -> "Checkpoint":
    """The checkpoint `note` holds, signed by a key of `chain` in force at its size."""
    error = None
    for key, first, last in reversed(chain):
        try:
            cp = key.open(note)
        except ValueError as e:
            error = error or e
            continue
        if cp.size >= first and (last is None or cp.size <= last):
            return cp
        error = ValueError(f"the checkpoint of {cp.size} entries is signed by a key not in force at that size (retired)")
    raise error


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    note: str


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(size1: int, size2: int, root1: bytes, root2: bytes, proof: List[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: whether `proof` shows the tree (size1, root1) is a prefix of (size2, root2)."""
    if size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    path = ([root1] if size1 & (size1 - 1) == 0 else []) + list(proof)
    if not path:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


class Rollback(Exception):
    """The log shows a smaller tree (or none) than one its key signed before."""


class Fork(Exception):
    """The log shows a tree that does not extend one its key signed before."""


class CheckpointState:
    """Keeps in `path` the newest checkpoint of the log (`key`) this writer verified, and in
    `path`.keys the key successions it followed from `key` (format-spec.md §8.8)."""

    def __init__(self, path: str, key: VerifierKey):
        self.path, self.key = path, key

    def followed(self) -> List[str]:
        try:
            with open(self.path + ".keys", encoding="utf-8") as f:
                notes = json.load(f)
        except FileNotFoundError:
            return []
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise ValueError(f"{self.path}.keys is not a JSON list of key successions")
        return notes

    def kept(self) -> Optional[Checkpoint]:
        try:
            with open(self.path, encoding="utf-8") as f:
                note = f.read()
        except FileNotFoundError:
            return None
        try:
            return open_in(follow(self.key, self.followed()), note)
        except ValueError as e:
            raise ValueError(f"the checkpoint kept in {self.path}: {e}; restore it or remove it to start again") from e

    def check(self, client) -> int:
        """Asks `client` for the newest checkpoint and accepts it only if it extends the kept
        one, then keeps it (temp file, fsync, rename). Returns the size now held; raises
        Rollback or Fork (the file left as it was) or the client's errors."""
        from . import AuditError  # the client module, which imports nothing of this one
        kept, had = self.kept(), self.followed()
        try:
            note, proof = client.checkpoint(kept.size if kept else 0)
        except AuditError as e:
            if kept and e.code == 4 and "no checkpoint" in e.message:
                raise Rollback(f"ROLLBACK: the log shows no checkpoint, but its key signed one of {kept.size} entries (kept in {self.path})") from e
            raise
        # The log's statements, asked after its checkpoint: they must extend the ones followed.
        shown = client.key_successions()
        if shown[:len(had)] != had:
            raise Fork(f"FORK: the log's key successions do not extend the {len(had)} this writer followed (kept in {self.path}.keys)")
        try:
            cur = open_in(follow(self.key, shown), note)
        except ValueError as e:
            raise ValueError(f"the log's checkpoint: {e}") from e
        if kept:
            if cur.size < kept.size:
                raise Rollback(f"ROLLBACK: the log shows {cur.size} entries, but its key signed a tree of {kept.size} (kept in {self.path})")
            if cur.size == kept.size and cur.root != kept.root:
                raise Fork(f"FORK: two trees of {cur.size} entries with different roots, both signed by the log's key (kept in {self.path})")
            if cur.size > kept.size and not consistent(kept.size, cur.size, kept.root, cur.root, proof):
                raise Fork(f"FORK: the tree of {cur.size} entries does not extend the one of {kept.size} kept in {self.path}")
        if len(shown) > len(had):
            _write_whole(self.path + ".keys", json.dumps(shown))
        if not kept or cur.size > kept.size:
            _write_whole(self.path, cur.note)
        return cur.size


def _write_whole(path: str, text: str) -> None:
    """Replaces `path` with `text`: a temporary file, fsync, rename, fsync of the folder."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
