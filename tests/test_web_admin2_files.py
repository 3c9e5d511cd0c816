"""
The file viewer (seed §10): only with DFV=1, browse / download / delete
inside the home only (.., absolute, NUL, links out refused), DOWNSLEEP
pacing on the clock without blocking.
"""

import os

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from tests.webclient import Client, web_services
from zwms import logs as logchannels
from zwms.web.admin_files import PacedSender

ESCAPES = ["..", "../", "../../etc/passwd", "data/../../x", "/etc/passwd", "%2e%2e/x",
           "data/\x00x", "data\\..\\..", "outlink", "outlink/x", "data/outdir"]


class FilesTestCase(SynchronousTestCase):

    dfv = "1"
    downsleep = "0"

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        base = self.mktemp()
        self.root = os.path.join(base, "home")
        self.outside = os.path.join(base, "outside")
        os.makedirs(os.path.join(self.root, "data"))
        os.makedirs(self.outside)
        with open(os.path.join(self.outside, "secret.txt"), "w") as f:
            f.write("outside secret")
        with open(os.path.join(self.root, "data", "zwms.cfg"), "w") as f:
            f.write("DFV=%s\nDOWNSLEEP=%s\n" % (self.dfv, self.downsleep))
        self.services = web_services(self.root, clock=self.clock)
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "outlink"))
        os.symlink(self.outside, os.path.join(self.root, "data", "outdir"))
        with open(os.path.join(self.root, "data", "note.txt"), "wb") as f:
            f.write(b"hello file viewer\n")
        self.client = Client(self.services)
        self.client.login()


class OffTests(FilesTestCase):

    dfv = "0"

    def test_off_without_dfv(self):
        self.assertEqual(self.client.get("/admin/files/").code, 403)
        self.assertEqual(self.client.get("/admin/files/download?p=data/note.txt").code, 403)
        self.assertEqual(self.client.post("/admin/files/delete", {"p": "data/note.txt"}).code,
                         403)
        self.assertTrue(os.path.exists(os.path.join(self.root, "data", "note.txt")))
        self.assertNotIn('href="/admin/files/"', self.client.get("/admin/system").text)


class ViewerTests(FilesTestCase):

    def test_browse(self):
        r = self.client.get("/admin/files/")
        self.assertEqual(r.code, 200)
        self.assertIn("파일뷰어", r.text)
        self.assertIn('href="/admin/files/?p=data"', r.text)
        self.assertIn('href="/admin/files/"', self.client.get("/admin/system").text)  # menu
        r = self.client.get("/admin/files/?p=data")
        self.assertIn('href="/admin/files/download?p=data/note.txt"', r.text)
        self.client.post("/admin/lang", {"lang": "en", "back": "/admin/files/"})
        self.assertIn("File viewer", self.client.get("/admin/files/?p=data").text)

    def test_download(self):
        r = self.client.get("/admin/files/download?p=data/note.txt")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body, b"hello file viewer\n")
        self.assertEqual(r.header("content-type"), "application/octet-stream")
        self.assertIn('filename="note.txt"', r.header("content-disposition"))
        self.assertIn("admin root: file download data/note.txt",
                      self.services.logs.lines[logchannels.WEBMAIL])

    def test_escapes_refused(self):
        for p in ESCAPES:
            for r in (self.client.get("/admin/files/?p=" + p),
                      self.client.get("/admin/files/download?p=" + p)):
                self.assertIn(r.code, (400, 404), p)
                self.assertNotIn("outside secret", r.text, p)
                self.assertNotIn("secret.txt", r.text, p)
        links = ("outlink", "data/outdir")  # links inside: deleting one removes the link
        for p in [e for e in ESCAPES if e not in links] + ["", "data", "/"]:
            r = self.client.post("/admin/files/delete", {"p": p})
            self.assertIn(r.code, (400, 404), p)
        self.assertTrue(os.path.exists(os.path.join(self.outside, "secret.txt")))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "data")))

    def test_delete(self):
        r = self.client.post("/admin/files/delete", {"p": "data/note.txt"})
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/files/?p=data&done=deleted")
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "note.txt")))
        self.assertEqual(self.client.post("/admin/files/delete", {"p": "data/note.txt"}).code,
                         404)

    def test_delete_link_removes_only_the_link(self):
        r = self.client.post("/admin/files/delete", {"p": "outlink"})
        self.assertEqual(r.code, 303)
        self.assertFalse(os.path.lexists(os.path.join(self.root, "outlink")))
        self.assertTrue(os.path.exists(os.path.join(self.outside, "secret.txt")))


class SlowTests(FilesTestCase):

    downsleep = "10"

    def test_download_uses_downsleep(self):
        from zwms.web import admin_files
        seen = []
        real = admin_files.PacedSender

        def recording(f, request, clock, ms_per_kb, **kw):
            seen.append((clock, ms_per_kb))
            return real(f, request, clock, 0, **kw)
        self.patch(admin_files, "PacedSender", recording)
        r = self.client.get("/admin/files/download?p=data/note.txt")
        self.assertEqual(r.body, b"hello file viewer\n")
        self.assertEqual(seen, [(self.clock, 10)])


class FakeRequest:
    def __init__(self):
        self.data = []
        self.producer = None

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def write(self, data):
        self.data.append(data)


class PacedSenderTests(SynchronousTestCase):

    def test_pause_and_resume(self):
        import io
        clock, request = task.Clock(), FakeRequest()
        sender = PacedSender(io.BytesIO(b"a" * 5000), request, clock, 0, chunk=1000)
        real_write = request.write

        def write(data):
            real_write(data)
            if len(request.data) == 2:
                sender.pauseProducing()
        request.write = write
        done = []
        sender.start().addCallback(done.append)
        self.assertEqual(len(request.data), 2)
        sender.resumeProducing()
        self.assertEqual(b"".join(request.data), b"a" * 5000)
        self.assertEqual(done, [b""])
        self.assertIsNone(request.producer)

    def test_downsleep_paces_on_the_clock(self):
        import io
        clock, request = task.Clock(), FakeRequest()
        sender = PacedSender(io.BytesIO(b"x" * 4096), request, clock, 10, chunk=1024)
        done = []
        sender.start().addCallback(done.append)
        self.assertEqual(len(request.data), 1)  # 1 KB, then 10 ms
        clock.advance(0.009)
        self.assertEqual(len(request.data), 1)
        clock.advance(0.0011)
        self.assertEqual(len(request.data), 2)
        clock.pump([0.01, 0.01])
        self.assertEqual(b"".join(request.data), b"x" * 4096)
        clock.pump([0.01])
        self.assertEqual(done, [b""])

    def test_paused_waits_for_resume(self):
        import io
        clock, request = task.Clock(), FakeRequest()
        sender = PacedSender(io.BytesIO(b"x" * 4096), request, clock, 10, chunk=1024)
        sender.start()
        sender.pauseProducing()
        clock.advance(1)
        self.assertEqual(len(request.data), 1)
        sender.resumeProducing()
        self.assertEqual(len(request.data), 2)

    def test_stop_closes(self):
        import io
        clock, request = task.Clock(), FakeRequest()
        f = io.BytesIO(b"a" * 5000)
        sender = PacedSender(f, request, clock, 100, chunk=1000)
        done = []
        sender.start().addCallback(done.append)
        sender.stopProducing()
        self.assertTrue(f.closed)
        self.assertEqual(done, [b""])
        self.assertEqual(clock.getDelayedCalls(), [])
