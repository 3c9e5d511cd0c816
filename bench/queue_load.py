"""
Outbound queue load: the real server relays to a local sink through its
queue (DNS1 -> bench/sinkworld.py's DNS world, REMOTEPORT = the sink's
port, LOOPBACKMX=1, as tests/e2e/test_relay.py does).  Run by hand:

    python bench/queue_load.py [--messages 1000] [--size 2048] [--clients 10]
                               [--list 10000]

1. N messages, one remote recipient each, sent by SMTP from 127.0.0.1
   (loopback may relay): accept rate, and messages delivered per second =
   N / (last arrival at the sink - first submission).
2. One message to a `(NAME)` list of L remote addresses (data/NAME.list),
   sent on the submission port with AUTH: time until the 250 (accepted),
   time until the sink has all L copies, peak RSS of the server.
"""

import argparse
import os
import shutil
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BENCH, Child, Spy, ZWMS, machine, scratch, table  # noqa: E402


def sink_count(path):
    try:
        with open(path) as f:
            tx, rcpts, last = f.read().split()
        return int(tx), int(rcpts), float(last)
    except (OSError, ValueError):
        return 0, 0, 0.0


def wait_for(path, count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tx, _, last = sink_count(path)
        if tx >= count:
            return tx, last
        time.sleep(0.05)
    return sink_count(path)[0], None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--list", type=int, default=10000, help="list size (0 = skip)")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--profile", default=None,
                   help="record the zWMS server with py-spy into this collapsed-stack file")
    a = p.parse_args()
    print("# queue load -- %s" % machine(), flush=True)
    tmp = scratch("queue-bench-")
    status = os.path.join(tmp, "sink.status")
    world = Child([sys.executable, os.path.join(BENCH, "sinkworld.py"), status])
    zw = spy = None
    rows = []
    try:
        dns_port, sink_port = world.readline().split()
        zw = ZWMS().configure(settings=[("DNS1", "127.0.0.1:%s" % dns_port),
                                        ("REMOTEPORT", sink_port), ("LOOPBACKMX", "1")],
                              users=[("alice", "alice-pw")])
        if a.list:
            with open(os.path.join(zw.home, "data", "team.list"), "w") as f:
                # The first line is the list's sender (routing/lists.py).
                f.write("alice@example.com\n")
                f.writelines("l%d@far.test\n" % i for i in range(a.list))
        zw.start()
        print("zWMS pid %d home %s; sink pid %d" % (zw.pid, zw.home, world.pid), flush=True)
        if a.profile:
            spy = Spy(zw.pid, a.profile)

        if a.messages:
            zw.stats.reset_peak()
            cpu0 = zw.stats.cpu()
            gen = Child([sys.executable, os.path.join(BENCH, "smtpclient.py"), "--port",
                         str(zw.ports["smtp"]), "--messages", str(a.messages), "--size",
                         str(a.size), "--clients", str(a.clients), "--sender",
                         "alice@example.com", "--rcpt", "bob@far.test"])
            r = gen.finish()
            accepted = r["end"] - r["start"]
            got, last = wait_for(status, r["ok"], a.timeout)
            delivered = (last - r["start"]) if last else None
            print("  relay: %d accepted in %.2fs (%.0f msgs/s, errors %d %s); %d at the sink "
                  "%s; cpu %.1fs; peak RSS %.0f MB" % (
                      r["ok"], accepted, r["ok"] / accepted, r["errors"], r["error_kinds"],
                      got, "in %.2fs" % delivered if delivered else "(timed out)",
                      zw.stats.cpu() - cpu0, zw.stats.peak()), flush=True)
            rows.append(["%d msgs x %d B, 1 rcpt, C=%d" % (a.messages, a.size, a.clients),
                         "%.0f msgs/s" % (r["ok"] / accepted),
                         "%.0f msgs/s (%d in %.1f s)" % (got / delivered, got, delivered)
                         if delivered else "timed out (%d)" % got,
                         "%.0f" % zw.stats.peak()])

        if a.list:
            before, _, _ = sink_count(status)
            body = (b"From: alice@example.com\r\nTo: (team)\r\nSubject: bench list\r\n\r\n"
                    + b"news " * 200 + b"\r\n")
            client = smtplib.SMTP("127.0.0.1", zw.ports["submission"], timeout=600)
            client.ehlo("bench.test")
            client.login("alice", "alice-pw")
            # After the login: its argon2 hash alone takes 64 MB for a moment.
            zw.stats.reset_peak()
            cpu0 = zw.stats.cpu()
            t0 = time.monotonic()
            client.sendmail("alice@example.com", ["(team)"], body)
            accepted = time.monotonic() - t0
            client.quit()
            got, last = wait_for(status, before + a.list, a.timeout)
            done = (last - t0) if last else None
            print("  list of %d: accepted in %.2fs; %d copies at the sink %s; cpu %.1fs; "
                  "peak RSS %.0f MB" % (a.list, accepted, got - before,
                                        "in %.1fs (%.0f/s)" % (done, a.list / done)
                                        if done else "(timed out)",
                                        zw.stats.cpu() - cpu0, zw.stats.peak()), flush=True)
            rows.append(["(NAME) list of %d, 1 message" % a.list, "%.2f s" % accepted,
                         "%.1f s (%.0f copies/s)" % (done, a.list / done) if done
                         else "timed out (%d)" % (got - before), "%.0f" % zw.stats.peak()])
        print()
        print(table(["load", "accepted", "all at the sink", "peak RSS MB"], rows))
    finally:
        if spy is not None:
            spy.stop()
        if zw is not None:
            zw.stop()
        world.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
