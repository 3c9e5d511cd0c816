"""
SMTP inbound load: zWMS against the aiosmtpd peer (one file + fsync per
message), same load, same run.  Run by hand:

    python bench/smtp_load.py                      # 1 KB and 100 KB, C = 1, 10, 50
    python bench/smtp_load.py --sizes 1024 --clients 10 --repeat 3
    python bench/smtp_load.py --clients 500 --per-conn 1
    python bench/smtp_load.py --only zwms --profile /tmp/smtp.txt   # py-spy

Each scenario sends N messages of S bytes over C connections (K per
connection, 0 = one connection each for all), from --procs generator
processes (bench/smtpclient.py, asyncio).  Only a 250 after DATA counts.
Printed per target: msgs/s, MB/s, p50/p99 latency, errors, server CPU
seconds (/proc/PID/stat, all threads) and peak RSS (VmHWM, reset before
each run), and zWMS as a ratio to the peer.  Medians over --repeat runs,
the two servers taking turns.
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BENCH, Child, Spy, ZWMS, machine, median, ratio, scratch, table  # noqa: E402


def run_load(port, n, size, clients, per_conn, procs):
    """Run the generators against C{port}; the merged result."""
    procs = max(1, min(procs, clients))
    start_at = time.monotonic() + 0.5
    children = []
    for i in range(procs):
        c = clients // procs + (1 if i < clients % procs else 0)
        m = n // procs + (1 if i < n % procs else 0)
        children.append(Child([sys.executable, os.path.join(BENCH, "smtpclient.py"),
                               "--port", str(port), "--messages", str(m), "--size", str(size),
                               "--clients", str(c), "--per-conn", str(per_conn),
                               "--start-at", repr(start_at)]))
    results = [child.finish() for child in children]
    lat = sorted(l for r in results for l in r["latencies"])
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    ok = sum(r["ok"] for r in results)
    kinds = {}
    for r in results:
        for k, v in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    return {
        "ok": ok, "errors": sum(r["errors"] for r in results), "error_kinds": kinds,
        "elapsed": elapsed, "msgs": ok / elapsed if elapsed else 0,
        "mb": sum(r["bytes"] for r in results) / elapsed / 1e6 if elapsed else 0,
        "p50": lat[len(lat) // 2] * 1000 if lat else None,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
        "gen_cpu": sum(r["cpu"] for r in results),
    }


def measure(target, stats, n, size, clients, per_conn, procs):
    stats.reset_peak()
    cpu0 = stats.cpu()
    r = run_load(target, n, size, clients, per_conn, procs)
    r["cpu"] = stats.cpu() - cpu0
    r["cpu_pct"] = 100.0 * r["cpu"] / r["elapsed"] if r["elapsed"] else 0
    r["rss"] = stats.peak()
    return r


def summary(runs):
    keys = ("msgs", "mb", "p50", "p99", "errors", "cpu_pct", "rss", "gen_cpu", "elapsed")
    return {k: median([r[k] for r in runs]) for k in keys}


def fmt(v, spec):
    return "-" if v is None else spec % v


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1024,102400", help="message sizes in bytes")
    p.add_argument("--clients", default="1,10,50", help="concurrent connections")
    p.add_argument("--per-conn", type=int, default=0, help="messages per connection, 0 = all")
    p.add_argument("--messages", type=int, default=0,
                   help="messages per scenario (default 3000 for small, 1000 for >= 50 KB)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--procs", type=int, default=2, help="generator processes")
    p.add_argument("--only", choices=("zwms", "peer"), default=None)
    p.add_argument("--backlog", type=int, default=None,
                   help="listen queue of the zWMS listeners (default: Twisted's 50)")
    p.add_argument("--profile", default=None,
                   help="record the zWMS server with py-spy into this collapsed-stack file")
    a = p.parse_args()

    sizes = [int(s) for s in a.sizes.split(",")]
    clients = [int(c) for c in a.clients.split(",")]
    print("# SMTP inbound load -- %s" % machine(), flush=True)

    servers = {}
    zw = peer = peer_dir = spy = None
    try:
        if a.only != "peer":
            zw = ZWMS(backlog=a.backlog).configure(users=[("alice", "alice-pw")])
            zw.start()
            servers["zwms"] = (zw.ports["smtp"], zw.stats)
            print("zWMS pid %d home %s, listen backlog %s" % (zw.pid, zw.home,
                                                              a.backlog or "50 (default)"),
                  flush=True)
            if a.profile:
                spy = Spy(zw.pid, a.profile)
        if a.only != "zwms":
            peer_dir = scratch("peer-smtpd-")
            peer = Child([sys.executable, os.path.join(BENCH, "peer_smtpd.py"), peer_dir])
            servers["peer"] = (int(peer.readline()), peer.stats)
            print("peer (aiosmtpd + fsync) pid %d dir %s" % (peer.pid, peer_dir), flush=True)

        rows = []
        for size in sizes:
            for c in clients:
                n = a.messages or (3000 if size < 50000 else 1000)
                n = max(n, c * (a.per_conn or 1))
                runs = {name: [] for name in servers}
                for _ in range(a.repeat):
                    for name, (port, stats) in servers.items():
                        runs[name].append(measure(port, stats, n, size, c, a.per_conn,
                                                  a.procs))
                        last = runs[name][-1]
                        print("  %-4s %6dB c=%-3d %7.0f msgs/s %7.2f MB/s p50 %s p99 %s "
                              "err %d %s cpu %.0f%% rss %.0f MB gen-cpu %.1fs" % (
                                  name, size, c, last["msgs"], last["mb"],
                                  fmt(last["p50"], "%.1fms"), fmt(last["p99"], "%.1fms"),
                                  last["errors"], last["error_kinds"] or "", last["cpu_pct"],
                                  last["rss"], last["gen_cpu"]), flush=True)
                s = {name: summary(r) for name, r in runs.items()}
                z, q = s.get("zwms"), s.get("peer")
                for name in servers:
                    v = s[name]
                    rows.append([
                        "%d KB" % (size // 1024), c, name,
                        fmt(v["msgs"], "%.0f"), fmt(v["mb"], "%.2f"),
                        fmt(v["p50"], "%.1f"), fmt(v["p99"], "%.1f"), fmt(v["errors"], "%d"),
                        fmt(v["cpu_pct"], "%.0f%%"), fmt(v["rss"], "%.0f"),
                        ratio(z["msgs"], q["msgs"]) if (z and q and name == "zwms") else "",
                        ratio(z["p50"], q["p50"]) if (z and q and name == "zwms") else "",
                    ])
        print()
        print("N messages per scenario: %s; K per connection: %s; medians of %d; "
              "%d generator processes" % (a.messages or "3000 (< 50 KB) / 1000 (>= 50 KB)",
                                          a.per_conn or "all", a.repeat, a.procs))
        print(table(["size", "C", "server", "msgs/s", "MB/s", "p50 ms", "p99 ms", "errors",
                     "server CPU", "peak RSS MB", "msgs/s ratio", "p50 ratio"], rows))
    finally:
        if spy is not None:
            spy.stop()
        if peer is not None:
            peer.stop()
        if peer_dir:
            shutil.rmtree(peer_dir, ignore_errors=True)
        if zw is not None:
            zw.stop()


if __name__ == "__main__":
    main()
