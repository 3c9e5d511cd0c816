# -*- test-case-name: tests.test_web_admin2_system -*-
"""
System control of the console (SPEC A2, seed §2): stop, restart and
auto-recovery restart, at /admin/control, and the product page (§15) at
/admin/product.

How the server goes down and comes back (L{ProcessControl}):

  - stop: C{reactor.stop()} once the answer has been sent.  twistd stops
    the services as for SIGTERM (listeners close, the mail writer finishes
    what it acknowledged) and the process exits 0; systemd's
    C{Restart=on-failure} leaves a clean exit alone, so it stays stopped.
  - restart: the same clean stop, then, when twistd has finished its own
    shutdown (pid file removed, logs closed: an C{atexit} hook), the
    process replaces itself with the command that started it
    (C{os.execv(sys.executable, sys.orig_argv)}).  The PID stays the same,
    so systemd (Type=simple) sees one service that kept running, and a
    server started by hand in a terminal comes back in that terminal.
  - auto-recovery restart (§2, "restart removing zombie eml files"):
    first the index is rebuilt from the .eml files of every mailbox
    (rows of vanished files go, files the index lost are adopted), while
    the mail writer still runs so no delivery races it; then a restart,
    whose start sweeps crash leftovers (temp files, half-deleted folders).
"""

import atexit
import os
import sys

from klein import Klein

from zwms import __version__
from zwms import logs as logchannels
from zwms.admin import ops
from zwms.web.console import client_ip, page


class ProcessControl:
    """
    Stops or re-executes the running server process.

    @param reactor: the running reactor (C{stop}, C{callLater}).
    @param execv: C{os.execv} (tests replace it).
    @param at_exit: C{atexit.register} (tests replace it).
    @param argv: the command to run again; default C{sys.orig_argv}.
    """

    def __init__(self, reactor, execv=os.execv, at_exit=atexit.register, argv=None):
        self.reactor = reactor
        self.execv = execv
        self.at_exit = at_exit
        self.argv = list(argv if argv is not None else sys.orig_argv)
        self.pending = None

    def stop(self):
        """Stop the server cleanly (the process exits)."""
        self.pending = self.pending or "stop"
        self.reactor.stop()

    def restart(self):
        """Stop cleanly, then run the same command again in this process."""
        if self.pending != "restart":
            self.pending = "restart"
            self.at_exit(self.reexec)
        self.reactor.stop()

    def reexec(self):
        """Replace the process with its own command (after twistd's shutdown)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        self.execv(sys.executable, [sys.executable] + self.argv[1:])


def control_for(console):
    """
    The console's L{ProcessControl}: C{services.control} when set (tests
    inject a recorder there), else one over the console's reactor.
    """
    control = getattr(console.services, "control", None)
    if control is None:
        control = ProcessControl(console.reactor)
        console.services.control = control
    return control


#: The actions of the control buttons, and the WebMail log text of each.
ACTIONS = {"stop": "server stop", "restart": "server restart",
           "recover": "server auto-recovery restart"}


def recover_index(ctx):
    """The first half of the auto-recovery restart: rebuild the whole index."""
    return ops.reindex(ctx, None)


def product_facts(ctx):
    """Version, MAXACCOUNTS (0: no limit) and the number of accounts (§15)."""
    return {"version": __version__, "maxaccounts": ctx.settings["MAXACCOUNTS"],
            "accounts": len(ctx.accounts.list())}


class SystemControlApp:
    """The control buttons, mounted at /admin/control; the product page."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    async def _act(self, request, session, action):
        c = self.console
        control = control_for(c)
        ip = client_ip(request)
        if action == "recover":
            _, total = await c.op(request, session, recover_index)
            c.services.logs.write(logchannels.SYSTEMSTATUS,
                                  "Auto recovery: index rebuilt, %d messages" % total)
        c.services.logs.write(logchannels.WEBMAIL, "admin %s: %s" % (session.login,
                                                                    ACTIONS[action]), ip)
        c.services.logs.write(logchannels.SYSTEMSTATUS, "%s requested from the console"
                              % ACTIONS[action].capitalize())
        # Act once the answer is out: the browser sees the page, then the
        # server goes down.
        how = control.stop if action == "stop" else control.restart
        request.notifyFinish().addBoth(lambda _: c.services.clock.callLater(0, how))
        return c.render(request, session, "control.html", action=action)

    @app.route("/stop", methods=["POST"])
    @page("POST")
    async def stop(self, request, session):
        return await self._act(request, session, "stop")

    @app.route("/restart", methods=["POST"])
    @page("POST")
    async def restart(self, request, session):
        return await self._act(request, session, "restart")

    @app.route("/recover", methods=["POST"])
    @page("POST")
    async def recover(self, request, session):
        return await self._act(request, session, "recover")

    async def product(self, request, session):
        c = self.console
        facts = await c.op(request, session, product_facts)
        return c.render(request, session, "product.html", facts=facts)
