# -*- test-case-name: tests.test_home -*-
"""
The server home (SPEC §0): where every file the server writes lives, and
C{safe_join}, the one way to build a path from untrusted names.
"""

import functools
import os

from zwms.errors import InvalidValue
from zwms.fileio import atomic_write

#: Folders created under the home at start.
LAYOUT = (
    "data", "data/group", "data/cal", "data/cal/special", "data/userd",
    "data/queue", "data/tls", "logs", "run", "backup", "zip", "import/userd",
    "webdir",
)

#: Files copied from zwms/defaults/ into data/ when missing.
DEFAULT_FILES = ("spam.dat", "virus.dat")


@functools.lru_cache(maxsize=1024)
def _real_base(base):
    """
    The resolved form of a base folder, cached: bases are the home's own
    folders, resolved once instead of on every message (profiled: safe_join
    was a fifth of the SMTP path).  The joined path is still resolved each
    time, so a link under the base cannot lead out.
    """
    return os.path.realpath(base)


def safe_join(base, *parts):
    """
    Join untrusted C{parts} under C{base}; raise InvalidValue if the result
    would leave C{base} (.., absolute parts, NUL bytes, links pointing out).
    """
    for part in parts:
        if not isinstance(part, str) or "\x00" in part or part == "":
            raise InvalidValue("invalid path part %r" % (part,))
        if os.path.isabs(part) or "\\" in part:
            raise InvalidValue("path part %r may not be absolute" % (part,))
    base_real = _real_base(base)
    path = os.path.realpath(os.path.join(base_real, *parts))
    if path != base_real and not path.startswith(base_real + os.sep):
        raise InvalidValue("path %r leaves its folder" % (os.path.join(*parts),))
    return path


class Home:
    """The path map of one server home."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, *parts):
        """A path under the home from trusted parts."""
        return os.path.join(self.root, *parts)

    @property
    def data(self):
        return self.path("data")

    @property
    def zwms_cfg(self):
        return self.path("data", "zwms.cfg")

    @property
    def env_cfg(self):
        return self.path("data", "env.cfg")

    @property
    def userd(self):
        return self.path("data", "userd")

    @property
    def queue(self):
        return self.path("data", "queue")

    @property
    def logs(self):
        return self.path("logs")

    @property
    def run(self):
        return self.path("run")

    @property
    def tls(self):
        return self.path("data", "tls")

    @property
    def index_db(self):
        return self.path("data", "index.db")

    def user_dir(self, account_id):
        """data/userd/ID, checked."""
        return safe_join(self.userd, account_id)

    def create(self):
        """
        Create the folders of the layout and copy the shipped defaults
        (data/spam.dat, data/virus.dat) where the home has none (idempotent).
        """
        for folder in LAYOUT:
            os.makedirs(self.path(folder), exist_ok=True)
        defaults = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defaults")
        for name in DEFAULT_FILES:
            target = self.path("data", name)
            if not os.path.exists(target):
                with open(os.path.join(defaults, name), "rb") as f:
                    atomic_write(target, f.read())
