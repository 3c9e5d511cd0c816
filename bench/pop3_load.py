"""
POP3 load: U users in parallel, each LIST + RETR all + QUIT, against zWMS
and (when installed: `apt-get install -y dovecot-pop3d`) Dovecot on a
loopback port with a temporary config and maildirs, same messages, same
run.  Run by hand:

    python bench/pop3_load.py [--users 10] [--messages 1000] [--size 10240] [--repeat 3]

The messages are put in place as files (zWMS: data/userd/ID/mail/Inbox/
NAME.eml + `zwms-admin reindex ALL`; Dovecot: Maildir cur/), then one
untimed warm-up pass runs against each server (Dovecot builds its index
files, zWMS its caches).  zWMS runs with POP3SHARE=1 (fetched mail is offered
again, so passes can repeat) and POP3COUNT=0 (no per-session cap; the
default 100 would hand over 100 of the 1,000).  Only the Dovecot process
started here is stopped, by its PID.
"""

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BENCH, Child, Spy, ZWMS, machine, median, ratio, scratch, table  # noqa: E402

DOVECOT_CONF = """
base_dir = {t}/run
state_dir = {t}/state
log_path = {t}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{t}/mail/%u
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {t}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={t}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
}}
"""


def messages(count, size):
    """C{count} distinct messages of about C{size} bytes (CRLF lines of 78)."""
    out = []
    for i in range(count):
        head = ("From: <sender@remote.test>\r\nTo: <user@example.com>\r\n"
                "Subject: pop3 bench %d\r\nMessage-ID: <%d.%s@bench.test>\r\n\r\n"
                % (i, i, secrets.token_hex(4))).encode()
        out.append(head + (b"y" * 76 + b"\r\n") * max(1, (size - len(head)) // 78))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_zwms(users, msgs):
    zw = ZWMS().configure(settings=[("POP3SHARE", "1"), ("POP3COUNT", "0")],
                          users=[(u, pw) for u, pw in users])
    base = time.time_ns() - len(msgs) * 1000
    for u, _ in users:
        inbox = os.path.join(zw.home, "data", "userd", u, "mail", "Inbox")
        os.makedirs(inbox, exist_ok=True)
        for i, data in enumerate(msgs):
            with open(os.path.join(inbox, "%d.%06x.eml" % (base + i * 1000, i)), "wb") as f:
                f.write(data)
    zw.admin("reindex", "ALL")
    zw.start()
    return zw


class Dovecot:
    """Dovecot in a temporary folder, its own config, a loopback port."""

    def __init__(self, users, msgs):
        self.tmp = scratch("dovecot-bench-")
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        t = self.tmp
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(t, sub))
        with open(os.path.join(t, "passwd"), "w") as f:
            for u, pw in users:
                f.write("%s:{PLAIN}%s::::::\n" % (u, pw))
        stamp = int(time.time()) - len(msgs)
        for u, _ in users:
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(t, "mail", u, sub))
            cur = os.path.join(t, "mail", u, "cur")
            for i, data in enumerate(msgs):
                with open(os.path.join(cur, "%d.M%dP1.bench,S=%d:2," % (stamp + i, i, len(data))),
                          "wb") as f:
                    f.write(data)
        subprocess.run(["chown", "-R", "dovecot:dovecot", os.path.join(t, "mail")], check=True)
        self.conf = os.path.join(t, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(t=t, port=self.port))
        self.process = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("dovecot exited: %s\n%s" % (self.process.stderr.read(),
                                                              self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("dovecot did not listen:\n" + self.log())

    def log(self):
        try:
            with open(os.path.join(self.tmp, "dovecot.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the master we started, by PID
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_load(port, users, procs):
    procs = max(1, min(procs, len(users)))
    start_at = time.monotonic() + 0.5
    children = []
    for i in range(procs):
        mine = users[i::procs]
        children.append(Child([sys.executable, os.path.join(BENCH, "pop3client.py"),
                               "--port", str(port), "--start-at", repr(start_at), "--users",
                               ",".join("%s:%s" % up for up in mine)]))
    results = [c.finish() for c in children]
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    n = sum(r["retrieved"] for r in results)
    return {"retrieved": n, "elapsed": elapsed, "msgs": n / elapsed,
            "mb": sum(r["bytes"] for r in results) / elapsed / 1e6,
            "errors": sum(len(r["errors"]) for r in results),
            "error_text": [e for r in results for e in r["errors"]][:3],
            "gen_cpu": sum(r["cpu"] for r in results)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--messages", type=int, default=1000, help="per user")
    p.add_argument("--size", type=int, default=10240)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--no-dovecot", action="store_true")
    p.add_argument("--profile", default=None,
                   help="record the zWMS server with py-spy into this collapsed-stack file")
    a = p.parse_args()
    print("# POP3 load -- %s" % machine(), flush=True)
    users = [("pu%d" % i, "pw-%d-%s" % (i, secrets.token_hex(4))) for i in range(a.users)]
    msgs = messages(a.messages, a.size)
    targets = {}
    zw = dove = spy = None
    try:
        zw = setup_zwms(users, msgs)
        targets["zwms"] = zw.ports["pop3"]
        print("zWMS pid %d" % zw.pid, flush=True)
        if not a.no_dovecot:
            if shutil.which("dovecot") is None:
                print("Dovecot is not installed (apt-get install -y dovecot-pop3d): no peer")
            else:
                dove = Dovecot(users, msgs)
                targets["dovecot"] = dove.port
                print("Dovecot %s pid %d port %d" % (
                    subprocess.run(["dovecot", "--version"], capture_output=True,
                                   text=True).stdout.strip(), dove.process.pid, dove.port),
                      flush=True)
        for name, port in targets.items():
            r = run_load(port, users, a.procs)
            print("  warm-up %-7s %d msgs in %.1fs errors %d %s" % (
                name, r["retrieved"], r["elapsed"], r["errors"], r["error_text"]), flush=True)
        if a.profile:
            spy = Spy(zw.pid, a.profile)
        runs = {name: [] for name in targets}
        for _ in range(a.repeat):
            for name, port in targets.items():
                cpu0 = zw.stats.cpu() if name == "zwms" else 0
                zw.stats.reset_peak()
                r = run_load(port, users, a.procs)
                if name == "zwms":
                    r["cpu_pct"] = 100 * (zw.stats.cpu() - cpu0) / r["elapsed"]
                    r["rss"] = zw.stats.peak()
                runs[name].append(r)
                print("  %-7s %7.0f msgs/s %7.1f MB/s (%d msgs, %.2fs) errors %d %s gen-cpu %.1fs %s" % (
                    name, r["msgs"], r["mb"], r["retrieved"], r["elapsed"], r["errors"],
                    r["error_text"], r["gen_cpu"],
                    ("cpu %.0f%% rss %.0f MB" % (r["cpu_pct"], r["rss"]))
                    if name == "zwms" else ""), flush=True)
        med = {name: {k: median([r[k] for r in rs]) for k in ("msgs", "mb", "errors")}
               for name, rs in runs.items()}
        rows = []
        for name in targets:
            v = med[name]
            rows.append(["%d users x %d x %d KB" % (a.users, a.messages, a.size // 1024), name,
                         "%.0f" % v["msgs"], "%.1f" % v["mb"], "%d" % v["errors"],
                         ratio(v["msgs"], med["dovecot"]["msgs"])
                         if name == "zwms" and "dovecot" in med else ""])
        print()
        print("medians of %d; %d generator processes" % (a.repeat, a.procs))
        print(table(["load", "server", "RETR msgs/s", "MB/s", "errors", "ratio"], rows))
    finally:
        if spy is not None:
            spy.stop()
        if dove is not None:
            dove.stop()
        if zw is not None:
            zw.stop()


if __name__ == "__main__":
    main()
