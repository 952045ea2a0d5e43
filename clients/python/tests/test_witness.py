"""Every writer a witness: the kept checkpoint against the real daemon (AUDITD_BIN, with
auditctl beside it), and the pure-Python Ed25519 against RFC 8032's vectors."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from auditlog_client import Client  # noqa: E402
from auditlog_client.witness import CheckpointState, Fork, Rollback, VerifierKey, ed25519_verify  # noqa: E402
from test_client import Daemon, event  # noqa: E402


class Ed25519Tests(unittest.TestCase):
    def test_rfc8032_vectors(self):
        for pub, msg, sig in [
            ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
            ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
             "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ]:
            pub, msg, sig = bytes.fromhex(pub), bytes.fromhex(msg), bytes.fromhex(sig)
            self.assertTrue(ed25519_verify(pub, msg, sig))
            self.assertFalse(ed25519_verify(pub, msg + b"x", sig))
            bent = bytearray(sig)
            bent[40] ^= 1
            self.assertFalse(ed25519_verify(pub, msg, bytes(bent)))


def newest(c, key, at_least):
    """The size of the daemon's newest checkpoint, once it holds `at_least` entries."""
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            size = key.open(c.checkpoint(0)[0]).size
            if size >= at_least:
                return size
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of {at_least} entries within 20 s")


class KeptCheckpointTests(unittest.TestCase):
    def test_a_kept_checkpoint_catches_a_rollback_and_a_fork(self):
        d = Daemon()
        early = Daemon()
        try:
            d.start()
            with Client(d.socket) as c:
                c.append_many([event("acme", i) for i in range(20)])
                auditctl = os.path.join(os.path.dirname(d.binary), "auditctl")
                key = VerifierKey(subprocess.check_output([auditctl, "key", os.path.join(d.root, "data")]).decode())
                first = newest(c, key, 20)
                state = CheckpointState(os.path.join(d.root, "writer.checkpoint"), key)
                self.assertEqual(state.check(c), first)
            # The log as it was: its data and key, copied while it is stopped.
            d.stop()
            d.copy_to(early)
            d.start()
            with Client(d.socket) as c:
                c.append_many([event("acme", 100 + i) for i in range(15)])
                grown = newest(c, key, first + 15)
                self.assertEqual(state.check(c), grown)
            with open(state.path) as f:
                kept = f.read()
            d.stop()
            # Rolled back: the earlier copy.
            early.start()
            with Client(early.socket) as e:
                with self.assertRaises(Rollback):
                    state.check(e)
                # Forked: that copy grown to the same size with other entries.
                now = newest(e, key, 0)
                e.append_many([event("forked", i) for i in range(grown - now)])
                self.assertEqual(newest(e, key, grown), grown)
                with self.assertRaises(Fork):
                    state.check(e)
            with open(state.path) as f:
                self.assertEqual(f.read(), kept, "the kept checkpoint changed after a refusal")
        finally:
            d.cleanup()
            early.cleanup()

    def test_a_writer_follows_the_logs_key_successions(self):
        """Issue 25 §3: holding only the first key, the writer follows two handovers, keeps the
        statements beside its checkpoint, and refuses forged or fewer statements."""
        d = Daemon()
        try:
            d.start()
            data = os.path.join(d.root, "data")
            auditctl = os.path.join(os.path.dirname(d.binary), "auditctl")
            first = subprocess.check_output([auditctl, "key", data]).decode().strip()
            key = VerifierKey(first)
            state = CheckpointState(os.path.join(d.root, "writer.checkpoint"), key)
            with Client(d.socket) as c:
                c.append_many([event("acme", i) for i in range(5)])
                newest(c, key, 5)
                self.assertEqual(state.check(c), newest(c, key, 5))
                size = 5
                for n in (2, 3):
                    path = os.path.join(d.root, f"k{n}.key")
                    new = VerifierKey(subprocess.check_output(
                        [auditctl, "key", "generate", "--name", key.name, "--out", path]).decode())
                    subprocess.check_call([auditctl, "key", "rotate", data, "--new-key", path, "--grace", "0",
                                           "--socket", d.socket], stdout=subprocess.DEVNULL)
                    c.append_many([event("acme", 100 * n + i) for i in range(5)])
                    size += 6
                    newest(c, new, size)
                    self.assertEqual(state.check(c), size)
                shown = c.key_successions()
                self.assertEqual(len(shown), 2)
                with open(state.path + ".keys") as f:
                    self.assertEqual(json.load(f), shown)

                class Forged:
                    def __init__(self, notes):
                        self.notes = notes

                    def checkpoint(self, old=0):
                        return c.checkpoint(old)

                    def key_successions(self):
                        return self.notes

                # The first statement with the replaced key's signature stripped: the new key's alone.
                text, _, sigs = shown[0].partition("\n\n")
                alone = text + "\n\n" + sigs.split("\n")[1] + "\n"
                fresh = CheckpointState(os.path.join(d.root, "fresh.checkpoint"), key)
                with self.assertRaisesRegex(ValueError, "refused"):
                    fresh.check(Forged([alone, shown[1]]))
                with self.assertRaises(Fork):
                    state.check(Forged(shown[:1]))
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
