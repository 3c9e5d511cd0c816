"""
Shared pieces of the benchmarks (run by hand, never in CI):

- L{ZWMS}: the real `twistd -n zwms` (tests/e2e/server.py) in a temporary
  home, configured through zwms-admin before it starts;
- L{ProcStats}: CPU seconds and peak RSS of any process from /proc;
- L{Child}: a helper process (load generator, peer server) started by PID
  and stopped by that PID only;
- small formatting helpers.

Every socket is on 127.0.0.0/8.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)

from tests.e2e.server import LISTENERS, START_TIMEOUT, Server, env_for, tool  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
DOMAIN = "example.com"


def scratch(prefix):
    """A new temporary folder on the real disk (fsync is real there)."""
    return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_TMP", "/var/tmp"))


class ProcStats:
    """CPU time and memory of one process (all its threads) from /proc."""

    def __init__(self, pid):
        self.pid = pid

    def cpu(self):
        """User + system CPU seconds used so far."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state): utime is field 14, stime field 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status(self, key):
        """A VmXXX line of /proc/PID/status in MB."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def rss(self):
        return self.status("VmRSS")

    def peak(self):
        return self.status("VmHWM")

    def reset_peak(self):
        """Restart the peak-RSS count (VmHWM) from the current RSS."""
        try:
            with open("/proc/%d/clear_refs" % self.pid, "w") as f:
                f.write("5")
        except OSError:
            pass


class BacklogServer(Server):
    """
    tests/e2e/server.py's Server, with the listen queue length (backlog=)
    of every listener set (Twisted's default, and so zWMS's, is 50).
    """

    backlog = None

    def start(self):
        if self.backlog is None:
            return Server.start(self)
        listen = os.path.join(self.home, "run", "listen")
        if os.path.exists(listen):
            os.unlink(listen)
        args = [tool("twistd"), "-n", "--pidfile=", "--logfile",
                os.path.join(self.home, "twistd.log"), "zwms", "--home", self.home]
        for name in LISTENERS:
            args += ["--" + name, "tcp:0:interface=127.0.0.1:backlog=%d" % self.backlog]
        self.process = subprocess.Popen(args, cwd=self.home, env=env_for(self.home),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("twistd zwms exited: " + self.twistd_log())
            if os.path.exists(listen):
                with open(listen) as f:
                    self.ports = {line.split()[0]: int(line.split()[1].rsplit(":", 1)[1])
                                  for line in f if line.strip()}
                if set(self.ports) == set(LISTENERS):
                    return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError("twistd zwms did not start:\n" + self.twistd_log())


class ZWMS:
    """The real server in a temporary home (or a given one)."""

    def __init__(self, home=None, keep=False, backlog=None):
        self.tmp = None
        if home is None:
            self.tmp = scratch("zwms-bench-")
            home = os.path.join(self.tmp, "home")
        self.server = BacklogServer(home)
        self.server.backlog = backlog
        self.keep = keep

    @property
    def home(self):
        return self.server.home

    def admin(self, *args):
        return self.server.admin(*args)

    def configure(self, settings=(), users=()):
        """DOMAIN, then C{settings} (KEY, VALUE) and C{users} (ID, PASSWORD)."""
        self.admin("config", "set", "DOMAIN", DOMAIN)
        for key, value in settings:
            self.admin("config", "set", key, str(value))
        for uid, password in users:
            self.admin("user", "add", uid, password)
        return self

    def start(self):
        self.server.start()
        self.stats = ProcStats(self.server.process.pid)
        return self

    @property
    def pid(self):
        return self.server.process.pid

    @property
    def ports(self):
        return self.server.ports

    def stop(self):
        try:
            self.server.stop()
        finally:
            if self.tmp and not self.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)


class Child:
    """A helper process (peer server, load generator) started by PID."""

    def __init__(self, args, env=None, cwd=None):
        full_env = dict(os.environ, PYTHONPATH=REPO)
        full_env.update(env or {})
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, env=full_env,
                                        cwd=cwd)
        self.pid = self.process.pid
        self.stats = ProcStats(self.pid)

    def readline(self, timeout=30):
        """The first stdout line (the child prints its port when ready)."""
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("%s exited: %s" % (self.process.args,
                                                  self.process.stderr.read()[-2000:]))
        return line.strip()

    def finish(self, timeout=600):
        """Wait for the child to end; its stdout parsed as JSON."""
        out, err = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise RuntimeError("%s failed (%s): %s" % (self.process.args[:3],
                                                       self.process.returncode, err[-3000:]))
        return json.loads(out.strip().splitlines()[-1])

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Spy:
    """
    py-spy recording one process (collapsed stacks, GIL-holding samples;
    with BENCH_SPY=wall in the environment: every sample, idle included,
    to see where threads wait).
    """

    def __init__(self, pid, output, rate=int(os.environ.get("BENCH_SPY_RATE", "250"))):
        self.output = output
        mode = ["--idle"] if os.environ.get("BENCH_SPY") == "wall" else ["--gil"]
        self.process = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--threads"] + mode +
            ["--rate", str(rate), "--output", output, "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def stop(self):
        """SIGINT makes py-spy write its file."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        print("py-spy profile: %s (python bench/pyspy_summary.py %s)"
              % (self.output, self.output), flush=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(ours, peer):
    if not ours or not peer:
        return "-"
    return "%.2fx" % (ours / peer)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    """One line about the machine and the moment, for the notes."""
    cpus = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs (%s), Python %s, load %s" % (
        time.strftime("%Y-%m-%d %H:%M"), cpus, model, sys.version.split()[0], loadavg())


def table(headers, rows):
    """A Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


__all__ = ["ZWMS", "Child", "ProcStats", "Spy", "scratch", "median", "ratio", "machine", "table",
           "tool", "DOMAIN", "REPO", "BENCH"]
