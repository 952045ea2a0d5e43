"""The client's codec against the wire vectors of format-spec.md §9.1 (read from the spec)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from auditlog_client import ACK, APPEND, ERROR, PING, Ack, AuditError, _decode, _frame  # noqa: E402

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "format-spec.md")


def wire_vectors():
    out = {}
    with open(SPEC, encoding="utf-8") as f:
        for line in f:
            if line.startswith("wire-vector "):
                name = line.split()[1]
                out[name] = bytes.fromhex(line.rstrip("\n").rsplit(": ", 1)[1].replace(" ", ""))
    return out


class WireVectorTests(unittest.TestCase):
    def test_the_specs_wire_vectors(self):
        v = wire_vectors()
        for name in ("APPEND", "PING", "ACK", "ERROR"):
            self.assertIn(name, v, f"format-spec.md has no wire-vector {name}")
        self.assertEqual(_frame(APPEND, 1, b"{}"), v["APPEND"])
        self.assertEqual(_frame(PING, 4), v["PING"])
        ack = v["ACK"]
        self.assertEqual((ack[4], int.from_bytes(ack[5:13], "little")), (ACK, 2))
        self.assertEqual(_decode(ack[4], ack[13:]), Ack(5, 3, bytes(range(32)).hex(), False))
        err = v["ERROR"]
        self.assertEqual(err[4], ERROR)
        e = _decode(err[4], err[13:])
        self.assertIsInstance(e, AuditError)
        self.assertEqual((e.code, e.message), (1, "field 'org': is required"))


if __name__ == "__main__":
    unittest.main()
