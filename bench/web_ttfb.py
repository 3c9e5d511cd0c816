"""
Web time to first byte: the webmail Inbox first page with 50,000 messages,
and the admin user list with 100,000 accounts.  Run by hand:

    python bench/web_ttfb.py [--messages 50000] [--accounts 100000] [--requests 20]

The big home is written directly before the server starts: one account made
by zwms-admin, its account.cfg copied (id= changed) into N-1 more
data/userd/ID/ folders; the messages as data/userd/alice/mail/Inbox/NAME.eml
files and `zwms-admin reindex alice`.  The browser logs in through the forms
(CSRF field, cookies), then GETs each page --requests times on one keep-alive
connection; TTFB = from the request written to the status line read
(loopback, so this is the server's time).  Prints the first (cold) request,
the median and the worst.
"""

import argparse
import http.client
import os
import re
import statistics
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Spy, ZWMS, machine, table  # noqa: E402

ADMIN_PW = "bench-admin-pw"


class Browser:
    """Cookies and the last CSRF token over one keep-alive connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies = {}
        self.csrf = ""

    def request(self, method, path, form=None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        t0 = time.perf_counter()
        response = self.conn.getresponse()  # returns once the status line is in
        ttfb = time.perf_counter() - t0
        data = response.read()
        total = time.perf_counter() - t0
        for raw in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        m = re.search(rb'name="csrf" value="([^"]+)"', data)
        if m:
            self.csrf = m.group(1).decode()
        return response.status, response.headers, data, ttfb, total

    def post(self, path, form):
        form = dict(form, csrf=self.csrf)
        return self.request("POST", path, form)


def populate(zw, accounts, messages):
    """Write the accounts and the messages straight into the home."""
    userd = os.path.join(zw.home, "data", "userd")
    with open(os.path.join(userd, "alice", "account.cfg")) as f:
        template = f.read()
    t = time.monotonic()
    for i in range(accounts - 2):  # alice and bob exist
        aid = "u%06d" % i
        os.mkdir(os.path.join(userd, aid))
        with open(os.path.join(userd, aid, "account.cfg"), "w") as f:
            f.write(re.sub(r"(?m)^id=alice$", "id=" + aid, template))
    print("  %d account folders written in %.1fs" % (accounts, time.monotonic() - t), flush=True)
    t = time.monotonic()
    inbox = os.path.join(userd, "alice", "mail", "Inbox")
    os.makedirs(inbox, exist_ok=True)
    base = time.time_ns() - messages * 10 ** 6
    for i in range(messages):
        data = ("From: Sender %d <s%d@remote.test>\r\nTo: alice@example.com\r\n"
                "Subject: message number %d\r\nDate: Thu, 26 Nov 2026 09:00:00 +0000\r\n"
                "Message-ID: <%d@bench.test>\r\n\r\n%s\r\n"
                % (i, i % 97, i, i, "body text " * 60)).encode()
        with open(os.path.join(inbox, "%d.%06x.eml" % (base + i * 10 ** 6, i)), "wb") as f:
            f.write(data)
    zw.admin("reindex", "alice")
    print("  %d messages written and indexed in %.1fs" % (messages, time.monotonic() - t),
          flush=True)


def measure(browser, path, n, spy_pid=None, spy_file=None):
    spy = Spy(spy_pid, spy_file) if spy_file else None
    try:
        return _measure(browser, path, n)
    finally:
        if spy is not None:
            spy.stop()


def _measure(browser, path, n):
    results = []
    for _ in range(n):
        status, _, data, ttfb, total = browser.request("GET", path)
        if status != 200:
            raise RuntimeError("GET %s: %s\n%s" % (path, status, data[:500]))
        results.append((ttfb, total, len(data)))
    ttfbs = [r[0] * 1000 for r in results]
    return {"cold": ttfbs[0], "median": statistics.median(ttfbs), "max": max(ttfbs),
            "total_median": statistics.median(r[1] * 1000 for r in results),
            "bytes": results[-1][2]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=50000)
    p.add_argument("--accounts", type=int, default=100000)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--profile", default=None,
                   help="py-spy the server into PREFIX.inbox.txt and PREFIX.users.txt")
    a = p.parse_args()
    print("# web TTFB -- %s" % machine(), flush=True)
    zw = ZWMS().configure(users=[("alice", "alice-pw"), ("bob", "bob-pw")])
    try:
        zw.admin("admin", "passwd", ADMIN_PW)
        populate(zw, a.accounts, a.messages)
        zw.start()
        print("zWMS pid %d; idle RSS %.0f MB" % (zw.pid, zw.stats.rss()), flush=True)
        rows = []

        mail = Browser(zw.ports["web"])
        mail.request("GET", "/mail/")
        status, headers, data, _, _ = mail.post("/mail/login", {"login": "alice",
                                                                "password": "alice-pw"})
        if status != 303:
            raise RuntimeError("webmail login: %s %s" % (status, data[:300]))
        m = re.match(r"^(?:https?://[^/]+)?(/mail/box/[^/]+/)", headers["Location"])
        inbox = m.group(1) + "folder/Inbox"
        cpu0 = zw.stats.cpu()
        r = measure(mail, inbox, a.requests, zw.pid,
                    a.profile and a.profile + ".inbox.txt")
        r["cpu"] = (zw.stats.cpu() - cpu0) / a.requests * 1000
        rows.append(["webmail Inbox page 1, %d messages" % a.messages, r])

        admin = Browser(zw.ports["web"])
        admin.request("GET", "/admin/login")
        status, _, data, _, _ = admin.post("/admin/login", {"login": "root",
                                                            "password": ADMIN_PW})
        if status != 303:
            raise RuntimeError("admin login: %s %s" % (status, data[:300]))
        cpu0 = zw.stats.cpu()
        r = measure(admin, "/admin/users/", a.requests, zw.pid,
                    a.profile and a.profile + ".users.txt")
        r["cpu"] = (zw.stats.cpu() - cpu0) / a.requests * 1000
        rows.append(["admin user list page 1, %d accounts" % a.accounts, r])

        print()
        print("%d requests each, one keep-alive connection; target: under 50 ms" % a.requests)
        print(table(["page", "TTFB cold ms", "TTFB median ms", "TTFB max ms",
                     "full page median ms", "server CPU ms/request", "page KB", "< 50 ms"],
                    [[name, "%.1f" % r["cold"], "%.1f" % r["median"], "%.1f" % r["max"],
                      "%.1f" % r["total_median"], "%.1f" % r["cpu"], "%.0f" % (r["bytes"] / 1024),
                      "yes" if r["median"] < 50 else "NO (%.1fx)" % (r["median"] / 50)]
                     for name, r in rows]))
        print("server RSS after: %.0f MB (peak %.0f MB)" % (zw.stats.rss(), zw.stats.peak()))
    finally:
        zw.stop()


if __name__ == "__main__":
    main()
