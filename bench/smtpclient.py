"""
The SMTP load generator: raw SMTP over asyncio streams (no pipelining),
meant to run as its own process (smtp_load.py starts one or more):

    python bench/smtpclient.py --port 2525 --messages 2000 --size 1024 \
        --clients 10 [--per-conn 0] [--start-at MONOTONIC]

C connections share N messages; each connection sends K messages and QUITs
(K = 0: it keeps one connection for all), then reconnects while messages
remain.  A message counts only when the reply after the final "." is 250.
Latency is from "MAIL FROM" to that 250 (with --per-conn 1, from the
connect).  Prints one JSON object: ok, errors, bytes, latencies, start, end
(time.monotonic(), which is system-wide on Linux, so several generator
processes can be merged).
"""

import argparse
import asyncio
import json
import resource
import sys
import time


def message(size, sender, rcpt):
    """A message of about C{size} bytes, lines of 78, ending CRLF."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n"
            "Message-ID: <bench@bench.test>\r\n\r\n" % (sender, rcpt)).encode()
    lines = max(1, (size - len(head)) // 78)
    return head + (b"x" * 76 + b"\r\n") * lines


class Failed(Exception):
    """The server answered something else than expected."""


#: Seconds to wait for any one reply (a connection the server's listen queue
#: dropped looks open to the client and would wait forever).
REPLY_TIMEOUT = 30.0


async def reply(reader):
    """One (possibly multi-line) reply: its code."""
    while True:
        line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT)
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def expect(reader, writer, line, codes):
    if line is not None:
        writer.write(line)
    code = await reply(reader)
    if code not in codes:
        raise Failed(code)
    return code


class Load:
    def __init__(self, args):
        self.a = args
        self.remaining = args.messages
        self.ok = 0
        self.errors = 0
        self.error_kinds = {}
        self.latencies = []
        self.data = message(args.size, args.sender, args.rcpt) + b".\r\n"
        self.mail = ("MAIL FROM:<%s>\r\n" % args.sender).encode()
        self.rcpt = ("RCPT TO:<%s>\r\n" % args.rcpt).encode()

    def take(self):
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def error(self, exc):
        self.errors += 1
        key = type(exc).__name__ + (":%s" % exc.args[0] if isinstance(exc, Failed) else "")
        self.error_kinds[key] = self.error_kinds.get(key, 0) + 1

    async def connection(self):
        """One connection's life; False when no message was left to send."""
        if not self.take():
            return False
        t_connect = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.a.host, self.a.port), REPLY_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            self.error(e)
            await asyncio.sleep(0.05)
            return True
        try:
            await expect(reader, writer, None, (220,))
            await expect(reader, writer, b"EHLO bench.test\r\n", (250,))
            sent = 0
            first = True
            while True:
                t0 = t_connect if (first and self.a.per_conn == 1) else time.monotonic()
                first = False
                try:
                    await expect(reader, writer, self.mail, (250,))
                    await expect(reader, writer, self.rcpt, (250, 251))
                    await expect(reader, writer, b"DATA\r\n", (354,))
                    await expect(reader, writer, self.data, (250,))
                    self.ok += 1
                    self.latencies.append(time.monotonic() - t0)
                except Failed as e:
                    self.error(e)
                    await expect(reader, writer, b"RSET\r\n", (250,))
                sent += 1
                if (self.a.per_conn and sent >= self.a.per_conn) or not self.take():
                    break
            writer.write(b"QUIT\r\n")
            try:
                await reply(reader)
            except (ConnectionError, asyncio.TimeoutError):
                pass
        except (OSError, ConnectionError, Failed, asyncio.TimeoutError) as e:
            self.error(e)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        return True

    async def worker(self):
        while await self.connection():
            pass

    async def run(self):
        if self.a.start_at:
            await asyncio.sleep(max(0.0, self.a.start_at - time.monotonic()))
        self.start = time.monotonic()
        await asyncio.gather(*(self.worker() for _ in range(self.a.clients)))
        self.end = time.monotonic()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--per-conn", type=int, default=0,
                   help="messages per connection (0 = one connection for all)")
    p.add_argument("--sender", default="bench@remote.test")
    p.add_argument("--rcpt", default="alice@example.com")
    p.add_argument("--start-at", type=float, default=0.0)
    a = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    load = Load(a)
    asyncio.run(load.run())
    json.dump({"ok": load.ok, "errors": load.errors, "error_kinds": load.error_kinds,
               "bytes": load.ok * (len(load.data) - 3), "latencies": load.latencies,
               "start": load.start, "end": load.end, "cpu": time.process_time()}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
