"""A client for auditd's ingest socket (format-spec.md §9.1), standard library only.

    from auditlog_client import Client
    with Client("/run/auditd/auditd.sock") as c:
        ack = c.append({"org": "acme", "category": "access", ...})
        print(ack.seq, ack.hash)

Every append is acknowledged only once the entry is durable (after the fdatasync that covers
it). `append_many` pipelines a batch over one connection. `RetryingClient` reconnects after a
lost connection and sends again what was not acknowledged: entries that carry an
`idempotency_key` are then stored exactly once. `AsyncClient` is the same for asyncio.
"""

import asyncio
import itertools
import json
import socket
import struct
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Union

__all__ = ["Ack", "AuditError", "ConnectionLost", "Client", "RetryingClient", "AsyncClient"]

APPEND, PING, CHECKPOINT, ACK, PONG, ERROR, CHECKPOINT_REPLY = 0x01, 0x02, 0x03, 0x81, 0x82, 0x83, 0x84
HEADER = struct.Struct("<IBQ")  # length (type + id + body), type, id
MAX_BODY = 64 << 10
CODES = {1: "invalid entry", 2: "malformed frame", 3: "frame too large", 4: "unavailable", 5: "forbidden"}


@dataclass(frozen=True)
class Ack:
    """A durable entry: its sequence number, its position in its org's chain, its hash."""
    seq: int
    org_seq: int
    hash: str
    duplicate: bool


class AuditError(Exception):
    """The daemon refused a request. `code` is the §9.1 error code; 1 (invalid entry) names the
    field: do not retry it unchanged; 4 (unavailable) is worth retrying later."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{CODES.get(code, 'error ' + str(code))}: {message}")
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code == 4


class ConnectionLost(Exception):
    """The connection closed or timed out before an acknowledgement came."""


def _encode(entry: Union[dict, bytes, str]) -> bytes:
    if isinstance(entry, dict):
        body = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
    elif isinstance(entry, str):
        body = entry.encode()
    else:
        body = bytes(entry)
    if len(body) > MAX_BODY:
        raise AuditError(3, f"the entry is {len(body)} bytes; at most {MAX_BODY} are accepted")
    return body


def _frame(ftype: int, fid: int, body: bytes = b"") -> bytes:
    return HEADER.pack(1 + 8 + len(body), ftype, fid) + body


def _decode(ftype: int, body: bytes) -> Union[Ack, AuditError]:
    if ftype == ACK and len(body) == 49:
        seq, org_seq = struct.unpack_from("<QQ", body)
        return Ack(seq, org_seq, body[16:48].hex(), bool(body[48] & 1))
    if ftype == ERROR and len(body) >= 2:
        return AuditError(struct.unpack_from("<H", body)[0], body[2:].decode("utf-8", "replace"))
    return AuditError(2, f"unexpected frame type 0x{ftype:02x} from the daemon")


class Client:
    """One connection; not thread-safe (use one per thread)."""

    def __init__(self, path: str = "./auditd.sock", timeout: float = 30.0):
        self.path, self.timeout = path, timeout
        self._ids = itertools.count(1)
        self._sock: Optional[socket.socket] = None
        self._buf = b""
        self.connect()

    def connect(self) -> None:
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise ConnectionLost(f"cannot connect to {self.path}: {e} (is auditd running?)") from e
        self._sock, self._buf = s, b""

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def append(self, entry: Union[dict, bytes, str]) -> Ack:
        """Appends one entry and waits until it is durable; raises AuditError if refused."""
        r = self.append_many([entry])[0]
        if isinstance(r, AuditError):
            raise r
        return r

    def append_many(self, entries: Iterable[Union[dict, bytes, str]]) -> List[Union[Ack, AuditError]]:
        """Sends every entry at once (pipelined) and returns, in order, each one's Ack or
        AuditError. Raises ConnectionLost if the connection fails before all are answered."""
        bodies = [_encode(e) for e in entries]
        ids = [next(self._ids) for _ in bodies]
        self._send(b"".join(_frame(APPEND, i, b) for i, b in zip(ids, bodies)))
        got = {}
        while len(got) < len(ids):
            fid, ftype, body = self._read_frame()
            got[fid] = _decode(ftype, body)
        return [got[i] for i in ids]

    def checkpoint(self, old: int = 0):
        """The log's newest signed checkpoint (a C2SP signed note) and the RFC 9162 consistency
        proof to it from tree size `old` (0: none held), as (note, [hash, ...]). Check them with
        `auditlog_client.witness.CheckpointState`, which keeps the newest one verified."""
        note, proof, _ = self._checkpoint_reply(struct.pack("<Q", old))
        return note, proof

    def key_successions(self) -> List[str]:
        """The statements that handed the log's key on (format-spec.md §8.8), oldest first:
        a CHECKPOINT with flags bit 1, whose reply carries them after the proof."""
        return self._checkpoint_reply(struct.pack("<QB", 0, 2))[2]

    def _checkpoint_reply(self, request: bytes):
        """Sends CHECKPOINT with `request` as its body; its reply as (note, proof, statements).
        Every length the peer gives is compared with what arrived before it is used."""
        fid = next(self._ids)
        self._send(_frame(CHECKPOINT, fid, request))
        _, ftype, body = self._read_frame()
        if ftype == ERROR:
            raise _decode(ftype, body)
        if ftype != CHECKPOINT_REPLY or len(body) < 5:
            raise AuditError(2, f"unexpected answer 0x{ftype:02x} to a CHECKPOINT request")
        (n,) = struct.unpack_from("<I", body)
        if n > len(body) - 5:
            raise AuditError(2, "CHECKPOINT_REPLY note length beyond the frame")
        count = body[4 + n]
        if len(body) - 5 - n < count * 32:
            raise AuditError(2, "CHECKPOINT_REPLY proof length does not match its count")
        proof = [body[5 + n + 32 * i:5 + n + 32 * (i + 1)] for i in range(count)]
        # Then, when asked for and there are any: k:u8 (len:u16 statement){k}.
        rest, statements = body[5 + n + 32 * count:], []
        if rest:
            k, rest = rest[0], rest[1:]
            for _ in range(k):
                if len(rest) < 2 or len(rest) - 2 < struct.unpack_from("<H", rest)[0]:
                    raise AuditError(2, "CHECKPOINT_REPLY key succession beyond the frame")
                m = struct.unpack_from("<H", rest)[0]
                statements.append(rest[2:2 + m].decode("utf-8"))
                rest = rest[2 + m:]
            if rest:
                raise AuditError(2, "CHECKPOINT_REPLY has bytes after its key successions")
        return body[4:4 + n].decode("utf-8"), proof, statements

    def ping(self) -> None:
        fid = next(self._ids)
        self._send(_frame(PING, fid))
        _, ftype, _ = self._read_frame()
        if ftype != PONG:
            raise ConnectionLost("no PONG")

    def _send(self, data: bytes) -> None:
        if self._sock is None:
            raise ConnectionLost("not connected")
        try:
            self._sock.sendall(data)
        except OSError as e:
            self.close()
            raise ConnectionLost(f"sending to {self.path} failed: {e}") from e

    def _read_frame(self):
        while True:
            if len(self._buf) >= HEADER.size:
                length, ftype, fid = HEADER.unpack_from(self._buf)
                end = 4 + length
                if len(self._buf) >= end:
                    body = self._buf[HEADER.size:end]
                    self._buf = self._buf[end:]
                    return fid, ftype, body
            try:
                chunk = self._sock.recv(1 << 16) if self._sock else b""
            except socket.timeout as e:
                self.close()
                raise ConnectionLost(f"no answer from {self.path} within {self.timeout} s") from e
            except OSError as e:
                self.close()
                raise ConnectionLost(f"reading from {self.path} failed: {e}") from e
            if not chunk:
                self.close()
                raise ConnectionLost(f"{self.path} closed the connection")
            self._buf += chunk


class RetryingClient:
    """Reconnects after a lost connection (or a daemon restart) and sends again the entries
    not yet acknowledged, up to `retries` times, waiting `backoff` seconds (doubling) between
    tries. Entries with an `idempotency_key` are stored exactly once across retries; entries
    without one may be stored twice if the connection is lost after they became durable."""

    def __init__(self, path: str = "./auditd.sock", retries: int = 10, backoff: float = 0.1, timeout: float = 30.0):
        self.path, self.retries, self.backoff, self.timeout = path, retries, backoff, timeout
        self._client: Optional[Client] = None
        self.reconnects = 0

    def append(self, entry: Union[dict, bytes, str]) -> Ack:
        r = self.append_many([entry])[0]
        if isinstance(r, AuditError):
            raise r
        return r

    def append_many(self, entries: Iterable[Union[dict, bytes, str]]) -> List[Union[Ack, AuditError]]:
        entries = list(entries)
        results: List[Optional[Union[Ack, AuditError]]] = [None] * len(entries)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            todo = [i for i, r in enumerate(results) if r is None or (isinstance(r, AuditError) and r.retryable)]
            if not todo:
                break
            try:
                if self._client is None:
                    self._client = Client(self.path, self.timeout)
                for i, r in zip(todo, self._client.append_many([entries[i] for i in todo])):
                    results[i] = r
            except ConnectionLost:
                if self._client is not None:
                    self._client.close()
                self._client = None
                if attempt == self.retries:
                    raise
                self.reconnects += 1
            if any(r is None or (isinstance(r, AuditError) and r.retryable) for r in results):
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        return [r if r is not None else AuditError(4, "not acknowledged after retries") for r in results]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class AsyncClient:
    """The asyncio client: appends from many tasks share one connection, each awaiting its
    own acknowledgement."""

    def __init__(self, path: str = "./auditd.sock", timeout: float = 30.0):
        self.path, self.timeout = path, timeout
        self._ids = itertools.count(1)
        self._pending = {}
        self._reader = self._writer = self._task = None

    async def connect(self) -> "AsyncClient":
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(self.path)
        except OSError as e:
            raise ConnectionLost(f"cannot connect to {self.path}: {e} (is auditd running?)") from e
        self._task = asyncio.ensure_future(self._read_loop())
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def append(self, entry: Union[dict, bytes, str]) -> Ack:
        fid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[fid] = fut
        if self._writer is None:
            raise ConnectionLost("not connected")
        self._writer.write(_frame(APPEND, fid, _encode(entry)))
        try:
            r = await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError as e:
            self._pending.pop(fid, None)
            raise ConnectionLost(f"no answer from {self.path} within {self.timeout} s") from e
        if isinstance(r, AuditError):
            raise r
        return r

    async def append_many(self, entries: Iterable[Union[dict, bytes, str]]) -> List[Union[Ack, AuditError]]:
        async def one(e):
            try:
                return await self.append(e)
            except AuditError as err:
                return err
        return list(await asyncio.gather(*(one(e) for e in entries)))

    async def _read_loop(self) -> None:
        err: Exception = ConnectionLost(f"{self.path} closed the connection")
        try:
            while True:
                head = await self._reader.readexactly(HEADER.size)
                length, ftype, fid = HEADER.unpack(head)
                body = await self._reader.readexactly(length - 9)
                fut = self._pending.pop(fid, None)
                if fut is not None and not fut.done():
                    fut.set_result(_decode(ftype, body))
        except (asyncio.IncompleteReadError, OSError) as e:
            err = ConnectionLost(f"{self.path}: connection lost ({e})")
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(err)
            self._pending.clear()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
