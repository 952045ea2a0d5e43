"""Follows an org's feed on auditd's read port (format-spec.md §9.2), as a SIEM forwarder does,
and checks that the log never goes back, standard library only.

    from auditlog_client.feed import ReadPort, follow
    from auditlog_client.witness import CheckpointState, VerifierKey
    port = ReadPort("http://127.0.0.1:8650", token)
    state = CheckpointState("/var/lib/forwarder/acme.checkpoint", VerifierKey(published_key))
    for line in follow(port, "acme", cursor=last_seq, state=state):
        forward(line["entry"]); last_seq = line["seq"]

With a state, the read port's newest checkpoint must extend the one kept (an RFC 9162
consistency proof, checked here) before the first entry and then every `check_every`
seconds; a rollback or a fork raises `Rollback` or `Fork` and the stream stops. Each line's
`org_seq` must follow the one before by one: a feed that leaves an entry out raises `Gap`.
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Iterator, List, Optional, Tuple

from . import AuditError

__all__ = ["ReadPort", "Gap", "follow"]

# A line longer than this is not a feed line (entries are at most 64 KiB).
MAX_LINE = 1 << 20


class Gap(Exception):
    """The feed skipped one of the org's entries (or repeated one)."""


class ReadPort:
    """auditd's read port at `base` (http://host:port), with a bearer token."""

    def __init__(self, base: str, token: str, timeout: float = 30.0):
        self.base, self.token, self.timeout = base.rstrip("/"), token, timeout

    def open(self, path: str, timeout: Optional[float] = None):
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read(64 << 10))["error"]["message"]
            except Exception:
                message = e.reason
            # 404 on /v1/checkpoint means none is published: the socket's code for it.
            raise AuditError(4 if e.code == 404 else 5, f"{path}: HTTP {e.code}: {message}") from e

    def get(self, path: str) -> bytes:
        with self.open(path) as r:
            return r.read(MAX_LINE)

    def key_successions(self) -> List[str]:
        """The statements that handed the log's key on (format-spec.md §8.8), oldest first."""
        body = json.loads(self.get("/v1/key-successions"))
        notes = body.get("key_successions", [])
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise AuditError(2, "the read port's key successions are not a list of statements")
        return notes

    def checkpoint(self, old: int = 0) -> Tuple[str, List[bytes]]:
        """The newest checkpoint (a signed note) and the consistency proof to it from tree size
        `old`, as the ingest socket's CHECKPOINT gives them, so `CheckpointState.check` takes
        either. A 404 says "no checkpoint" as the socket does."""
        note = self.get("/v1/checkpoint").decode("utf-8")
        lines = note.split("\n")
        if len(lines) < 2 or not lines[1].isdigit():
            raise AuditError(2, "the read port's checkpoint is not a checkpoint note")
        size = int(lines[1])
        if old == 0 or size <= old:
            return note, []
        body = json.loads(self.get(f"/v1/proofs/consistency?old={old}&new={size}"))
        proof = [bytes.fromhex(h) for h in body.get("proof", [])]
        if any(len(p) != 32 for p in proof):
            raise AuditError(2, "a consistency proof hash is not 32 bytes")
        return note, proof


def follow(port: ReadPort, org: str, cursor: Optional[int] = None, state=None, check_every: float = 10.0,
           limit: Optional[int] = None, org_seq: Optional[int] = None) -> Iterator[dict]:
    """Yields the org's entries after `cursor` (each {"seq", "org_seq", "hash", "entry"}),
    then each new one as it becomes durable, until the stream ends (`limit`, a revoked token,
    the daemon stopping). `org_seq`, the org position of the entry at `cursor` (a forwarder
    that resumes keeps both), makes the first line checked too. With `state` (a
    `witness.CheckpointState`), the log is checked for a rollback or fork first and every
    `check_every` seconds (at a heartbeat if nothing comes)."""
    if state is not None:
        state.check(port)
    checked = time.monotonic()
    q = {}
    if cursor is not None:
        q["cursor"] = str(cursor)
    if limit is not None:
        q["limit"] = str(limit)
    path = f"/v1/orgs/{urllib.parse.quote(org, safe='')}/feed" + (f"?{urllib.parse.urlencode(q)}" if q else "")
    last = None if org_seq is None else {"org_seq": org_seq, "seq": cursor}
    # Heartbeats come every 15 s: a silence of a minute is a dead stream.
    with port.open(path, timeout=60) as r:
        while True:
            raw = r.readline(MAX_LINE + 1)
            if not raw:
                return
            if len(raw) > MAX_LINE:
                raise AuditError(2, f"a feed line is longer than {MAX_LINE} bytes")
            if state is not None and time.monotonic() - checked >= check_every:
                state.check(port)
                checked = time.monotonic()
            if raw.strip() == b"":
                continue
            line = json.loads(raw)
            if last is not None and line["org_seq"] != last["org_seq"] + 1:
                raise Gap(f"the feed went from the org's entry {last['org_seq']} (seq {last['seq']}) to "
                          f"{line['org_seq']} (seq {line['seq']}): it "
                          f"{'left out an entry' if line['org_seq'] > last['org_seq'] else 'repeated an entry'}")
            last = line
            yield line
