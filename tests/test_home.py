"""Home layout, shipped defaults and safe_join."""

import os

from twisted.trial.unittest import SynchronousTestCase

from zwms.errors import InvalidValue
from zwms.fileio import TMP_PREFIX, atomic_write, sweep_temp
from zwms.home import Home, safe_join


class SafeJoinTests(SynchronousTestCase):
    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.base, "a"))

    def test_inside(self):
        self.assertEqual(safe_join(self.base, "a", "b.eml"),
                         os.path.join(self.base, "a", "b.eml"))

    def test_hostile_parts(self):
        for parts in (("..",), ("a", "..", ".."), ("/etc/passwd",), ("a\x00b",), ("",),
                      ("..\\..",), ("a/../../x",)):
            self.assertRaises(InvalidValue, safe_join, self.base, *parts)

    def test_symlink_out_refused(self):
        os.symlink("/etc", os.path.join(self.base, "a", "out"))
        self.assertRaises(InvalidValue, safe_join, self.base, "a", "out", "passwd")


class HomeTests(SynchronousTestCase):
    def test_create_layout_and_defaults(self):
        home = Home(self.mktemp())
        home.create()
        for folder in ("data/userd", "data/queue", "logs", "run", "import/userd"):
            self.assertTrue(os.path.isdir(home.path(folder)), folder)
        with open(home.path("data", "spam.dat"), "rb") as f:
            self.assertIn(b"casino", f.read())
        # An administrator's own file is never overwritten.
        atomic_write(home.path("data", "virus.dat"), b"exe\n")
        home.create()
        with open(home.path("data", "virus.dat"), "rb") as f:
            self.assertEqual(f.read(), b"exe\n")

    def test_user_dir_checked(self):
        home = Home(self.mktemp())
        self.assertRaises(InvalidValue, home.user_dir, "../../etc")


class FileIOTests(SynchronousTestCase):
    def test_atomic_write_and_sweep(self):
        d = os.path.abspath(self.mktemp())
        atomic_write(os.path.join(d, "x", "f"), b"1")
        atomic_write(os.path.join(d, "x", "f"), b"22")
        with open(os.path.join(d, "x", "f"), "rb") as f:
            self.assertEqual(f.read(), b"22")
        self.assertEqual(os.listdir(os.path.join(d, "x")), ["f"])
        open(os.path.join(d, "x", TMP_PREFIX + "junk"), "wb").close()
        self.assertEqual(sweep_temp(d), 1)
        self.assertEqual(os.listdir(os.path.join(d, "x")), ["f"])
