"""
The web folder pages (SPEC W3, seed §30; issue 7) through the real routes:
browse personal and shared folders, upload several files (streamed from
the body, CSRF before the first file), download (RFC 5987 names, streamed),
mkdir, rename, move, delete; CSRF refusals; every path escape (../,
absolute paths, planted symlinks, NUL, backslashes, full-width and bidi
characters, overlong names, another group's shared folder); and the
streaming multipart parser and request of L{zwms.web.multipart}.
"""

import io
import os
import re
import secrets
from urllib.parse import quote, unquote

from http.cookiejar import CookieJar

from treq.client import HTTPClient
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.trial.unittest import TestCase as TrialTestCase
from twisted.web import http
from twisted.web.client import Agent, HTTPConnectionPool

from tests.test_webmail_session import WebmailTestCase
from tests.webclient import inline
from zwms.errors import InvalidValue
from zwms.store.webfolder import WebFolders
from zwms.web import multipart
from zwms.web.site import make_site
from zwms.web.webmail.webfolder_pages import content_disposition


class Base(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.services.accounts.set("alice", "boardgroup", "1")
        self.services.accounts.set("bob", "boardgroup", "2")
        self.client.login()
        self.base = "/mail/webfolder/%s/" % self.client.rand
        self.webdir = os.path.join(self.services.home.root, "webdir")
        os.makedirs(self.my())

    def my(self, *parts):
        return os.path.join(self.webdir, "alice", *parts)

    def upload(self, files, path="", scope="my", **kw):
        return self.client.upload(self.base + "%s/upload?path=%s" % (scope, quote(path)), {},
                                  files, **kw)

    def write(self, rel, data=b"x", user="alice"):
        full = os.path.join(self.webdir, user, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        return full


class BrowseTests(Base):

    def test_side_bar_link_and_root(self):
        r = self.client.box("folder/Inbox")
        self.assertIn('href="%s"' % self.base, r.text)
        r = self.client.get(self.base)
        self.assertEqual(r.code, 200)
        self.assertIn("웹폴더", r.text)
        self.assertIn("/mail/css/webfolder.css", r.text)
        self.assertIn('action="%smy/upload?path="' % self.base, r.text)
        self.assertTrue(os.path.isdir(self.my()))
        self.assertEqual(self.client.get("/mail/css/webfolder.css").code, 200)
        # The bare URLs lead to the pages.
        for bare in (self.base[:-1], self.base + "my", self.base + "common"):
            r = self.client.get(bare)
            self.assertIn(r.code, (301, 308), bare)
            self.assertTrue(r.header("location").endswith(bare + "/"), bare)
            self.assertEqual(self.client.get(bare + "/").code, 200, bare)

    def test_listing_with_breadcrumbs(self):
        self.write("문서/2026/보고서.txt", b"abc")
        self.write("a.bin", b"12345")
        r = self.client.get(self.base + "my/")
        self.assertIn("문서/</a>", r.text)
        self.assertIn("a.bin", r.text)
        r = self.client.get(self.base + "my/?path=" + quote("문서/2026"))
        self.assertEqual(r.code, 200)
        self.assertIn('href="%smy/?path=%s"' % (self.base, quote("문서")), r.text)
        self.assertIn(">2026</a>", r.text)
        self.assertIn('download?path=%s' % quote("문서/2026/보고서.txt"), r.text)
        self.assertIn('<option value="문서/2026">', r.text)

    def test_english(self):
        r = self.client.post("/mail/settings/%s/save" % self.client.rand,
                             {"name": "Alice", "lang": "en", "tz": "Asia/Seoul"})
        self.assertEqual(r.code, 303)
        r = self.client.get(self.base + "my/")
        self.assertIn("Upload files", r.text)
        self.assertIn("Shared folder (board group 1)", r.text)

    def test_unknown_scope_and_missing_folder(self):
        self.assertEqual(self.client.get(self.base + "other/").code, 404)
        r = self.client.get(self.base + "my/?path=nope")
        self.assertEqual(r.code, 404)
        self.assertIn("폴더가 없습니다", r.text)

    def test_quota_shown(self):
        self.services.accounts.set("alice", "capacity", "1M")
        self.write("f.txt", b"x" * 2048)
        r = self.client.get(self.base + "my/")
        self.assertIn("2.0 KB", r.text)
        self.assertIn("1022.0 KB", r.text)

    def test_no_session(self):
        from tests.webmailclient import MailClient
        other = MailClient(self.services)
        r = other.get(self.base + "my/")
        self.assertEqual(r.code, 303)
        r = other.upload(self.base + "my/upload", {"csrf": "x"}, [("files", "a.txt", b"a")])
        self.assertEqual(r.code, 303)
        self.assertFalse(os.path.exists(self.my("a.txt")))


class UploadTests(Base):

    def test_several_files(self):
        self.write("docs/.keep", b"")
        r = self.upload([("files", "보고서 1.txt", b"one"), ("files", "b.bin", b"\x00" * 300000),
                         ("files", "", b"")], path="docs")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), self.base + "my/?path=docs&done=uploaded")
        with open(self.my("docs", "보고서 1.txt"), "rb") as f:
            self.assertEqual(f.read(), b"one")
        self.assertEqual(os.path.getsize(self.my("docs", "b.bin")), 300000)
        self.assertEqual([n for n in os.listdir(self.my("docs")) if n.startswith(".zwms")], [])
        self.assertIn("webfolder upload: alice docs 2 file(s), 300003 bytes", self.log())
        self.assertIn("업로드했습니다", self.client.get(r.header("location")).text)

    def test_windows_path_keeps_last_part(self):
        self.assertEqual(self.upload([("files", "C:\\Users\\me\\a.txt", b"a")]).code, 303)
        self.assertTrue(os.path.isfile(self.my("a.txt")))

    def test_csrf(self):
        r = self.upload([("files", "a.txt", b"a")], csrf=False)
        self.assertEqual(r.code, 403)
        r = self.client.upload(self.base + "my/upload", {"csrf": "wrong"},
                               [("files", "a.txt", b"a")])
        self.assertEqual(r.code, 403)
        self.assertFalse(os.path.exists(self.my("a.txt")))
        self.assertEqual(os.listdir(self.my()), [])

    def test_csrf_after_the_file_refused(self):
        """The token must come before any file: nothing is written first."""
        boundary = "b" + secrets.token_hex(4)
        body = ("--%s\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\n"
                "aaa\r\n--%s\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n%s\r\n--%s--\r\n"
                % (boundary, boundary, self.client.csrf, boundary)).encode()
        r = self.raw_post(self.base + "my/upload", body, boundary)
        self.assertEqual(r.code, 403)
        self.assertEqual(os.listdir(self.my()), [])

    def raw_post(self, path, body, boundary):
        from tests.webclient import BASE, Response
        hdrs = {"Content-Type": "multipart/form-data; boundary=%s" % boundary,
                "Cookie": "; ".join("%s=%s" % kv for kv in self.client.cookies.items())}
        d = self.client.stub.request("POST", BASE + path, headers=hdrs, data=body,
                                     allow_redirects=False)
        out = []
        d.addCallback(lambda r: r.content().addCallback(lambda b: (r, b)))
        d.addBoth(out.append)
        self.client.stub.flush()
        r, b = out[0]
        return Response(r.code, r.headers, b)

    def test_truncated_body(self):
        boundary = "b" + secrets.token_hex(4)
        body = ("--%s\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n%s\r\n--%s\r\n"
                "Content-Disposition: form-data; name=\"files\"; filename=\"cut.txt\"\r\n\r\n"
                "half of it" % (boundary, self.client.csrf, boundary)).encode()
        r = self.raw_post(self.base + "my/upload", body, boundary)
        self.assertEqual(r.code, 400)
        self.assertEqual(os.listdir(self.my()), [])

    def test_not_multipart(self):
        self.assertEqual(self.client.post(self.base + "my/upload", {"x": "1"}).code, 400)

    def test_no_file(self):
        self.assertEqual(self.upload([("files", "", b"")]).code, 400)

    def test_quota(self):
        self.services.accounts.set("alice", "capacity", "1K")
        r = self.upload([("files", "small.txt", b"s" * 100), ("files", "big.bin", b"b" * 5000)])
        self.assertEqual(r.code, 200)
        self.assertIn("big.bin", r.text)
        self.assertIn("quota", r.text)
        self.assertTrue(os.path.isfile(self.my("small.txt")))
        self.assertFalse(os.path.exists(self.my("big.bin")))
        self.assertEqual(sorted(os.listdir(self.my())), ["small.txt"])
        r = self.upload([("files", "big.bin", b"b" * 5000)])
        self.assertEqual(r.code, 400)

    def test_bad_names_refused_each(self):
        r = self.upload([("files", "..", b"x"), ("files", ".hidden", b"x"),
                         ("files", "a\u202etxt.exe", b"x"), ("files", "x" * 300, b"x"),
                         ("files", "ok.txt", b"ok")])
        self.assertEqual(r.code, 200)
        self.assertEqual(os.listdir(self.my()), ["ok.txt"])
        self.assertIn("U+202E", r.text)

    def test_upload_into_bad_folder(self):
        for path in ("../bob", "/etc", "nope", "a\x00b"):
            r = self.upload([("files", "a.txt", b"a")], path=path)
            self.assertIn(r.code, (400, 404), path)
        self.assertFalse(os.path.exists(os.path.join(self.webdir, "bob", "a.txt")))

    def test_shared(self):
        r = self.upload([("files", "공유.txt", b"share")], scope="common")
        self.assertEqual(r.code, 303)
        self.assertTrue(os.path.isfile(os.path.join(self.webdir, "common1", "공유.txt")))
        page = self.client.get(self.base + "common/")
        self.assertIn("공유.txt", page.text)
        self.assertIn("게시판 그룹 1", page.text)


class DownloadTests(Base):

    def test_download_korean_name(self):
        data = os.urandom(200000)
        self.write("보고서 (최종).bin", data)
        r = self.client.get(self.base + "my/download?path=" + quote("보고서 (최종).bin"))
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("content-type"), "application/octet-stream")
        cd = r.header("content-disposition")
        self.assertTrue(cd.startswith('attachment; filename="'), cd)
        m = re.search(r"filename\*=UTF-8''(\S+)$", cd)
        self.assertEqual(unquote(m.group(1)), "보고서 (최종).bin")
        self.assertIn("webfolder download: alice", self.log()[-1])

    def test_producer_pauses(self):
        """The file goes out a chunk at a time, only while the transport wants more."""
        from zwms.web.webmail.webfolder_pages import _FileProducer

        class Request:
            finished = _disconnected = False

            def __init__(self):
                self.writes, self.producer = [], None

            def registerProducer(self, p, streaming):
                self.producer = p
                assert streaming

            def unregisterProducer(self):
                self.producer = None

            def write(self, data):
                self.writes.append(len(data))
                self.producer.pauseProducing()      # a full buffer after each chunk

            def finish(self):
                self.finished = True

        request, f = Request(), io.BytesIO(b"x" * (3 * 65536 + 10))
        p = _FileProducer(f, request)
        p.start()
        self.assertEqual(request.writes, [65536])
        p.resumeProducing()
        p.resumeProducing()
        p.resumeProducing()
        self.assertEqual(request.writes, [65536, 65536, 65536, 10])
        self.assertFalse(request.finished)
        p.resumeProducing()
        self.assertTrue(request.finished)
        self.assertTrue(f.closed)
        self.assertIsNone(request.producer)
        # A client gone mid-way: closed, never finished.
        request, f = Request(), io.BytesIO(b"x" * 200000)
        p = _FileProducer(f, request)
        p.start()
        p.stopProducing()
        self.assertTrue(f.closed)
        self.assertFalse(request.finished)

    def test_links_of_odd_names_work(self):
        """Names with &, #, +, %, quotes and spaces: the page's own links reach them."""
        names = ["a&b #1+2.txt", "100% 'q' \"d\".txt", "폴더 이름"]
        self.write("a&b #1+2.txt", b"one")
        self.write('100% \'q\' "d".txt', b"two")
        self.write("폴더 이름/안.txt", b"three")
        page = self.client.get(self.base + "my/").text
        hrefs = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*(?:download|\?path=)[^"]*)"', page)]
        bodies = {}
        for href in hrefs:
            r = self.client.get(href)
            self.assertEqual(r.code, 200, href)
            if "download" in href:
                bodies[unquote(href.split("path=", 1)[1])] = r.body
            else:
                self.assertIn("안.txt", r.text)
        self.assertEqual(bodies, {names[0]: b"one", names[1]: b"two"})

    def test_content_disposition(self):
        self.assertEqual(content_disposition('a"b\\c.txt'),
                         b'attachment; filename="a_b_c.txt"; filename*=UTF-8\'\'a%22b%5Cc.txt')
        self.assertEqual(content_disposition("한"),
                         b"attachment; filename=\"_\"; filename*=UTF-8''%ED%95%9C")

    def test_download_refusals(self):
        self.write("d/x.txt")
        for path in ("d", "nope.txt", "../bob/x", "/etc/passwd", ""):
            r = self.client.get(self.base + "my/download?path=" + quote(path))
            self.assertEqual(r.code, 404, path)


class ChangeTests(Base):

    def post(self, action, data, scope="my"):
        return self.client.post(self.base + "%s/%s" % (scope, action), data)

    def test_mkdir_rename_move_delete(self):
        r = self.post("mkdir", {"path": "", "name": "문서"})
        self.assertEqual(r.code, 303)
        self.assertTrue(os.path.isdir(self.my("문서")))
        self.assertEqual(self.post("mkdir", {"path": "문서", "name": "sub"}).code, 303)
        self.write("a.txt", b"a")
        self.assertEqual(self.post("rename", {"path": "", "item": "a.txt",
                                              "name": "b.txt"}).code, 303)
        self.assertTrue(os.path.isfile(self.my("b.txt")))
        self.write("c.txt", b"c")
        r = self.client.post(self.base + "my/move", {"path": "", "item": ["b.txt", "c.txt"],
                                                      "dest": "문서/sub"})
        self.assertEqual(r.code, 303)
        self.assertEqual(sorted(os.listdir(self.my("문서", "sub"))), ["b.txt", "c.txt"])
        r = self.client.post(self.base + "my/delete", {"path": "문서/sub",
                                                        "item": ["b.txt", "c.txt"]})
        self.assertEqual(r.code, 303)
        self.assertEqual(os.listdir(self.my("문서", "sub")), [])
        self.assertEqual(self.post("delete", {"path": "", "item": "문서"}).code, 303)
        self.assertEqual(os.listdir(self.my()), [])
        for word in ("created", "renamed", "moved", "deleted"):
            self.assertTrue(any(line.startswith("webfolder %s: alice" % word)
                                for line in self.log()), word)

    def test_refusals_keep_everything(self):
        self.write("a.txt")
        self.write("d/b.txt")
        for action, data in (("mkdir", {"name": "a.txt"}), ("mkdir", {"name": ""}),
                             ("rename", {"item": "a.txt", "name": "d"}),
                             ("rename", {"item": "", "name": "z"}),
                             ("move", {"item": "d", "dest": "d"}),
                             ("move", {}), ("delete", {}),
                             ("delete", {"item": ""})):
            r = self.post(action, dict({"path": ""}, **data))
            self.assertEqual(r.code, 400, (action, data))
        self.assertEqual(sorted(os.listdir(self.my())), ["a.txt", "d"])

    def test_csrf_on_every_post(self):
        self.write("a.txt")
        for action, data in (("mkdir", {"name": "n"}), ("rename", {"item": "a.txt", "name": "b"}),
                             ("move", {"item": "a.txt", "dest": ""}),
                             ("delete", {"item": "a.txt"})):
            for scope in ("my", "common"):
                r = self.client.post(self.base + "%s/%s" % (scope, action),
                                     dict({"path": ""}, **data), csrf=False)
                self.assertEqual(r.code, 403, action)
        self.assertEqual(os.listdir(self.my()), ["a.txt"])

    def test_shared_changes(self):
        self.assertEqual(self.post("mkdir", {"path": "", "name": "팀"}, "common").code, 303)
        self.assertTrue(os.path.isdir(os.path.join(self.webdir, "common1", "팀")))


class EscapeTests(Base):
    """No request ever reads, writes or lists outside the account's folders."""

    def setUp(self):
        Base.setUp(self)
        self.secret = os.path.join(self.services.home.root, "secret.txt")
        with open(self.secret, "wb") as f:
            f.write(b"SECRET")
        self.write("x.txt", b"BOB", user="bob")
        self.write("g2.txt", b"GROUP2", user="common2")
        self.write("mine.txt", b"mine")
        os.makedirs(self.my("d"))

    BAD = ["../bob/x.txt", "../../secret.txt", "/etc/passwd", "/" + "../" * 5 + "etc/passwd",
           "d/../../bob/x.txt", "..\\bob\\x.txt", "mine.txt\x00.jpg", "\uff0e\uff0e/bob/x.txt",
           "..\uff0fbob\uff0fx.txt", "..\u2215bob", "mine\u202etxt.exe", "a\u200bb",
           "x" * 300, "/".join(["d"] * 40), "%2e%2e/bob/x.txt", "../common2/g2.txt",
           "./mine.txt", "d/./../mine.txt", " mine.txt", "mine.txt."]

    def test_listing(self):
        for path in self.BAD:
            r = self.client.get(self.base + "my/?path=" + quote(path))
            self.assertIn(r.code, (400, 404), path)
            # Only alice's own root is ever listed.
            self.assertEqual(re.findall(r'download\?path=([^"]+)', r.text), ["mine.txt"], path)

    def test_download(self):
        for scope in ("my", "common"):
            for path in self.BAD:
                r = self.client.get(self.base + "%s/download?path=%s" % (scope, quote(path)))
                self.assertIn(r.code, (400, 404), path)
                for leak in (b"SECRET", b"BOB", b"GROUP2"):
                    self.assertNotIn(leak, r.body, path)

    def test_changes(self):
        self.maxDiff = None
        before = self.snapshot()
        for path in self.BAD:
            self.client.post(self.base + "my/mkdir", {"path": path, "name": "n"})
            self.client.post(self.base + "my/mkdir", {"path": "", "name": path})
            self.client.post(self.base + "my/rename", {"path": "", "item": path, "name": "z"})
            self.client.post(self.base + "my/rename", {"path": "", "item": "mine.txt",
                                                      "name": path})
            self.client.post(self.base + "my/move", {"path": "", "item": path, "dest": "d"})
            self.client.post(self.base + "my/move", {"path": "", "item": "mine.txt",
                                                    "dest": path})
            self.client.post(self.base + "my/delete", {"path": "", "item": path})
            self.client.post(self.base + "common/delete", {"path": "", "item": path})
            self.upload([("files", "up.txt", b"u")], path=path)
            self.upload([("files", path, b"u")])
        self.assertEqual(self.snapshot(), before)
        with open(self.secret, "rb") as f:
            self.assertEqual(f.read(), b"SECRET")
        # A browser path as an upload's file name keeps its last part only,
        # stored in alice's own folder.
        self.assertEqual(sorted(os.listdir(self.my())),
                         ["d", "g2.txt", "mine.txt", "passwd", "secret.txt", "x.txt"])
        self.assertEqual(os.listdir(self.my("d")), [])

    def snapshot(self):
        """Every file and folder of the home but alice's own web folders."""
        out = []
        mine = (self.my(), os.path.join(self.webdir, "common1"))
        for folder, dirs, files in os.walk(self.services.home.root):
            if "webdir" in folder or folder == self.services.home.root:
                out.extend(p for p in (os.path.join(folder, n) for n in dirs + files)
                           if not p.startswith(mine))
        return sorted(out)

    def test_planted_symlinks(self):
        os.symlink(self.secret, self.my("link.txt"))
        os.symlink(os.path.join(self.webdir, "bob"), self.my("bobdir"))
        r = self.client.get(self.base + "my/")
        self.assertNotIn("link.txt", r.text)
        self.assertNotIn("bobdir", r.text)
        for path in ("link.txt", "bobdir/x.txt"):
            r = self.client.get(self.base + "my/download?path=" + quote(path))
            self.assertEqual(r.code, 404, path)
            self.assertNotIn(b"SECRET", r.body)
            self.assertNotIn(b"BOB", r.body)
        r = self.upload([("files", "new.txt", b"n")], path="bobdir")
        self.assertIn(r.code, (400, 404))
        r = self.upload([("files", "link.txt", b"overwrite")])
        self.assertEqual(r.code, 400)
        self.client.post(self.base + "my/delete", {"path": "", "item": "bobdir"})
        self.client.post(self.base + "my/delete", {"path": "bobdir", "item": "x.txt"})
        with open(self.secret, "rb") as f:
            self.assertEqual(f.read(), b"SECRET")
        self.assertTrue(os.path.isfile(os.path.join(self.webdir, "bob", "x.txt")))

    def test_other_groups_shared_folder(self):
        r = self.client.get(self.base + "common/")
        self.assertNotIn("g2.txt", r.text)
        self.assertEqual(self.client.get(self.base + "common2/").code, 404)
        self.assertEqual(self.client.get(self.base + "common/download?path=g2.txt").code, 404)


class MultipartTests(SynchronousTestCase):
    """The streaming parser, chunk size from one byte up."""

    BODY = (b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
            b"abc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
            b"filename=\"\xeb\xb3\xb4.txt\"\r\nContent-Type: text/plain\r\n\r\n"
            b"hello\r\n--XyY\r\n-\r\n-\r\n--XyZ\r\nContent-Disposition: form-data; name=\"g\"; "
            b"filename*=UTF-8''%ED%95%9C.txt\r\n\r\n\r\n--XyZ--\r\nepilogue")

    def parse(self, body, ctype="multipart/form-data; boundary=XyZ"):
        out = []
        for p in multipart.iter_parts(io.BytesIO(body), ctype):
            if p.filename is None:
                out.append((p.name, p.text(100)))
            else:
                out.append((p.name, p.filename, p.content_type, b"".join(p.chunks())))
        return out

    def test_chunk_sizes(self):
        expected = [("csrf", "abc"), ("f", "보.txt", "text/plain", b"hello\r\n--XyY\r\n-\r\n-"),
                    ("g", "한.txt", "application/octet-stream", b"")]
        for size in (1, 2, 3, 5, 17, 64 * 1024):
            self.patch(multipart, "CHUNK", size)
            self.assertEqual(self.parse(self.BODY), expected, size)

    def test_unread_parts_skipped(self):
        names = [p.name for p in multipart.iter_parts(io.BytesIO(self.BODY),
                                                      b"multipart/form-data; boundary=\"XyZ\"")]
        self.assertEqual(names, ["csrf", "f", "g"])

    def test_bad(self):
        for body, ctype in ((self.BODY, "text/plain"), (self.BODY, "multipart/form-data"),
                            (self.BODY[:120], None), (b"--XyZ\r\nno colon\r\n\r\nx\r\n--XyZ--", None),
                            (b"--XyZ\r\nContent-Disposition: attachment\r\n\r\nx\r\n--XyZ--", None),
                            (b"--XyZ\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n--XyZ--", None)):
            self.assertRaises(InvalidValue, self.parse, body,
                              ctype or "multipart/form-data; boundary=XyZ")

    def test_field_limits(self):
        body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" + b"a" * 200 + \
            b"\r\n--XyZ--\r\n"
        self.assertRaises(InvalidValue, self.parse, body)
        body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--XyZ--\r\n"
        self.assertRaises(InvalidValue, self.parse, body)


class MemoryTests(Base):
    """A big upload is written through, never held: memory stays flat."""

    def test_30_mb_upload_small_peak(self):
        import tempfile
        import tracemalloc
        from zwms.web.webmail.webfolder_pages import receive_upload
        session_csrf = "token-token-token-token"
        body = tempfile.TemporaryFile()
        body.write(b"--BND\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
                   + session_csrf.encode() + b"\r\n--BND\r\nContent-Disposition: form-data; "
                   b"name=\"files\"; filename=\"big.bin\"\r\n\r\n")
        block = os.urandom(1024 * 1024)
        for _ in range(30):
            body.write(block)
        body.write(b"\r\n--BND--\r\n")
        account = self.services.accounts.get("alice")
        folders = WebFolders(self.services.home, self.services.settings, self.services.mail)
        tracemalloc.start()
        try:
            saved, failed = receive_upload(folders, account, "", False, body,
                                           b"multipart/form-data; boundary=BND", session_csrf)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual((saved, failed), ([("big.bin", 30 * 1024 * 1024)], []))
        self.assertLess(peak, 2 * 1024 * 1024)
        self.assertEqual(os.path.getsize(self.my("big.bin")), 30 * 1024 * 1024)


class StreamingRequestTests(Base):
    """The real Site: Twisted never parses the upload body into memory."""

    def test_site_upload_streamed(self):
        calls = []
        real = http._getMultiPartArgs
        self.patch(http, "_getMultiPartArgs", lambda *a: calls.append(1) or real(*a))
        site = make_site(self.services, run=inline)
        boundary = "b" + secrets.token_hex(4)
        data = os.urandom(300000)
        body = (("--%s\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n%s\r\n--%s\r\n"
                 "Content-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n\r\n"
                 % (boundary, self.client.csrf, boundary)).encode() + data
                + ("\r\n--%s--\r\n" % boundary).encode())
        head = ("POST %smy/upload?path= HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data;"
                " boundary=%s\r\nContent-Length: %d\r\nCookie: %s\r\n\r\n"
                % (self.base, boundary, len(body),
                   "; ".join("%s=%s" % kv for kv in self.client.cookies.items()))).encode()
        proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
        proto.makeConnection(transport)
        proto.dataReceived(head + body)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 303"), transport.value()[:300])
        self.assertEqual(calls, [])
        with open(self.my("big.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        # Another path's multipart form is still parsed by Twisted.
        proto.dataReceived(b"POST /mail/login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                           b"form-data; boundary=q\r\nContent-Length: 54\r\n\r\n"
                           b"--q\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--q--\r\n")
        self.assertEqual(calls, [1])
        proto.connectionLost(None)


class RealServerTests(TrialTestCase):
    """Over real TCP with the reactor's thread pool: upload then download 8 MB."""

    def setUp(self):
        from twisted.internet import reactor
        from tests.webmailclient import mail_services
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        root = self.mktemp()
        os.makedirs(root)
        self.services = mail_services(root, clock=self.clock)
        self.services.settings.set("DOMAIN", "example.com")
        self.services.accounts.add("alice", "secret1")
        self.port = reactor.listenTCP(0, make_site(self.services, reactor=reactor),
                                      interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = "http://127.0.0.1:%d" % self.port.getHost().port
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)
        self.http = HTTPClient(Agent(reactor, pool=self.pool), cookiejar=CookieJar())

    @defer.inlineCallbacks
    def test_upload_and_download(self):
        http, base = self.http, self.base
        page = yield (yield http.get(base + "/mail/")).text()
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = yield http.post(base + "/mail/login", data={"login": "alice", "password": "secret1",
                                                        "csrf": token}, allow_redirects=False)
        rand = re.match(r"^/mail/box/([^/]+)/", r.headers.getRawHeaders("location")[0]).group(1)
        yield r.content()
        wf = base + "/mail/webfolder/%s/my/" % rand
        page = yield (yield http.get(wf)).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        data = os.urandom(8 * 1024 * 1024)
        r = yield http.post(wf + "upload?path=", allow_redirects=False,
                            data={"csrf": csrf},
                            files={"files": ("큰 파일.bin", "application/octet-stream",
                                             io.BytesIO(data))})
        yield r.content()
        self.assertEqual(r.code, 303)
        r = yield http.get(wf + "download?path=" + quote("큰 파일.bin"))
        body = yield r.content()
        self.assertEqual(r.code, 200)
        self.assertEqual(len(body), len(data))
        self.assertEqual(body, data)
        self.assertIn("filename*=UTF-8''%ED%81%B0%20%ED%8C%8C%EC%9D%BC.bin",
                      r.headers.getRawHeaders("content-disposition")[0])
