#!/usr/bin/env python3
"""fields.py EVENTS COUNT > FIELDS: what format-spec §5.4.1's rule commits of each of the first
COUNT events (NDJSON), one line an entry, for crypto-floor.c: the number of subjects, then for
each subject \\x01 SUBJECT and for each of its fields \\x02 PATH \\x03 VALUE. The rule here
mirrors Personal.plan (human actors and principals, user/person targets); metadata declared
personal is not in the workload."""
import json
import sys

if len(sys.argv) != 3:
    sys.exit("usage: fields.py EVENTS COUNT > FIELDS")
count = int(sys.argv[2])
with open(sys.argv[1]) as events:
    for i, line in enumerate(events):
        if i >= count:
            break
        e = json.loads(line)
        actor, target = e.get("actor", {}), e.get("target", {})
        principal, source = e.get("on_behalf_of") or {}, e.get("source", {})
        rows = {}

        def add(subject, path, value):
            if value is not None:
                rows.setdefault(subject, []).append((path, value))

        if actor.get("type") == "human":
            add(actor["id"], "actor.id", actor["id"])
            add(actor["id"], "actor.name", actor.get("name"))
        if principal.get("type") == "human":
            add(principal["id"], "on_behalf_of.id", principal["id"])
        if target.get("type") in ("user", "person"):
            add(target["id"], "target.id", target["id"])
            add(target["id"], "target.name", target.get("name"))
        if actor.get("type") == "human":
            add(actor["id"], "source.ip", source.get("ip"))
            add(actor["id"], "source.user_agent", source.get("user_agent"))
        sys.stdout.write(
            str(len(rows))
            + "".join(
                "\x01" + s + "".join("\x02" + p + "\x03" + v for p, v in fs) for s, fs in rows.items()
            )
            + "\n"
        )
