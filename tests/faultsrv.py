#!/usr/bin/env python3
"""faultsrv.py - a small HTTP/1.1 file server that injects faults, for the
remote-source tests (tests/check_source_http.c, tests/http_lib.sh).

Serves FILE at every path with single byte ranges, ETag/Last-Modified
computed from the file's mtime and size at each request (as nginx does, so a
file replaced by rename changes them), If-Match (412), If-Range (200 on a
mismatch) and keep-alive.  Listens on 127.0.0.1, on the first free port in
[--port-min, --port-max] from a random start, and writes it to --port-file.

Faults come from the control file (--ctl), read at every request: one line
"MODE [COUNT]".  When the file's content changes, the next COUNT requests
(default: all, -1) get MODE, later ones are served normally:
  ok           serve normally
  drop         close the connection without a reply
  503          answer 503 Service Unavailable
  slow         send the body in 4 KiB pieces, 2 ms apart
  short        send half of the body, then close the connection
  stall        send the headers and half of the body, then hang (until exit)
  etag         report another ETag; honour If-Match/If-Range against it
  etag-ignore  report another ETag, ignore If-Match/If-Range, serve other bytes
  badrange     a 206 whose Content-Range starts one byte later than asked
  full200      answer a range request with 200 and the whole file
Every request is logged to --log:
"GET RANGE if-match=V if-range=V mode=M auth=AUTHORIZATION-HEADER".
"""
import argparse
import email.utils
import http.server
import os
import random
import socket
import sys
import threading
import time

STATE = {"ctl": None, "mode": "ok", "left": 0}
LOCK = threading.Lock()


def next_mode(ctl):
    try:
        with open(ctl) as f:
            text = f.read()
    except OSError:
        text = "ok"
    with LOCK:
        if text != STATE["ctl"]:
            parts = text.split()
            STATE["ctl"] = text
            STATE["mode"] = parts[0] if parts else "ok"
            STATE["left"] = int(parts[1]) if len(parts) > 1 else -1
        if STATE["left"] == 0:
            return "ok"
        if STATE["left"] > 0:
            STATE["left"] -= 1
        return STATE["mode"]


def parse_range(h, size):
    if not h or not h.startswith("bytes=") or "," in h:
        return None
    a, _, b = h[6:].partition("-")
    if not a.isdigit():
        return None
    first = int(a)
    last = int(b) if b.isdigit() else size - 1
    if first >= size or last < first:
        return "bad"
    return first, min(last, size - 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, headers, body=b""):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        return body

    def do_GET(self):
        o = self.server.opts
        mode = next_mode(o.ctl)
        with open(o.log, "a") as lg:
            lg.write("GET %s if-match=%s if-range=%s mode=%s auth=%s\n" % (
                self.headers.get("Range"), self.headers.get("If-Match"),
                self.headers.get("If-Range"), mode, self.headers.get("Authorization")))
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "503":
            self.send(503, [("Content-Length", "0")])
            return
        self.serve_file(o.file, mode)

    def serve_file(self, path, mode):
        st = os.stat(path)
        etag = '"%x-%x"' % (st.st_mtime_ns, st.st_size)
        if mode in ("etag", "etag-ignore"):
            etag = '"other-%x"' % st.st_size
        lastmod = email.utils.formatdate(st.st_mtime, usegmt=True)
        with open(path, "rb") as f:
            data = f.read()
        if mode == "etag-ignore":
            data = bytes(b ^ 0x5A for b in data)
        size = len(data)
        im = self.headers.get("If-Match")
        if im and mode != "etag-ignore" and im.strip() not in ("*", etag):
            self.send(412, [("Content-Length", "0"), ("ETag", etag)])
            return
        rng = parse_range(self.headers.get("Range"), size)
        ir = self.headers.get("If-Range")
        if ir and mode != "etag-ignore" and ir.strip() not in (etag, lastmod):
            rng = None
        if rng == "bad":
            self.send(416, [("Content-Range", "bytes */%d" % size), ("Content-Length", "0")])
            return
        hdr = [("ETag", etag), ("Last-Modified", lastmod), ("Accept-Ranges", "bytes")]
        if rng is None or mode == "full200":
            code, body = 200, data
        else:
            first, last = rng
            code, body = 206, data[first:last + 1]
            shift = 1 if mode == "badrange" else 0
            hdr.append(("Content-Range", "bytes %d-%d/%d" % (first + shift, last + shift, size)))
        hdr.append(("Content-Length", str(len(body))))
        self.send(code, hdr)
        self.write_body(body, mode)

    def write_body(self, body, mode):
        if mode == "slow":
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i:i + 4096])
                self.wfile.flush()
                time.sleep(0.002)
            return
        if mode in ("short", "stall"):
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            if mode == "stall":
                time.sleep(3600)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port-min", type=int, default=18000)
    ap.add_argument("--port-max", type=int, default=18999)
    o = ap.parse_args()
    span = o.port_max - o.port_min + 1
    start = random.randrange(span)
    for i in range(span):
        port = o.port_min + (start + i) % span
        try:
            srv = Server(("127.0.0.1", port), Handler)
            break
        except OSError:
            continue
    else:
        sys.exit("faultsrv: no free port in %d-%d" % (o.port_min, o.port_max))
    srv.opts = o
    tmp = o.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, o.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
