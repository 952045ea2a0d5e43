#!/usr/bin/env python3
"""Writes the first entry of each shape in an NDJSON file of entries to DIR/shape-N (N its line):
the seeds of the fuzzer's entry target (FuzzTesting/make-seeds), one per combination of
category, actor type, on_behalf_of, idempotency key, person target, more than three metadata
keys and a personal list.

    scripts/fuzz-entry-seeds.py EVENTS.ndjson DIR
"""
import json
import os
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fuzz-entry-seeds.py EVENTS.ndjson DIR")
    seen = set()
    with open(sys.argv[1], "rb") as f:
        for n, line in enumerate(f, 1):
            e = json.loads(line)
            shape = (
                e["category"],
                e["actor"]["type"],
                "on_behalf_of" in e,
                "idempotency_key" in e,
                e["target"]["type"] in ("user", "person"),
                len(e.get("metadata", {})) > 3,
                "personal" in e,
            )
            if shape in seen:
                continue
            seen.add(shape)
            with open(os.path.join(sys.argv[2], "shape-%d" % n), "wb") as out:
                out.write(line.rstrip(b"\n"))


if __name__ == "__main__":
    main()
