"""
Rough SMTP inbound figure: N messages of S bytes over C connections to a real
`twistd zwms` on 127.0.0.1, counting 250s after DATA.  Run by hand:

    python bench/smtp_inbound.py [--messages 2000] [--size 1024] [--clients 10]

Prints msgs/s, MB/s and p50/p99 latency.  (The full benchmark suite with the
aiosmtpd peer is issue 8.)
"""

import argparse
import os
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.e2e.server import Server  # noqa: E402


def worker(port, count, data, latencies, errors):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("bench")
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                s.sendmail("bench@remote.example", ["alice@example.com"], data)
                latencies.append(time.perf_counter() - t0)
            except smtplib.SMTPException:
                errors.append(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--clients", type=int, default=10)
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="zwms-bench-")
    server = Server(os.path.join(tmp, "home"))
    try:
        server.admin("config", "set", "DOMAIN", "example.com")
        server.admin("user", "add", "alice", "pw")
        server.start()
        head = b"From: bench@remote.example\r\nTo: alice@example.com\r\nSubject: bench\r\n\r\n"
        data = head + (b"x" * 76 + b"\r\n") * max(1, (a.size - len(head)) // 78)
        latencies, errors = [], []
        per = a.messages // a.clients
        threads = [threading.Thread(target=worker, args=(server.ports["smtp"], per, data,
                                                         latencies, errors))
                   for _ in range(a.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        n = len(latencies)
        latencies.sort()
        print("messages=%d size=%dB clients=%d elapsed=%.2fs" % (n, len(data), a.clients, elapsed))
        print("msgs/s=%.0f MB/s=%.2f p50=%.1fms p99=%.1fms errors=%d" % (
            n / elapsed, n * len(data) / elapsed / 1e6,
            statistics.median(latencies) * 1000, latencies[int(n * 0.99) - 1] * 1000,
            len(errors)))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
