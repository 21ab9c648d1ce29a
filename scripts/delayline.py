#!/usr/bin/env python3
"""A TCP delay line: what `tc netem delay` would do, for kernels without sch_netem.

    delayline.py --delay-ms 50 LISTEN_HOST:PORT=TARGET_HOST:PORT ...

Every byte read from either side of a connection is written to the other side DELAY ms later, in
order. Used by scripts/netlab.sh in the switch namespace: peers connect to a peer's advertised
address, which the switch owns, and reach its real address through here (rates are set by tc tbf
on the links, not here). A side that reads slowly (a rate-limited link) pauses reading on the
other side once 8 MiB are queued, so memory stays bounded. Stops on SIGTERM/SIGINT.
"""
import argparse
import asyncio
import signal
import sys
import time

LIMIT = 8 << 20


async def pump(reader, writer, delay):
    queue = asyncio.Queue()
    room = asyncio.Event()
    room.set()
    queued = 0

    async def send():
        nonlocal queued
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            queued -= len(data)
            if queued < LIMIT:
                room.set()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            await room.wait()
            data = await reader.read(65536)
            if not data:
                break
            queued += len(data)
            if queued >= LIMIT:
                room.clear()
            queue.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def serve(listen, target, delay):
    host, port = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def accepted(creader, cwriter):
        try:
            sreader, swriter = await asyncio.wait_for(asyncio.open_connection(thost, int(tport)), 10)
        except (OSError, asyncio.TimeoutError):
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay))

    return await asyncio.start_server(accepted, host, int(port), reuse_address=True)


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("routes", nargs="+", help="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    args = ap.parse_args()
    servers = []
    for route in args.routes:
        listen, _, target = route.partition("=")
        if not target:
            sys.exit(f"delayline: bad route '{route}' (want LISTEN_HOST:PORT=TARGET_HOST:PORT)")
        servers.append(await serve(listen, target, args.delay_ms / 1000))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"delayline: {len(servers)} routes, {args.delay_ms:g} ms each way", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
