#!/usr/bin/env python3
"""A TCP proxy on loopback in front of the object store, for outage tests: while the file
FLAG exists the store is unreachable (new connections are closed at once, open ones are cut);
when it is removed, traffic flows again.

usage: outage_proxy.py UPSTREAM_PORT FLAG   (prints "listening PORT" once it is up)
"""
import os
import socket
import sys
import threading
import time

UPSTREAM = int(sys.argv[1])
FLAG = sys.argv[2]
live = set()
lock = threading.Lock()


def down():
    return os.path.exists(FLAG)


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
        with lock:
            live.discard(s)


def cutter():
    while True:
        time.sleep(0.05)
        if down():
            with lock:
                doomed = list(live)
                live.clear()
            for s in doomed:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    print("listening %d" % srv.getsockname()[1], flush=True)
    threading.Thread(target=cutter, daemon=True).start()
    while True:
        c, _ = srv.accept()
        if down():
            c.close()
            continue
        try:
            u = socket.create_connection(("127.0.0.1", UPSTREAM))
        except OSError:
            c.close()
            continue
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            live.update((c, u))
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()


main()
