"""
Server memory: RSS idle, and with 1,000 idle SMTP connections open (each
greeted and past EHLO), for zWMS and the aiosmtpd peer.  Run by hand:

    python bench/memory.py [--connections 1000]

The connections are held by this process (asyncio), whose file limit is
raised with resource.setrlimit.  Targets (issue 8): zWMS under 100 MB idle,
under 300 MB with 1,000 idle SMTP connections.
"""

import argparse
import asyncio
import os
import resource
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BENCH, Child, ZWMS, machine, ratio, scratch, table  # noqa: E402


async def hold(port, count):
    """Open C{count} connections, EHLO each; return (ok, errors, streams)."""
    streams, errors = [], 0

    async def one():
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readline()
            writer.write(b"EHLO idle.test\r\n")
            while True:
                line = await reader.readline()
                if not line or line[3:4] != b"-":
                    break
            if not line.startswith(b"250"):
                raise ConnectionError(line)
            streams.append(writer)
        except (OSError, ConnectionError):
            errors += 1

    for start in range(0, count, 100):  # in steps, so the backlog never overflows
        await asyncio.gather(*(one() for _ in range(start, min(count, start + 100))))
    return len(streams), errors, streams


async def close(streams):
    for w in streams:
        w.close()
    await asyncio.sleep(0.2)


def measure(port, stats, count):
    idle = stats.rss()
    loop = asyncio.new_event_loop()
    try:
        ok, errors, streams = loop.run_until_complete(hold(port, count))
        time.sleep(1.0)
        held = stats.rss()
        loop.run_until_complete(close(streams))
    finally:
        loop.close()
    time.sleep(1.0)
    return {"idle": idle, "held": held, "ok": ok, "errors": errors, "after": stats.rss()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=1000)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.connections + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    print("# memory -- %s; fd limit %s" % (machine(), resource.getrlimit(resource.RLIMIT_NOFILE)),
          flush=True)
    zw = peer = None
    peer_dir = scratch("peer-smtpd-")
    try:
        zw = ZWMS().configure(users=[("alice", "alice-pw")])
        zw.start()
        time.sleep(2.0)  # let start-up work settle
        peer = Child([sys.executable, os.path.join(BENCH, "peer_smtpd.py"), peer_dir])
        peer_port = int(peer.readline())
        time.sleep(0.5)
        z = measure(zw.ports["smtp"], zw.stats, a.connections)
        q = measure(peer_port, peer.stats, a.connections)
        rows = []
        for name, r, target in (("zwms", z, True), ("peer (aiosmtpd)", q, False)):
            rows.append([name, "%.0f" % r["idle"], "%.0f" % r["held"],
                         "%d (+%d failed)" % (r["ok"], r["errors"]),
                         "%.1f" % ((r["held"] - r["idle"]) * 1024 / max(1, r["ok"])),
                         "%.0f" % r["after"],
                         ("%s / %s" % ("yes" if r["idle"] < 100 else "NO",
                                       "yes" if r["held"] < 300 else "NO")) if target else "",
                         ratio(r["held"], q["held"]) if target else ""])
        print()
        print(table(["server", "RSS idle MB", "RSS with connections MB", "connections",
                     "KB per connection", "RSS after closing MB", "targets <100 / <300 MB",
                     "ratio to peer"], rows))
    finally:
        if peer is not None:
            peer.stop()
        if zw is not None:
            zw.stop()
        shutil.rmtree(peer_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
