"""
Server control (SPEC A2, seed §2: stop, restart, auto-recovery restart)
and the product page (§15); CSRF refusal on every POST route of the
second-round console apps.
"""

import sys

from tests.test_web_admin import ConsoleTestCase
from tests.webclient import Client
from zwms import logs as logchannels
from zwms.web.admin_system import ProcessControl


class Recorder:
    """A ProcessControl stand-in that records what it was asked."""

    def __init__(self):
        self.calls = []

    def stop(self):
        self.calls.append("stop")

    def restart(self):
        self.calls.append("restart")


class FakeReactor:
    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1


class ProcessControlTests(ConsoleTestCase):

    def test_stop_stops_the_reactor(self):
        reactor, hooks = FakeReactor(), []
        control = ProcessControl(reactor, execv=None, at_exit=hooks.append, argv=["py", "x"])
        control.stop()
        self.assertEqual(reactor.stopped, 1)
        self.assertEqual(hooks, [])

    def test_restart_reexecs_the_same_command_after_shutdown(self):
        reactor, hooks, execs = FakeReactor(), [], []
        control = ProcessControl(reactor, execv=lambda *a: execs.append(a),
                                 at_exit=hooks.append,
                                 argv=["python3", "/usr/bin/twistd", "-n", "zwms", "--home", "h"])
        control.restart()
        control.restart()  # a second click: one hook only
        self.assertEqual(reactor.stopped, 2)
        self.assertEqual(len(hooks), 1)
        self.assertEqual(execs, [])  # nothing before twistd has shut down
        hooks[0]()
        self.assertEqual(execs, [(sys.executable, [sys.executable, "/usr/bin/twistd", "-n",
                                                   "zwms", "--home", "h"])])

    def test_default_command_is_the_original_one(self):
        self.assertEqual(ProcessControl(FakeReactor()).argv, list(sys.orig_argv))


class ControlRouteTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.control = Recorder()
        self.services.control = self.control
        self.client.login()

    def test_buttons_on_system_page(self):
        text = self.client.get("/admin/system").text
        for action in ("stop", "restart", "recover"):
            self.assertIn('action="/admin/control/%s"' % action, text)

    def test_restart_after_the_answer(self):
        r = self.client.post("/admin/control/restart")
        self.assertEqual(r.code, 200)
        self.assertIn("재시작", r.text)
        self.assertEqual(self.control.calls, [])  # not while answering
        self.clock.advance(0)
        self.assertEqual(self.control.calls, ["restart"])
        self.assertIn("admin root: server restart", self.webmail_log())

    def test_stop(self):
        r = self.client.post("/admin/control/stop")
        self.assertEqual(r.code, 200)
        self.clock.advance(0)
        self.assertEqual(self.control.calls, ["stop"])
        self.assertIn("Server stop requested from the console",
                      self.services.logs.lines[logchannels.SYSTEMSTATUS])

    def test_recover_rebuilds_the_index_then_restarts(self):
        reindexed = []
        self.patch(self.services.mail, "reindex", lambda aid=None: reindexed.append(aid) or 7)
        r = self.client.post("/admin/control/recover")
        self.assertEqual(r.code, 200)
        self.assertEqual(reindexed, [None])
        self.clock.advance(0)
        self.assertEqual(self.control.calls, ["restart"])
        self.assertIn("Auto recovery: index rebuilt, 7 messages",
                      self.services.logs.lines[logchannels.SYSTEMSTATUS])

    def test_get_does_nothing(self):
        for action in ("stop", "restart", "recover"):
            self.assertIn(self.client.get("/admin/control/%s" % action).code, (404, 405))
        self.clock.advance(0)
        self.assertEqual(self.control.calls, [])


class ProductTests(ConsoleTestCase):

    def test_product_page(self):
        self.services.settings.set("MAXACCOUNTS", "50")
        self.client.login()
        r = self.client.get("/admin/product")
        self.assertEqual(r.code, 200)
        self.assertIn("제품", r.text)
        self.assertIn("<td>50</td>", r.text)
        self.assertIn("<td>1</td>", r.text)  # alice
        self.client.post("/admin/lang", {"lang": "en", "back": "/admin/product"})
        r = self.client.get("/admin/product")
        self.assertIn("Account limit (MAXACCOUNTS)", r.text)
        self.assertIn('href="/admin/product"', r.text)  # in the menu


def second_round_post_routes():
    """Every POST route of the second-round apps, with sample arguments."""
    from tests import test_web_admin2_routes
    return test_web_admin2_routes.post_routes()


class CSRFTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.control = Recorder()
        self.services.control = self.control

    def test_every_new_post_route_refuses_a_forged_token(self):
        routes = second_round_post_routes()
        self.assertIn("/admin/control/restart", routes)
        self.client.login()
        for path in routes:
            for token in ("forged", None):
                data = {"csrf": token} if token else {}
                r = self.client.post(path, data, csrf=False)
                self.assertEqual(r.code, 403, "%s with %r answered %d" % (path, token, r.code))
        self.clock.advance(0)
        self.assertEqual(self.control.calls, [])

    def test_without_session(self):
        for path in second_round_post_routes():
            r = Client(self.services, self.client.resource).post(path, {"csrf": "x"})
            self.assertEqual(r.code, 403, path)
