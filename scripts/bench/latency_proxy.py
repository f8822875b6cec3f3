#!/usr/bin/env python3
"""latency_proxy.py - a TCP proxy on 127.0.0.1 that delays every chunk sent
from the client to the server by DELAY ms: each HTTP request (one small
chunk) then waits about DELAY ms more before the server sees it, as over a
link with that much added round-trip time.  Replies pass unchanged.

Usage: latency_proxy.py --target PORT --delay-ms 20 --port-file FILE
       [--port-min 18000 --port-max 18999]
Writes the port it listens on to FILE; runs until killed.
"""
import argparse
import asyncio
import os
import random
import sys


async def pump(reader, writer, delay):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def serve(opts):
    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", opts.target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, uw, opts.delay_ms / 1000.0), pump(ur, cw, 0))

    span = opts.port_max - opts.port_min + 1
    start = random.randrange(span)
    for i in range(span):
        port = opts.port_min + (start + i) % span
        try:
            srv = await asyncio.start_server(handle, "127.0.0.1", port)
            break
        except OSError:
            continue
    else:
        sys.exit("latency_proxy: no free port")
    with open(opts.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(opts.port_file + ".tmp", opts.port_file)
    async with srv:
        await srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=20)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port-min", type=int, default=18000)
    ap.add_argument("--port-max", type=int, default=18999)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
