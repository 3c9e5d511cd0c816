"""Web folders (SPEC W3, §30): personal and shared, streamed upload, quota, no escape."""

import os
import unicodedata
from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from zwms.config import Settings
from zwms.errors import InvalidValue
from zwms.home import Home
from zwms.store.webfolder import QuotaExceeded, WebFolders, check_name


class FakeMail:
    def __init__(self, used=0):
        self.used = used

    def usage(self, account_id):
        return 1, self.used


def account(aid="alice", capacity=0, boardgroup=0):
    return SimpleNamespace(id=aid, capacity=capacity, boardgroup=boardgroup)


class Base(SynchronousTestCase):
    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        self.mail = FakeMail()
        self.wf = WebFolders(self.home, Settings(self.home), self.mail)
        self.alice = account()

    def put(self, acct, folder, name, data, shared=False):
        up = self.wf.open_upload(acct, folder, name, shared)
        for i in range(0, len(data), 7):
            up.write(data[i:i + 7])
        return up.close()

    def read(self, acct, path, shared=False):
        real, size, name = self.wf.download(acct, path, shared)
        with open(real, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), size)
        return data


class OperationTests(Base):
    def test_layout(self):
        self.assertEqual(self.wf.folder(self.alice), os.path.join(self.home.root, "webdir", "alice"))
        self.assertEqual(self.wf.folder(account("bob", boardgroup=3), shared=True),
                         os.path.join(self.home.root, "webdir", "common3"))

    def test_upload_list_download(self):
        self.wf.mkdir(self.alice, "docs")
        self.assertEqual(self.put(self.alice, "docs", "보고서.txt", b"x" * 100), 100)
        self.put(self.alice, "", "a.bin", b"\x00\x01")
        entries = self.wf.list(self.alice)
        self.assertEqual([(e.name, e.is_dir) for e in entries], [("docs", True), ("a.bin", False)])
        self.assertEqual([(e.name, e.size) for e in self.wf.list(self.alice, "docs")],
                         [("보고서.txt", 100)])
        self.assertEqual(self.read(self.alice, "/docs/보고서.txt"), b"x" * 100)
        # replace an existing file
        self.put(self.alice, "docs", "보고서.txt", b"new")
        self.assertEqual(self.read(self.alice, "docs/보고서.txt"), b"new")
        # a browser's full Windows path keeps only the file name
        self.put(self.alice, "docs", "C:\\Users\\me\\photo.jpg", b"jpg")
        self.assertEqual(self.read(self.alice, "docs/photo.jpg"), b"jpg")
        self.assertRaises(InvalidValue, self.wf.download, self.alice, "docs")

    def test_no_temp_left_and_abort(self):
        up = self.wf.open_upload(self.alice, "", "big.dat")
        up.write(b"abc")
        up.abort()
        self.assertEqual(os.listdir(self.wf.folder(self.alice)), [])
        self.assertRaises(InvalidValue, up.write, b"x")
        self.put(self.alice, "", "ok.dat", b"abc")
        self.assertEqual(os.listdir(self.wf.folder(self.alice)), ["ok.dat"])

    def test_rename_move_delete(self):
        self.wf.mkdir(self.alice, "a")
        self.wf.mkdir(self.alice, "a/b")
        self.wf.mkdir(self.alice, "c")
        self.put(self.alice, "a/b", "f.txt", b"1")
        self.wf.rename(self.alice, "a/b/f.txt", "g.txt")
        self.assertEqual(self.read(self.alice, "a/b/g.txt"), b"1")
        self.assertRaises(InvalidValue, self.wf.rename, self.alice, "a/b/g.txt", "../x")
        self.assertRaises(InvalidValue, self.wf.move, self.alice, "a", "a/b")
        self.assertRaises(InvalidValue, self.wf.mkdir, self.alice, "a")
        self.assertRaises(InvalidValue, self.wf.mkdir, self.alice, "nope/x")
        self.wf.move(self.alice, "a/b/g.txt", "c")
        self.assertEqual(self.read(self.alice, "c/g.txt"), b"1")
        self.put(self.alice, "a", "g.txt", b"2")
        self.assertRaises(InvalidValue, self.wf.move, self.alice, "a/g.txt", "c")
        self.wf.move(self.alice, "a", "c")
        self.assertEqual(self.read(self.alice, "c/a/g.txt"), b"2")
        self.assertEqual(self.wf.delete(self.alice, ["c/a", "c/g.txt"]), 2)
        self.assertEqual(self.wf.list(self.alice, "c"), [])
        for root in ("", "/", "."):
            self.assertRaises(InvalidValue, self.wf.delete, self.alice, [root])

    def test_shared_by_board_group(self):
        bob, carol, dave = account("bob", boardgroup=2), account("carol", boardgroup=2), \
            account("dave", boardgroup=5)
        self.put(bob, "", "team.txt", b"t", shared=True)
        self.assertEqual(self.read(carol, "team.txt", shared=True), b"t")
        self.assertEqual(self.wf.list(dave, shared=True), [])
        self.assertRaises(InvalidValue, self.wf.download, dave, "team.txt", True)
        # personal folders stay personal
        self.put(bob, "", "mine.txt", b"m")
        self.assertRaises(InvalidValue, self.wf.download, carol, "mine.txt")


class QuotaTests(Base):
    def test_capacity_minus_mail(self):
        acct = account(capacity=1000)
        self.mail.used = 600
        self.assertEqual(self.wf.quota(acct), 400)
        self.put(acct, "", "a", b"x" * 300)
        self.assertEqual(self.wf.quota(acct), 100)
        up = self.wf.open_upload(acct, "", "b")
        up.write(b"x" * 100)
        self.assertRaises(QuotaExceeded, up.write, b"x")
        self.assertEqual(sorted(os.listdir(self.wf.folder(acct))), ["a"])  # temp removed
        # replacing a file may reuse its own bytes
        self.assertEqual(self.put(acct, "", "a", b"y" * 400), 400)

    def test_checked_again_at_commit(self):
        acct = account(capacity=1000)
        one = self.wf.open_upload(acct, "", "one")
        two = self.wf.open_upload(acct, "", "two")
        one.write(b"x" * 600)
        two.write(b"x" * 600)
        self.assertEqual(one.close(), 600)
        self.assertRaises(QuotaExceeded, two.close)
        self.assertEqual(sorted(os.listdir(self.wf.folder(acct))), ["one"])

    def test_no_limit(self):
        self.assertIsNone(self.wf.quota(account(capacity=0)))
        with open(self.home.zwms_cfg, "a") as f:
            f.write("WFCAPA=0\n")
        wf = WebFolders(self.home, Settings(self.home), self.mail)
        self.assertIsNone(wf.quota(account(capacity=10)))
        up = wf.open_upload(account(capacity=10), "", "big")
        up.write(b"x" * 100)
        self.assertEqual(up.close(), 100)


class EscapeTests(Base):
    """No path ever leaves the folder."""

    def setUp(self):
        Base.setUp(self)
        self.base = self.wf.folder(self.alice)
        self.outside = os.path.join(self.home.root, "secret.txt")
        with open(self.outside, "wb") as f:
            f.write(b"secret")
        os.makedirs(self.wf.folder(account("bob")), exist_ok=True)
        with open(os.path.join(self.wf.folder(account("bob")), "b.txt"), "wb") as f:
            f.write(b"bob")

    BAD_PATHS = [
        "..", "../bob/b.txt", "a/../../bob/b.txt", "../../secret.txt", "/etc/passwd",
        "..\\bob\\b.txt", "docs\\..\\..", "a\x00b", "\x00", ".", "./..", "...",
        ".hidden", ".tmp-0123", "a\u2215..\u2215bob",       # division slash
        "\uff0e\uff0e/bob/b.txt",                               # fullwidth dots: ．． is not ".."...
        "x\uff0fy", "x\u2044y", "x\u202eexe.txt", "x\u200by", "x\ny", "x\ty", "x\x7fy",
        "a" * 256, "가" * 86, "end.", " lead", "trail ", "/".join(["d"] * 40),
    ]

    def test_bad_paths_refused_everywhere(self):
        for path in self.BAD_PATHS:
            if path == "\uff0e\uff0e/bob/b.txt":
                continue  # a legal (if odd) name: checked below
            for call in (lambda: self.wf.download(self.alice, path),
                         lambda: self.wf.list(self.alice, path),
                         lambda: self.wf.mkdir(self.alice, path),
                         lambda: self.wf.delete(self.alice, [path]),
                         lambda: self.wf.open_upload(self.alice, path, "f.txt"),
                         lambda: self.wf.rename(self.alice, path, "x")):
                self.assertRaises(InvalidValue, call)
            # as an upload's file name, only the last part counts (a browser
            # may send C:\\dir\\file): it lands in the folder or is refused
            try:
                up = self.wf.open_upload(self.alice, "", path)
            except InvalidValue:
                continue
            self.assertEqual(os.path.dirname(up.dest), self.base)
            up.abort()
        self.assertTrue(os.path.exists(self.outside))
        self.assertTrue(os.path.exists(os.path.join(self.home.root, "webdir", "bob", "b.txt")))
        self.assertEqual(os.listdir(self.base), [])

    def test_fullwidth_dots_are_a_plain_name(self):
        """．． (U+FF0E) is a name like any other, never the parent folder."""
        self.wf.mkdir(self.alice, "\uff0e\uff0e")
        self.assertTrue(os.path.isdir(os.path.join(self.base, "\uff0e\uff0e")))
        self.assertRaises(InvalidValue, self.wf.download, self.alice, "\uff0e\uff0e/bob/b.txt")

    def test_nfc_one_name_one_file(self):
        nfd = unicodedata.normalize("NFD", "한글é.txt")
        self.put(self.alice, "", nfd, b"1")
        self.put(self.alice, "", "한글é.txt", b"2")
        self.assertEqual([e.name for e in self.wf.list(self.alice)],
                         [unicodedata.normalize("NFC", "한글é.txt")])
        self.assertEqual(self.read(self.alice, nfd), b"2")

    def test_symlinks_never_followed(self):
        os.symlink(self.outside, os.path.join(self.base, "out.txt"))
        os.symlink(os.path.dirname(self.outside), os.path.join(self.base, "outdir"))
        os.mkdir(os.path.join(self.base, "real"))
        with open(os.path.join(self.base, "real", "in.txt"), "wb") as f:
            f.write(b"in")
        os.symlink(os.path.join(self.base, "real"), os.path.join(self.base, "inlink"))
        os.symlink("real/in.txt", os.path.join(self.base, "in-file-link"))
        for path in ("out.txt", "outdir/secret.txt", "inlink/in.txt", "in-file-link"):
            self.assertRaises(InvalidValue, self.wf.download, self.alice, path)
        self.assertRaises(InvalidValue, self.wf.list, self.alice, "outdir")
        self.assertRaises(InvalidValue, self.wf.open_upload, self.alice, "outdir", "x.txt")
        self.assertRaises(InvalidValue, self.wf.open_upload, self.alice, "", "out.txt")
        self.assertRaises(InvalidValue, self.wf.mkdir, self.alice, "outdir/new")
        self.assertRaises(InvalidValue, self.wf.move, self.alice, "real/in.txt", "outdir")
        # listing skips links; deleting one removes the link, never its target
        self.assertEqual([e.name for e in self.wf.list(self.alice)], ["real"])
        self.assertRaises(InvalidValue, self.wf.delete, self.alice, ["outdir/secret.txt"])
        with open(self.outside, "rb") as f:
            self.assertEqual(f.read(), b"secret")
        # usage does not count what links point at
        self.assertEqual(self.wf.usage(self.alice), 2)

    def test_webdir_itself_a_link_to_elsewhere(self):
        os.rmdir(self.base)
        os.symlink(self.home.root, self.base)
        self.assertRaises(InvalidValue, self.wf.list, self.alice)

    def test_check_name(self):
        self.assertEqual(check_name("보고서 (최종).hwp"), "보고서 (최종).hwp")
        self.assertEqual(check_name(unicodedata.normalize("NFD", "é")), "é")
        for bad in ("", "..", "a/b", "a\\b", 5, "\u202e", "a\u00adb"):
            self.assertRaises(InvalidValue, check_name, bad)


class OpenDownloadAndTreeTests(Base):
    """open_download (what the download page streams) and tree (the move targets)."""

    def test_open_download(self):
        self.wf.mkdir(self.alice, "d")
        self.put(self.alice, "d", "보고서.txt", b"report")
        f, size, name = self.wf.open_download(self.alice, "d/보고서.txt")
        with f:
            self.assertEqual((f.read(), size, name), (b"report", 6, "보고서.txt"))
        for bad in ("d", "nope", "../x", "d/../../x", ""):
            self.assertRaises(InvalidValue, self.wf.open_download, self.alice, bad)

    def test_open_download_refuses_links_and_fifos(self):
        base = self.wf.folder(self.alice)
        outside = os.path.join(self.home.root, "secret.txt")
        with open(outside, "wb") as f:
            f.write(b"secret")
        os.symlink(outside, os.path.join(base, "link.txt"))
        os.mkfifo(os.path.join(base, "pipe"))
        self.assertRaises(InvalidValue, self.wf.open_download, self.alice, "link.txt")
        self.assertRaises(InvalidValue, self.wf.open_download, self.alice, "pipe")

    def test_tree(self):
        for path in ("b", "a", "a/x", "a/x/y"):
            self.wf.mkdir(self.alice, path)
        base = self.wf.folder(self.alice)
        os.symlink(self.home.root, os.path.join(base, "link"))
        os.mkdir(os.path.join(base, ".hidden"))
        self.assertEqual(self.wf.tree(self.alice), ["", "a", "a/x", "a/x/y", "b"])
        self.assertEqual(self.wf.tree(self.alice, shared=True), [""])
