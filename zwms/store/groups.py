# -*- test-case-name: tests.test_web_admin2_groups -*-
"""
The group tree of seed §8 (SPEC A5): real folders under data/group, and
which group each account belongs to.

Layout::

    data/group/Sales/              a group (folder names are group names)
    data/group/Sales/Seoul/        a subgroup
    data/group/Sales/.members/ID   account ID belongs to Sales; the file
                                   holds its upper group ("" = none)

Membership lives in the group's own folder, so renaming or moving a group
(one atomic folder rename) carries its members along, and deleting it
releases them.  An account is in at most one group: joining moves its
member file with one rename (atomic: never in two groups, never lost).

A group path is the names from the top joined with "/" ("Sales/Seoul";
"" is the top, which holds no members).  Names are checked: no "/", "\\",
NUL or control characters, not "." or "..", no leading "." (those are ours:
.members, temp files), at most MAX_NAME characters; every path is built with
L{zwms.home.safe_join}, so nothing leaves data/group.

The upper group (상위그룹) is how far up the tree the account may reach: an
ancestor of its group, or the group itself.  It is cleared whenever the
account's group is set, the account is moved, or its group (or an ancestor)
is renamed, moved or deleted, as §8 says.

Every method blocks (file system, fsync): run it in a thread.  Changes
hold an flock on data/group/.lock, shared with the CLI.
"""

import contextlib
import fcntl
import os
import shutil
import time

from zwms.account import check_id
from zwms.errors import InvalidValue, ZWMSError
from zwms.fileio import TMP_PREFIX, atomic_write, fsync_dir
from zwms.home import safe_join

#: Longest group name (characters).
MAX_NAME = 64
#: Deepest group tree.
MAX_DEPTH = 16
MEMBERS = ".members"
LOCK_FILE = ".lock"


class NoSuchGroup(ZWMSError):
    """The group does not exist."""


def check_name(name):
    """
    A group name, stripped; raise InvalidValue for a name that could not
    be one folder of data/group.
    """
    if not isinstance(name, str):
        raise InvalidValue("a group name must be text")
    name = name.strip()
    if not name:
        raise InvalidValue("the group name is empty")
    if len(name) > MAX_NAME:
        raise InvalidValue("the group name is longer than %d characters" % MAX_NAME)
    if name in (".", "..") or name.startswith("."):
        raise InvalidValue("a group name may not start with a dot: %r" % (name,))
    bad = [c for c in name if c in "/\\\x00" or ord(c) < 32 or ord(c) == 127]
    if bad:
        raise InvalidValue("a group name may not contain %r" % (bad[0],))
    return name


def split_path(path):
    """A group path as its checked names ("" or "/" is the top: [])."""
    if not isinstance(path, str):
        raise InvalidValue("a group path must be text")
    if "\x00" in path or "\\" in path:
        raise InvalidValue("invalid group path %r" % (path,))
    parts = [p for p in path.strip().strip("/").split("/")] if path.strip().strip("/") else []
    if len(parts) > MAX_DEPTH:
        raise InvalidValue("groups nest at most %d deep" % MAX_DEPTH)
    names = []
    for part in parts:
        if part.strip() != part:
            raise InvalidValue("invalid group name %r" % (part,))
        names.append(check_name(part))
    return names


def join_path(names):
    return "/".join(names)


def is_within(path, ancestor):
    """True when group C{path} is C{ancestor} or below it."""
    return ancestor == "" or path == ancestor or path.startswith(ancestor + "/")


class GroupStore:
    """The group tree and memberships of one home."""

    def __init__(self, home):
        self.home = home
        self.root = home.path("data", "group")

    # -- paths -------------------------------------------------------------

    def _dir(self, path):
        """The folder of an existing group.  @raise NoSuchGroup"""
        names = split_path(path)
        folder = safe_join(self.root, *names) if names else os.path.realpath(self.root)
        if not os.path.isdir(folder) or (names and os.path.islink(
                os.path.join(self.root, *names))):
            raise NoSuchGroup("no group %r" % (join_path(names),))
        return folder

    @contextlib.contextmanager
    def _locked(self):
        os.makedirs(self.root, exist_ok=True)
        fd = os.open(os.path.join(self.root, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------

    def tree(self):
        """Every group path, sorted, parents before children."""
        out = []
        if not os.path.isdir(self.root):
            return out
        for folder, dirs, _ in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and not os.path.islink(os.path.join(folder, d)))
            rel = os.path.relpath(folder, self.root)
            if rel != ".":
                out.append(rel.replace(os.sep, "/"))
        return sorted(out, key=lambda p: p.split("/"))

    def exists(self, path):
        try:
            self._dir(path)
            return True
        except (NoSuchGroup, InvalidValue):
            return False

    def members(self, path):
        """[(ID, upper group)] of one group, sorted by ID."""
        folder = os.path.join(self._dir(path), MEMBERS)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        out = []
        for name in sorted(names):
            if name.startswith("."):
                continue
            out.append((name, self._read_upper(os.path.join(folder, name))))
        return out

    def _read_upper(self, file):
        try:
            with open(file, "rb") as f:
                return f.read().decode("utf-8", "replace").strip()
        except FileNotFoundError:
            return ""

    def memberships(self):
        """{ID: (group, upper group)} over the whole tree."""
        out = {}
        for path in self.tree():
            for aid, upper in self.members(path):
                out.setdefault(aid, (path, upper))
        return out

    def group_of(self, aid):
        """(group, upper) of an account, or None when it is in no group."""
        aid = check_id(aid)
        for path in self.tree():
            file = os.path.join(self.root, *path.split("/"), MEMBERS, aid)
            if os.path.isfile(file):
                return path, self._read_upper(file)
        return None

    # -- groups ------------------------------------------------------------

    def create(self, parent, name):
        """Create group C{name} under C{parent}.  @return: its path."""
        name = check_name(name)
        with self._locked():
            folder = self._dir(parent)
            if len(split_path(parent)) + 1 > MAX_DEPTH:
                raise InvalidValue("groups nest at most %d deep" % MAX_DEPTH)
            target = safe_join(folder, name)
            if os.path.lexists(target):
                raise InvalidValue("group %r exists already" % (name,))
            os.mkdir(target)
            fsync_dir(folder)
        return join_path(split_path(parent) + [name])

    def rename(self, path, new_name=None, new_parent=None):
        """
        Rename group C{path} and/or move it under C{new_parent} (None: its
        own parent).  The upper groups of every member of the moved subtree
        are cleared (§8).

        @return: the new path.
        """
        names = split_path(path)
        if not names:
            raise InvalidValue("the top of the tree cannot be renamed")
        new_name = check_name(new_name) if new_name is not None else names[-1]
        parent = names[:-1] if new_parent is None else split_path(new_parent)
        new_path = join_path(parent + [new_name])
        if is_within(join_path(parent), join_path(names)):
            raise InvalidValue("a group cannot move into itself")
        with self._locked():
            source = self._dir(path)
            parent_dir = self._dir(join_path(parent))
            if new_path == join_path(names):
                return new_path
            if len(split_path(new_path)) + self._depth_below(source) > MAX_DEPTH:
                raise InvalidValue("groups nest at most %d deep" % MAX_DEPTH)
            target = safe_join(parent_dir, new_name)
            if os.path.lexists(target):
                raise InvalidValue("group %r exists already" % (new_path,))
            os.rename(source, target)
            fsync_dir(parent_dir)
            fsync_dir(os.path.dirname(source))
            self._clear_uppers(target)
        return new_path

    def _depth_below(self, folder):
        depth = 0
        for sub, dirs, _ in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(sub, folder)
            if rel != ".":
                depth = max(depth, rel.count(os.sep) + 1)
        return depth

    def _clear_uppers(self, folder):
        for sub, dirs, files in os.walk(folder):
            if os.path.basename(sub) == MEMBERS:
                for name in files:
                    if name.startswith("."):
                        continue
                    file = os.path.join(sub, name)
                    if self._read_upper(file):
                        atomic_write(file, b"")

    def delete(self, path):
        """
        Delete a group, its subgroups and their memberships (the accounts
        are released, not deleted).  @return: the IDs released.
        """
        names = split_path(path)
        if not names:
            raise InvalidValue("the top of the tree cannot be deleted")
        with self._locked():
            folder = self._dir(path)
            released = [aid for sub in [path] + [p for p in self.tree()
                                                  if is_within(p, path) and p != path]
                        for aid, _ in self.members(sub)]
            # One rename: the group is gone at once, whatever the removal does.
            doomed = os.path.join(self.root, "%sdel-%d" % (TMP_PREFIX, time.time_ns()))
            os.rename(folder, doomed)
            fsync_dir(os.path.dirname(folder))
            shutil.rmtree(doomed, ignore_errors=True)
        return sorted(released)

    # -- members -----------------------------------------------------------

    def _member_file(self, path, aid):
        return os.path.join(self._dir(path), MEMBERS, check_id(aid))

    def join(self, path, aids):
        """
        Put accounts into group C{path} (from whatever group they were in),
        their upper groups cleared (§8).  @return: the IDs moved.
        """
        if not split_path(path):
            raise InvalidValue("choose a group first: the top holds no accounts")
        aids = [check_id(a) for a in aids]
        with self._locked():
            folder = os.path.join(self._dir(path), MEMBERS)
            os.makedirs(folder, exist_ok=True)
            where = self.memberships()
            for aid in aids:
                target = os.path.join(folder, aid)
                old = where.get(aid)
                if old is not None and old[0] != join_path(split_path(path)):
                    os.rename(os.path.join(self.root, *old[0].split("/"), MEMBERS, aid), target)
                atomic_write(target, b"")
            fsync_dir(folder)
        return aids

    def release(self, aids):
        """Take accounts out of their group.  @return: the IDs released."""
        aids = [check_id(a) for a in aids]
        done = []
        with self._locked():
            where = self.memberships()
            for aid in aids:
                if aid in where:
                    file = os.path.join(self.root, *where[aid][0].split("/"), MEMBERS, aid)
                    os.unlink(file)
                    fsync_dir(os.path.dirname(file))
                    done.append(aid)
        return done

    def set_upper(self, aid, upper):
        """
        Set the account's upper group: its own group or an ancestor
        ("" clears it).  @raise InvalidValue: not in a group, or C{upper}
        is not above its group.
        """
        aid = check_id(aid)
        upper = join_path(split_path(upper))
        with self._locked():
            found = self.group_of(aid)
            if found is None:
                raise InvalidValue("account %r is in no group; set its group first" % aid)
            group = found[0]
            if upper and (not is_within(group, upper) or not self.exists(upper)):
                raise InvalidValue("the upper group must be %r or a group above it" % group)
            atomic_write(self._member_file(group, aid), upper.encode("utf-8"))
        return group, upper
