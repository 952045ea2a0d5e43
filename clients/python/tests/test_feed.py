"""A feed consumer that keeps a checkpoint: it follows the real daemon's feed (AUDITD_BIN, with
auditctl beside it) across a restart, stops on a rolled-back or forked log before forwarding
anything, and stops on a feed that leaves an entry out."""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from auditlog_client import Client  # noqa: E402
from auditlog_client.feed import Gap, ReadPort, follow  # noqa: E402
from auditlog_client.witness import CheckpointState, Fork, Rollback, VerifierKey  # noqa: E402
from test_client import Daemon, event  # noqa: E402
from test_witness import newest  # noqa: E402


def ready(d, token, key, at_least):
    """The read port of `d`, once it answers with a checkpoint of `at_least` entries."""
    port = ReadPort(f"http://127.0.0.1:{d.port}", token)
    newest(port, key, at_least)
    return port


class FeedTests(unittest.TestCase):
    def test_a_feed_consumer_catches_a_rollback_and_a_fork(self):
        d = Daemon(http=True)
        early = Daemon(http=True)
        try:
            d.start()
            auditctl = os.path.join(os.path.dirname(d.binary), "auditctl")
            data = os.path.join(d.root, "data")
            with Client(d.socket) as c:
                c.append_many([event("acme", i) for i in range(20)])
            token = subprocess.check_output(
                [auditctl, "token", "create", data, "--org", "acme", "--socket", d.socket],
                stderr=subprocess.DEVNULL).decode().strip()
            key = VerifierKey(subprocess.check_output([auditctl, "key", data]).decode())
            port = ready(d, token, key, 21)
            state = CheckpointState(os.path.join(d.root, "forwarder.checkpoint"), key)
            got = list(follow(port, "acme", state=state, limit=21))
            self.assertEqual([g["org_seq"] for g in got], list(range(21)))
            with open(state.path) as f:
                self.assertEqual(key.open(f.read()).size, 21)
            last = got[-1]

            # The log as it was, copied while stopped; the real one grows.
            d.stop()
            d.copy_to(early)
            d.start()
            with Client(d.socket) as c:
                c.append_many([event("acme", 100 + i) for i in range(15)])
            port = ready(d, token, key, 36)
            more = list(follow(port, "acme", cursor=last["seq"], org_seq=last["org_seq"], state=state, limit=15))
            self.assertEqual([g["org_seq"] for g in more], list(range(21, 36)))
            with open(state.path) as f:
                kept = f.read()
            self.assertEqual(key.open(kept).size, 36)
            d.stop()

            # Rolled back: nothing is forwarded.
            early.start()
            old = ready(early, token, key, 21)
            with self.assertRaises(Rollback):
                next(follow(old, "acme", cursor=last["seq"], state=state))
            # Forked: that copy grown to the same size with other entries.
            with Client(early.socket) as e:
                e.append_many([event("forked", i) for i in range(15)])
            old = ready(early, token, key, 36)
            with self.assertRaises(Fork):
                next(follow(old, "acme", cursor=last["seq"], state=state))
            with open(state.path) as f:
                self.assertEqual(f.read(), kept, "the kept checkpoint changed after a refusal")
        finally:
            d.cleanup()
            early.cleanup()

    def test_a_feed_that_leaves_an_entry_out_is_refused(self):
        lines = [{"seq": s, "org_seq": o, "hash": "00" * 32, "entry": {}} for s, o in [(3, 0), (5, 1), (9, 3)]]

        class Feed(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Feed)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            port = ReadPort(f"http://127.0.0.1:{server.server_address[1]}", "aud_x_y")
            seen = []
            with self.assertRaises(Gap) as caught:
                for line in follow(port, "acme"):
                    seen.append(line["seq"])
            self.assertEqual(seen, [3, 5])
            self.assertIn("left out an entry", str(caught.exception))
            # Resuming after seq 5 (org_seq 1): the first line is checked too.
            with self.assertRaises(Gap):
                next(follow(port, "acme", cursor=5, org_seq=2))
        finally:
            server.shutdown()


if __name__ == "__main__":
    unittest.main()
