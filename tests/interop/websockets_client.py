"""A strict WebSocket client (the `websockets` library) against a torsion
echo server: `python3 websockets_client.py ws://127.0.0.1:PORT/ COMPRESSED MAX`
(COMPRESSED: 1 if the server takes permessage-deflate; MAX: its message
limit). Prints one line per check; exits 1 at the first that fails."""

import asyncio
import os
import sys

import websockets
from websockets.exceptions import ConnectionClosed


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail else ""), flush=True)
    if not ok:
        sys.exit(1)


async def main(url, compressed, limit):
    async with websockets.connect(url, max_size=None, open_timeout=20) as ws:
        exts = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        check("permessage-deflate as the server was set", ("permessage-deflate" in exts) == compressed, exts)
        await ws.send("héllo, wörld ✓")
        check("text echoed", await ws.recv() == "héllo, wörld ✓")
        blob = os.urandom(limit // 2)
        await ws.send(blob)
        check("binary echoed", await ws.recv() == blob)
        text = "compressible " * 2000
        await ws.send(text)
        check("a long text echoed", await ws.recv() == text)
        # A fragmented message (the library sends an iterable as fragments).
        await ws.send(["frag", "ment", "ed ✓"])
        check("a fragmented message echoed whole", await ws.recv() == "fragmented ✓")
        for i in range(200):
            await ws.send(f"message {i}")
        got = [await ws.recv() for _ in range(200)]
        check("200 messages in order", got == [f"message {i}" for i in range(200)])
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 20)
        check("ping answered with a pong", True)
        await ws.close(1000, "done")
        check("closed cleanly", ws.close_code == 1000, f"{ws.close_code} {ws.close_reason}")

    async with websockets.connect(url, max_size=None, open_timeout=20) as ws:
        await ws.send(b"x" * (limit + 1))
        try:
            await asyncio.wait_for(ws.recv(), 20)
            check("a message over the limit refused", False, "it was echoed")
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            check("a message over the limit refused with 1009", code == 1009, f"{code}")


asyncio.run(main(sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])))
