"""
The webmail's test client: the console's StubTreq client (tests.webclient)
plus webmail login, multipart uploads, the session's random path segment,
and a corpus loader.
"""

import os
import re
import secrets

from tests.test_relay import FakeQueue
from tests.webclient import BASE, Client, Response, web_services

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mailcorpus")


def corpus(name):
    """The bytes of one corpus message."""
    with open(os.path.join(CORPUS, name), "rb") as f:
        return f.read()


def mail_services(root, clock=None):
    """Web services with a fake outbound queue (remote mail is queued there)."""
    services = web_services(root, clock=clock)
    services.queue = FakeQueue()
    return services


class MailClient(Client):
    """A browser on the webmail."""

    rand = None

    def login(self, login="alice", password="secret1"):
        self.get("/mail/")
        r = self.post("/mail/login", {"login": login, "password": password})
        if r.code == 303:
            m = re.match(r"^/mail/box/([^/]+)/", r.header("location"))
            self.rand = m.group(1)
            self.get(r.header("location"))
        return r

    def box(self, path):
        return self.get("/mail/box/%s/%s" % (self.rand, path))

    def upload(self, path, fields, files=(), csrf=True):
        """POST multipart/form-data: fields {name: text}, files [(field, filename, bytes)]."""
        fields = dict(fields)
        if csrf and "csrf" not in fields:
            fields["csrf"] = self.csrf or ""
        boundary = "----zwmstest" + secrets.token_hex(8)
        out = []
        for name, value in fields.items():
            out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                        % (boundary, name)).encode() + value.encode("utf-8") + b"\r\n")
        for name, filename, data in files:
            out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n"
                        % (boundary, name, filename)).encode("utf-8") + data + b"\r\n")
        body = b"".join(out) + ("--%s--\r\n" % boundary).encode()
        hdrs = {"Content-Type": "multipart/form-data; boundary=%s" % boundary}
        if self.cookies:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        d = self.stub.request("POST", BASE + path, headers=hdrs, data=body,
                              allow_redirects=False)
        results = []
        d.addCallback(lambda r: r.content().addCallback(lambda b: (r, b)))
        d.addBoth(results.append)
        self.stub.flush()
        if not isinstance(results[0], tuple):
            results[0].raiseException()
        r, b = results[0]
        return Response(r.code, r.headers, b)
