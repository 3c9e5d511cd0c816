"""
Which multipart bodies Twisted parses itself (in the reactor) and which the
pages read in a thread (zwms.web.multipart.StreamingRequest).
"""

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web import http

from tests.test_webmail_session import WebmailTestCase
from tests.webclient import inline
from zwms.web.site import make_site

BODY = (b"--bb\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nx\r\n"
        b"--bb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n"
        b"\r\n" + b"a" * 4096 + b"\r\n--bb--\r\n")


class StreamedPathTests(WebmailTestCase):

    def post(self, path):
        """POST BODY to C{path} through the real Site; return the parse calls."""
        calls = []
        real = http._getMultiPartArgs
        self.patch(http, "_getMultiPartArgs", lambda *a: calls.append(1) or real(*a))
        site = make_site(self.services, run=inline)
        proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
        proto.makeConnection(transport)
        proto.dataReceived(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data;"
                            " boundary=bb\r\nContent-Length: %d\r\n\r\n"
                            % (path, len(BODY))).encode() + BODY)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 "), (path, transport.value()))
        proto.connectionLost(Failure(ConnectionDone()))
        return calls

    def test_webmail_uploads_are_left_to_the_pages(self):
        for path in ("/mail/webfolder/r/my/upload", "/formmail/send",
                     "/mail/compose/r/send", "/mail/boards/r/b/news/write",
                     "/mail/bulk/r/upload", "/mail/contacts/r/import"):
            self.assertEqual(self.post(path), [], path)

    def test_other_forms_are_parsed_by_twisted(self):
        self.assertEqual(self.post("/mail/login"), [1])
        self.assertEqual(self.post("/admin/login"), [1])
