"""
Run the real `twistd -n zwms` on 127.0.0.1 for end-to-end tests.

Every listener binds port 0 on 127.0.0.1; the ports are read back from
run/listen (SPEC §0).  The server is stopped by its PID only.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

LISTENERS = ("smtp", "submission", "smtps", "pop3", "pop3s", "web")
START_TIMEOUT = 30.0


def tool(name):
    """The path of a console script installed beside this Python, or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(beside):
        return beside
    return shutil.which(name)


def env_for(home):
    env = dict(os.environ)
    env["ZWMS_HOME"] = home
    env.pop("PYTHONPATH", None)
    return env


class Server:
    """One twistd zwms process with its home."""

    def __init__(self, home):
        self.home = os.path.abspath(home)
        os.makedirs(self.home, exist_ok=True)
        self.process = None
        self.ports = {}

    def admin(self, *args, check=True):
        """Run zwms-admin against this home; return the CompletedProcess."""
        result = subprocess.run([tool("zwms-admin"), "--home", self.home] + list(args),
                                capture_output=True, text=True, timeout=60,
                                env=env_for(self.home))
        if check and result.returncode != 0:
            raise AssertionError("zwms-admin %s failed: %s%s"
                                 % (args, result.stdout, result.stderr))
        return result

    def start(self):
        listen = os.path.join(self.home, "run", "listen")
        if os.path.exists(listen):
            os.unlink(listen)
        args = [tool("twistd"), "-n", "--pidfile=", "--logfile",
                os.path.join(self.home, "twistd.log"), "zwms", "--home", self.home]
        for name in LISTENERS:
            args += ["--" + name, "tcp:0:interface=127.0.0.1"]
        self.process = subprocess.Popen(args, cwd=self.home, env=env_for(self.home),
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("twistd zwms exited with %s:\n%s"
                                     % (self.process.returncode, self.twistd_log()))
            if os.path.exists(listen):
                self.ports = {}
                with open(listen) as f:
                    for line in f:
                        name, address = line.split()
                        self.ports[name] = int(address.rsplit(":", 1)[1])
                if set(self.ports) == set(LISTENERS):
                    return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError("twistd zwms did not start:\n" + self.twistd_log())

    def twistd_log(self):
        try:
            with open(os.path.join(self.home, "twistd.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return "(no twistd.log)"

    def stop(self, timeout=20):
        """
        SIGTERM and wait; return True when the server stopped cleanly.
        twistd ends a clean shutdown by re-raising the signal on itself, so a
        clean stop exits "killed by SIGTERM" (-15), like systemd expects.
        """
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout) in (0, -signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("twistd zwms did not stop on SIGTERM")

    def kill(self):
        """SIGKILL (the crash test) and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log(self, channel):
        try:
            with open(os.path.join(self.home, "logs", channel + ".log"), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""
