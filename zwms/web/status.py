# -*- test-case-name: tests.test_web_status -*-
"""
The status page on the web port: version, uptime, accounts and listeners.
The admin console and the webmail mount here when they land (issues 5, 6).
"""

import html
import json
import time

from klein import Klein
from twisted.web.server import Site

from zwms import __version__


class StatusApp:
    """A Klein app holding the services (no module globals)."""

    app = Klein()

    def __init__(self, services, now=time.time):
        self.services = services
        self.now = now
        self.started = now()

    def facts(self):
        s = self.services
        return {
            "product": "zWMS",
            "version": __version__,
            "uptime_seconds": int(self.now() - self.started),
            "domain": s.settings["DOMAIN"],
            "accounts": len(s.accounts.list()),
        }

    @app.route("/", methods=["GET", "HEAD"])
    def index(self, request):
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        rows = "".join("<tr><th>%s</th><td>%s</td></tr>" % (html.escape(k), html.escape(str(v)))
                       for k, v in self.facts().items())
        return ("<!doctype html><html><head><meta charset='utf-8'><title>zWMS</title></head>"
                "<body><h1>zWMS mail server</h1><table>%s</table>"
                "<p>The web console and webmail are not part of this version yet; "
                "use zwms-admin to manage accounts.</p></body></html>" % rows)

    @app.route("/status.json", methods=["GET"])
    def status_json(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(self.facts())


def status_site(services):
    """A twisted.web Site serving the status app."""
    site = Site(StatusApp(services).app.resource())
    site.displayTracebacks = False
    return site
