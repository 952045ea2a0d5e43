#!/usr/bin/env python3
"""A man in the middle for the console's browser test: forwards every GET to auditd and, in
the answers about entry SEQ (its line in a page, and the entry itself with its proof), turns
"outcome":"denied" into "outcome":"success", the edit an attacker would want. The proofs the
console checks must then fail for that entry, and only for it.

usage: tamper_proxy.py UPSTREAM_PORT SEQ   (prints "listening PORT" once it is up)
"""
import http.server
import re
import sys
import urllib.error
import urllib.request

UPSTREAM = int(sys.argv[1])
SEQ = int(sys.argv[2])
ENTRY = re.compile(rb'(\{"seq":%d,[^{]*?"entry":\{[^\n]*?"outcome":")denied(")' % SEQ)


class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        req = urllib.request.Request(f"http://127.0.0.1:{UPSTREAM}{self.path}")
        if self.headers.get("Authorization"):
            req.add_header("Authorization", self.headers["Authorization"])
        try:
            r = urllib.request.urlopen(req)
            status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        body = ENTRY.sub(rb"\1success\2", body)
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
