"""
A browser-like client for the web console tests: treq's StubTreq over the
site resource (no sockets), cookies kept between requests, the CSRF token
read from the last page, operations run inline (no thread pool), time from
a task.Clock.
"""

import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from twisted.internet import defer
from treq.testing import StubTreq

from tests.helpers import make_services
from zwms.store.accounts import FileAccounts
from zwms.store.directory import Directory
from zwms.web.site import make_resource

BASE = "http://console.test"


def inline(f, *args, **kwargs):
    """Run a blocking operation at once (tests): a fired Deferred."""
    return defer.maybeDeferred(f, *args, **kwargs)


def web_services(root, clock=None):
    """
    Services over a home at C{root} with the file account store (the user
    list pages the files) and the memory mail store.
    """
    services = make_services(root, clock=clock)
    services.accounts = FileAccounts(services.home, services.settings)
    services.directory = Directory(services.settings, services.accounts, services.home)
    return services


class Response:
    """What one request answered."""

    def __init__(self, code, headers, body):
        self.code = code
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


class Client:
    """One browser: a cookie jar over a StubTreq of the site."""

    def __init__(self, services, resource=None):
        self.services = services
        self.resource = resource or make_resource(services, run=inline)
        self.stub = StubTreq(self.resource)
        self.cookies = {}
        self.csrf = None

    def request(self, method, path, data=None, headers=None):
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        body = None
        if data is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(data, doseq=True).encode("utf-8")
        d = self.stub.request(method, BASE + path, headers=hdrs, data=body,
                              allow_redirects=False)
        self.stub.flush()
        results = []
        d.addCallback(lambda r: r.content().addCallback(lambda b: (r, b)))
        d.addBoth(results.append)
        self.stub.flush()
        if not results:
            raise AssertionError("no answer to %s %s" % (method, path))
        if not isinstance(results[0], tuple):
            results[0].raiseException()
        r, b = results[0]
        for raw in r.headers.getRawHeaders("set-cookie") or []:
            cookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        response = Response(r.code, r.headers, b)
        m = re.search(r'name="csrf" value="([^"]+)"', response.text)
        if m:
            self.csrf = m.group(1)
        return response

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, data=None, csrf=True):
        data = dict(data or {})
        if csrf and "csrf" not in data:
            data["csrf"] = self.csrf or ""
        return self.request("POST", path, data)

    def login(self, login="root", password="root"):
        self.get("/admin/login")
        r = self.post("/admin/login", {"login": login, "password": password})
        if r.code == 303:
            self.get("/admin/system")  # the session's CSRF token
        return r
