# -*- test-case-name: tests.test_web_admin -*-
"""
The one web site of the --web listeners: a front page at /, the facts of
/status.json, and the administrator console at /admin (L{zwms.web.admin}).
The webmail (L{zwms.web.webmail}) is at /mail; / offers its login.

Every answer carries the security headers (a CSP without inline script,
nosniff, frame-ancestors 'none', a Referrer-Policy); tracebacks are never
shown to a client.
"""

import json

from klein import Klein
from twisted.web.resource import Resource
from twisted.web.server import Site

from zwms import __version__
from zwms.web.admin import AdminApp
from zwms.web.console import Console
from zwms.web.formmail import FormMailApp
from zwms.web.multipart import StreamingRequest
from zwms.web.siteapi import SiteApp
from zwms.web.webmail.app import WebmailApp

SECURITY_HEADERS = (
    (b"Content-Security-Policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Frame-Options", b"DENY"),
    (b"Referrer-Policy", b"same-origin"),
)


class RootApp:
    """/: the front page and the status facts; /admin: the console; /mail: the webmail."""

    app = Klein()

    def __init__(self, console, webmail=None, formmail=None, siteapi=None):
        self.console = console
        self.admin = AdminApp(console)
        self.webmail = webmail
        self.formmail = formmail
        self.siteapi = siteapi

    def facts(self):
        s = self.console.services
        return {"product": "zWMS", "version": __version__,
                "uptime_seconds": int(self.console.now() - self.console.started),
                "domain": s.settings["DOMAIN"]}

    @app.route("/", methods=["GET", "HEAD"])
    def front(self, request):
        if self.webmail is not None:
            return self.webmail.login_form(request)
        return self.console.render(request, None, "front.html", facts=self.facts())

    @app.route("/mail", branch=True)
    def mail(self, request):
        return self.webmail.app.resource()

    @app.route("/mail/", methods=["GET"])
    def mail_login(self, request):
        # A Klein branch does not reach its own "/" route: serve it here.
        return self.webmail.login_form(request)

    @app.route("/formmail", branch=True)
    def formmail_branch(self, request):
        return self.formmail.app.resource()

    @app.route("/formmail/", methods=["GET"])
    def formmail_page(self, request):
        # A Klein branch does not reach its own "/" route: serve it here.
        return self.formmail.show(request)

    @app.route("/zwms/site", methods=["GET", "POST"])
    @app.route("/zwms/site/", methods=["GET", "POST"])
    async def site_bare(self, request):
        # The bare paths: the branch would answer a 308 that drops the
        # query, and does not reach its own "/".
        return await self.siteapi.handle(request, None)

    @app.route("/zwms/site", branch=True)
    def site_branch(self, request):
        return self.siteapi.app.resource()

    @app.route("/status.json", methods=["GET"])
    def status_json(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(self.facts())

    @app.route("/admin", branch=True)
    def admin(self, request):
        return self.admin.app.resource()

    @app.route("/admin/", methods=["GET"])
    def admin_index(self, request):
        # A Klein branch does not reach its own "/" route: serve it here.
        return self.admin.index(request)


class SecureResource(Resource):
    """Wraps the root app: the security headers go on every answer."""

    isLeaf = True

    def __init__(self, inner, console):
        Resource.__init__(self)
        self.inner = inner
        self.console = console

    def render(self, request):
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        return self.inner.render(request)


def make_resource(services, reactor=None, run=None, skins=None):
    """The root resource (tests drive it with treq's StubTreq)."""
    if reactor is None:
        from twisted.internet import reactor
    console = Console(services, reactor, run=run, skins=skins)
    webmail = WebmailApp(services, reactor, run=run, skins=skins)
    formmail = FormMailApp(services, reactor, run=run, skins=skins)
    siteapi = SiteApp(services, reactor, webmail.webmail, run=run)
    return SecureResource(RootApp(console, webmail, formmail, siteapi).app.resource(), console)


def make_site(services, reactor=None, run=None, skins=None):
    """The twisted.web Site for the --web endpoints."""
    # Multipart bodies of the upload pages are streamed, not parsed whole (zwms.web.multipart).
    site = Site(make_resource(services, reactor, run, skins), requestFactory=StreamingRequest)
    site.displayTracebacks = False
    return site
