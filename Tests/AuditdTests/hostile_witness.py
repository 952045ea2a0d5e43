#!/usr/bin/env python3
"""A hostile witness for the daemon's tests: answers every add-checkpoint with a body that never
ends (huge) or one byte a second (slow), or (count) refuses each with a 503 and counts them,
the count served to GET. On loopback only; it serves until it is killed.

usage: hostile_witness.py MODE   (prints "listening PORT" once it is up)
"""
import http.server
import sys
import time

MODE = sys.argv[1]
posts = 0


class Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(200, b"%d\n" % posts)

    def do_POST(self):
        global posts
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if MODE == "count":
            posts += 1
            self.reply(503, b"counted\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(3 << 30))
        self.end_headers()
        try:
            if MODE == "huge":
                chunk = b"x" * (1 << 16)
                for _ in range((3 << 30) // len(chunk)):
                    self.wfile.write(chunk)
            else:
                for _ in range(3600):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
server.daemon_threads = True
print("listening", server.server_address[1], flush=True)
server.serve_forever()
