#!/usr/bin/env python3
"""A man in the middle for the console's browser test: forwards every GET to auditd and edits
the answers about entry SEQ (its item in a page, and the entry itself with its proof), the
edits an attacker would want. The proofs the console checks must then fail for that entry, and
only for it.

usage: tamper_proxy.py UPSTREAM SEQ [MODE]   (prints "listening PORT" once it is up)

UPSTREAM is auditd's port, or @FILE: the port written in FILE, read at each request (one origin
for the browser while the daemon behind it changes).

MODE:
  edit     turn "outcome":"denied" into "outcome":"success" wherever the entry appears
  dup      leave the genuine "entry" member and add an edited second one after it
           (JSON.parse keeps the last; a check that reads the first would pass)
  pending  edit the entry, recompute its link and hash so they agree with the edit, and
           answer "checkpoint_pending": true instead of the proof
  drop     leave the entry's item out of every page (the entry itself still answers)
  twice    show the entry's item twice in every page
  personal change the personal value "usr_bob" to "usr_eve" beside the entry (format-spec
           §5.4.4), in its item and in its answer alike: the signed bytes are untouched
  personaltail  change "198.51.100.4", a value of the same person's group whose commitment
           another field holds (format-spec §5.4.1), to "198.51.100.5" beside the entry
  hideN    hide the entry's content as if erasure record N withheld it (format-spec §5.4.3):
           no "entry" or "personal", "withheld" naming N, in its item and in its answer
  forgekeys  in /v1/session, strip the replaced key's signature from every key succession
           (format-spec §8.8): each is then signed by the new key alone, a forgery
  none     forward only
"""
import hashlib
import http.server
import json
import re
import sys
import urllib.error
import urllib.request

UPSTREAM = sys.argv[1]
SEQ = int(sys.argv[2])
MODE = sys.argv[3] if len(sys.argv) > 3 else "edit"
ITEM = re.compile(rb'\{"seq":%d,' % SEQ)


def value_end(b, i):
    """The end of the JSON object or array starting at b[i]."""
    depth, n = 0, len(b)
    while i < n:
        c = b[i:i + 1]
        if c == b'"':
            i += 1
            while b[i:i + 1] != b'"':
                i += 2 if b[i:i + 1] == b"\\" else 1
        elif c in (b"{", b"["):
            depth += 1
        elif c in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unterminated")


def entry_span(b, start):
    """(start, end) of the "entry" object of the item starting at b[start]."""
    k = b.index(b'"entry":', start) + len(b'"entry":')
    return k, value_end(b, k)


def edit(raw):
    return raw.replace(b'"outcome":"denied"', b'"outcome":"success"')


def tamper(body, single):
    m = ITEM.search(body)
    if not m or MODE == "none":
        return body
    if MODE.startswith("hide"):
        claim = b',"withheld":{"authority":"DPO","entry":%d}}' % int(MODE[4:])
        end = len(body) if single else value_end(body, m.start())
        item = body[m.start():end] if not single else body
        s, e = entry_span(item, 0)
        item = item[:s - len(b',"entry":')] + item[e:]
        item = re.sub(rb',"personal":\{.*?\}\}(?=[,}])', b"", item)
        if not single:
            item = item[:-1] + claim
            return body[:m.start()] + item + body[end:]
        return item[:-1] + claim
    if MODE in ("personal", "personaltail"):
        was, now = ((b'"value":"usr_bob"', b'"value":"usr_eve"') if MODE == "personal"
                    else (b'"value":"198.51.100.4"', b'"value":"198.51.100.5"'))
        if single:
            return body.replace(was, now)
        end = value_end(body, m.start())
        item = body[m.start():end].replace(was, now)
        return body[:m.start()] + item + body[end:]
    if MODE in ("drop", "twice"):
        if single:
            return body
        end = value_end(body, m.start())
        if MODE == "twice":
            return body[:end] + b"," + body[m.start():end] + body[end:]
        # The item and the comma that joins it to a neighbour.
        if body[end:end + 1] == b",":
            return body[:m.start()] + body[end + 1:]
        return body[:m.start() - 1] + body[end:] if body[m.start() - 1:m.start()] == b"," else body[:m.start()] + body[end:]
    s, e = entry_span(body, m.start())
    raw = body[s:e]
    if MODE == "edit":
        return body[:s] + edit(raw) + body[e:]
    if MODE == "dup":
        return body[:e] + b',"entry":' + edit(raw) + body[e:]
    # pending: the edited entry, with a link and hash that agree with it, and no proof.
    new = edit(raw)
    out = body[:s] + new + body[e:]
    if not single:
        return out
    obj = json.loads(out)
    link = bytearray(bytes.fromhex(obj["link"]))
    link[17:49] = hashlib.sha256(new).digest()
    rest = {k: v for k, v in obj.items() if k not in ("entry", "checkpoint", "proof", "tree_size")}
    rest.update(link=bytes(link).hex(), hash=hashlib.sha256(b"\x00" + bytes(link)).hexdigest(), checkpoint_pending=True)
    return json.dumps(rest, separators=(",", ":")).encode()[:-1] + b',"entry":' + new + b"}"


class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        port = int(open(UPSTREAM[1:]).read()) if UPSTREAM.startswith("@") else int(UPSTREAM)
        req = urllib.request.Request(f"http://127.0.0.1:{port}{self.path}")
        if self.headers.get("Authorization"):
            req.add_header("Authorization", self.headers["Authorization"])
        try:
            r = urllib.request.urlopen(req)
            status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        if MODE == "forgekeys":
            if self.path.split("?")[0] == "/v1/session" and status == 200:
                s = json.loads(body)
                forged = []
                for note in s.get("key_successions", []):
                    text, _, sigs = note.partition("\n\n")
                    forged.append(text + "\n\n" + "\n".join(sigs.rstrip("\n").split("\n")[1:]) + "\n")
                s["key_successions"] = forged
                body = json.dumps(s).encode()
        elif self.path.split("?")[0].rstrip("/").endswith("/entries/%d" % SEQ) or "/entries?" in self.path or self.path.endswith("/entries"):
            body = tamper(body, single=self.path.split("?")[0].endswith("/entries/%d" % SEQ))
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
