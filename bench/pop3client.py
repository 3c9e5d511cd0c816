"""
The POP3 load generator (asyncio, its own process): each user logs in
(USER/PASS), LISTs, RETRs every message, QUITs; all users in parallel.

    python bench/pop3client.py --port 1100 --users u1:pw1,u2:pw2 [--start-at T]

Prints one JSON object: retrieved, bytes, errors, start, end, cpu.
"""

import argparse
import asyncio
import json
import sys
import time


class Failed(Exception):
    """A -ERR or a short answer."""


async def status(reader):
    line = await reader.readline()
    if not line.startswith(b"+OK"):
        raise Failed(line[:80])
    return line


async def multiline(reader, writer, command):
    """
    Send C{command}; read its whole multi-line answer in one go (up to the
    CRLF "." CRLF, status line included): (lines, bytes of the lines).
    """
    writer.write(command)
    data = await reader.readuntil(b"\r\n.\r\n")
    if not data.startswith(b"+OK"):
        raise Failed(data[:80])
    head = data.index(b"\r\n") + 2
    body = data[head:-3]
    return body.count(b"\r\n"), len(body)


async def session(host, port, user, password, out):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    try:
        await status(reader)
        writer.write(b"USER %s\r\n" % user.encode())
        await status(reader)
        writer.write(b"PASS %s\r\n" % password.encode())
        await status(reader)
        count, _ = await multiline(reader, writer, b"LIST\r\n")
        for i in range(1, count + 1):
            _, size = await multiline(reader, writer, b"RETR %d\r\n" % i)
            out["retrieved"] += 1
            out["bytes"] += size
        writer.write(b"QUIT\r\n")
        await status(reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def run(a, out):
    if a.start_at:
        await asyncio.sleep(max(0.0, a.start_at - time.monotonic()))
    out["start"] = time.monotonic()
    users = [u.split(":", 1) for u in a.users.split(",") if u]
    results = await asyncio.gather(*(session(a.host, a.port, u, pw, out) for u, pw in users),
                                   return_exceptions=True)
    out["end"] = time.monotonic()
    out["errors"] = [repr(r) for r in results if isinstance(r, BaseException)]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", required=True, help="ID:PASSWORD,...")
    p.add_argument("--start-at", type=float, default=0.0)
    a = p.parse_args(argv)
    out = {"retrieved": 0, "bytes": 0}
    asyncio.run(run(a, out))
    out["cpu"] = time.process_time()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
