"""The Python client against the real daemon (AUDITD_BIN: the auditd binary to run)."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from auditlog_client import AsyncClient, AuditError, Client, ConnectionLost, RetryingClient  # noqa: E402


def event(org, i, key=None):
    e = {"org": org, "category": "access", "action": "access.granted",
         "actor": {"type": "service", "id": "py-client"}, "target": {"type": "doc", "id": f"d{i}"},
         "outcome": "success", "source": {"service": "python-tests"}, "occurred_at": "2026-01-01T00:00:00Z"}
    if key:
        e["idempotency_key"] = key
    return e


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, http: bool = False):
        # With `http`, the read port listens on a free loopback port (self.port).
        self.port = free_port() if http else 0
        binary = os.environ.get("AUDITD_BIN")
        if not binary or not os.access(binary, os.X_OK):
            raise RuntimeError("set AUDITD_BIN to the auditd binary (swift build --product auditd)")
        self.binary = binary
        self.root = tempfile.mkdtemp(prefix="auditd-py-")
        self.socket = os.path.join(self.root, "auditd.sock")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--data", os.path.join(self.root, "data"), "--socket", self.socket, "--http-port", str(self.port),
             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        raise RuntimeError("auditd did not come up")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
            self.proc = None

    def copy_to(self, other: "Daemon"):
        """The whole state of this log (its data and its key, with the signer's state) into
        `other`, taken while this daemon is stopped."""
        for name in ("data", "auditd-keys"):
            shutil.copytree(os.path.join(self.root, name), os.path.join(other.root, name),
                            ignore=shutil.ignore_patterns("*.sock"))

    def cleanup(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.d.start()

    def tearDown(self):
        self.d.cleanup()

    def test_append_pipelined_and_refusals(self):
        with Client(self.d.socket) as c:
            first = c.append(event("org_py", 0))
            self.assertEqual(first.org_seq, 0)
            self.assertEqual(len(first.hash), 64)
            acks = c.append_many([event("org_py", i) for i in range(1, 501)])
            seqs = [a.seq for a in acks]
            self.assertEqual(seqs, sorted(seqs))
            self.assertEqual(len(set(seqs)), 500)
            self.assertEqual(acks[-1].org_seq, 500)
            bad = dict(event("org_py", 9), category="nonsense")
            with self.assertRaises(AuditError) as ctx:
                c.append(bad)
            self.assertEqual(ctx.exception.code, 1)
            self.assertIn("category", str(ctx.exception))
            # The connection stays usable after a refusal.
            self.assertGreater(c.append(event("org_py", 502)).seq, seqs[-1])

    def test_asyncio_many_tasks_one_connection(self):
        async def run():
            async with AsyncClient(self.d.socket) as c:
                acks = await asyncio.gather(*(c.append(event("org_async", i)) for i in range(200)))
                return acks
        acks = asyncio.run(run())
        self.assertEqual(len({a.seq for a in acks}), 200)
        self.assertEqual(sorted(a.org_seq for a in acks), list(range(200)))

    def test_retry_across_a_restart_stores_each_keyed_entry_once(self):
        rc = RetryingClient(self.d.socket, retries=40, backoff=0.05)
        batch = [event("org_retry", i, key=f"k-{i}") for i in range(50)]
        first = rc.append_many(batch[:25])
        self.assertTrue(all(not isinstance(a, AuditError) for a in first))
        self.d.stop()
        # The daemon comes back a moment later; the client keeps trying meanwhile.
        threading.Timer(0.7, self.d.start).start()
        rest = rc.append_many(batch)
        self.assertGreater(rc.reconnects, 0)
        self.assertTrue(all(not isinstance(a, AuditError) for a in rest), rest)
        # The 25 already stored are acknowledged as duplicates at their first place.
        self.assertEqual([a.seq for a in rest[:25]], [a.seq for a in first])
        self.assertTrue(all(a.duplicate for a in rest[:25]))
        self.assertFalse(any(a.duplicate for a in rest[25:]))
        self.assertEqual(sorted(a.org_seq for a in rest), list(range(50)))
        rc.close()

    def test_clear_error_when_the_daemon_is_not_there(self):
        self.d.stop()
        with self.assertRaises(ConnectionLost) as ctx:
            Client(self.d.socket, timeout=2)
        self.assertIn("is auditd running?", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
