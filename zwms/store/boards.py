# -*- test-case-name: tests.test_boards_store -*-
"""
The boards (게시판) of seed §14 (SPEC W3, A6).

Layout::

    data/board/NAME/board.json        the board's info (title, group number …)
    data/board/NAME/posts/N.eml       post number N (8 digits), a MIME message
    data/board/NAME/index.sqlite      the listing index (rebuilt from the .eml)
    data/board/NAME/.lock             flock held while posts change

The .eml files are the truth (DESIGN.md rule 2): a post's author, parent
post and edit time are header fields of its message (X-ZWMS-Author,
X-ZWMS-Parent, X-ZWMS-Edited), its attachments are MIME parts, so
L{BoardStore.reindex} rebuilds the index from them.  A new post is written
to a temp file, fsynced and linked under a number no other file holds
(never overwriting), then indexed; a crash in between leaves a post the
next reindex finds.

Threads are one level deep: a reply to a reply joins the top post's
thread.  The listing pages top posts newest first with LIMIT/OFFSET on an
index over (parent, number); the thread count and each thread's reply
count are kept in the index, so a page costs O(page), never O(all posts).

Who sees a board (seed §14) and the checks of its info are in
L{zwms.store.boardinfo}.  Names are checked (a-z, 0-9, "_", "-"); every
path is built from a checked name, so nothing leaves data/board.

Every method blocks (files, fsync, SQLite): run it in a thread.
"""

import contextlib
import email
import email.policy
import email.utils
import fcntl
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field

from zwms.account import check_id
from zwms.errors import InvalidValue, ZWMSError
from zwms.fileio import TMP_PREFIX, atomic_write, fsync_dir, sweep_temp, write_temp
from zwms.mime import compose, parse as mimeparse
from zwms.store.boardinfo import (NAME_RE, Board, can_see, check_name, clean_line, clean_text,
                                  make_board)

MAX_SUBJECT = 200
#: Largest post body (characters).
MAX_BODY = 200_000
#: Most attachments on one post.
MAX_ATTACHMENTS = 20
#: Posts per listing page.
PERPAGE = 20
INFO_FILE = "board.json"
POSTS = "posts"
INDEX_FILE = "index.sqlite"
LOCK_FILE = ".lock"
#: How a post file is named.
POST_NAME = "%08d.eml"
POST_FILE = re.compile(r"^(\d{8})\.eml\Z")

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts(
    number INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,
    author TEXT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    date REAL NOT NULL,
    edited REAL NOT NULL,
    size INTEGER NOT NULL,
    attachments INTEGER NOT NULL,
    replies INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS by_parent ON posts(parent, number);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class NoSuchBoard(ZWMSError):
    """The board does not exist."""


class BoardExists(ZWMSError):
    """A board of that name exists already."""


class NoSuchPost(ZWMSError):
    """The post does not exist on this board."""


@dataclass(frozen=True)
class PostInfo:
    """One post as the listing shows it (an index row)."""
    number: int
    parent: int
    author: str
    name: str
    subject: str
    date: float
    edited: float
    size: int
    attachments: int
    replies: int = 0


@dataclass
class Post:
    """A whole post: its row, body text and attachments (L{mimeparse.Attachment})."""
    info: PostInfo
    body: str
    attachments: list = field(default_factory=list)


@dataclass
class PostPage:
    """One page of a board's threads, newest first."""
    posts: list
    page: int
    pages: int
    threads: int
    posts_total: int


# -- the store -------------------------------------------------------------------


def _connect(path):
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA synchronous = FULL")
    db.executescript(SCHEMA)
    return db


def _row(r):
    return PostInfo(*r)


def _info(db, name, number):
    r = db.execute("SELECT %s FROM posts WHERE number = ?" % _COLUMNS,
                   (int(number),)).fetchone()
    if r is None:
        raise NoSuchPost("no post %s on board %s" % (number, name))
    return _row(r)


_COLUMNS = "number, parent, author, name, subject, date, edited, size, attachments, replies"


class BoardStore:
    """
    The boards of one home.

    @param home: the L{zwms.home.Home}.
    @param now: a clock (C{time.time} by default) for post dates.
    """

    def __init__(self, home, now=None):
        self.home = home
        self.root = home.path("data", "board")
        self.now = now or time.time

    # -- paths ---------------------------------------------------------------

    def folder(self, name):
        """data/board/NAME of a checked name (the board need not exist)."""
        return os.path.join(self.root, check_name(name))

    def _existing(self, name, rebuild=True):
        """
        The folder of an existing board.  A board without its index (copied
        in by hand, restored from a zip) gets it rebuilt from the .eml files.
        """
        folder = self.folder(name)
        # A link in data/board (made by hand) could lead out of it: not a board.
        if os.path.islink(folder) or not os.path.isfile(os.path.join(folder, INFO_FILE)):
            raise NoSuchBoard("no such board: %s" % check_name(name))
        if rebuild and not os.path.isfile(os.path.join(folder, INDEX_FILE)):
            self.reindex(name)
        return folder

    @contextlib.contextmanager
    def _locked(self, folder):
        fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _index(self, folder):
        db = _connect(os.path.join(folder, INDEX_FILE))
        try:
            yield db
        finally:
            db.close()

    # -- boards --------------------------------------------------------------

    def boards(self):
        """Every board, by name."""
        out = []
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return out
        for entry in entries:
            if NAME_RE.match(entry.name) and entry.is_dir(follow_symlinks=False):
                try:
                    out.append(self.get(entry.name))
                except (NoSuchBoard, InvalidValue):
                    continue
        return out

    def get(self, name):
        """The L{Board} called C{name}.  @raise NoSuchBoard, InvalidValue."""
        path = os.path.join(self._existing(name), INFO_FILE)
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            data["name"] = check_name(name)
            return make_board(**{k: data[k] for k in Board.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise NoSuchBoard("board %s: its info file cannot be read (%s)" % (name, e))

    def visible(self, account):
        """The boards the account sees (seed §14)."""
        return [b for b in self.boards() if can_see(b, account)]

    def create(self, name, title, group=0, description="", write="all", maxattach=0):
        """
        Make a new board.  @raise BoardExists, InvalidValue.
        @return: the L{Board}.
        """
        board = make_board(name, title, group, description, write, maxattach,
                           created=self.now())
        folder = self.folder(board.name)
        os.makedirs(self.root, exist_ok=True)
        try:
            os.mkdir(folder)
        except FileExistsError:
            if os.path.isfile(os.path.join(folder, INFO_FILE)):
                raise BoardExists("a board named %s exists already" % board.name)
        os.makedirs(os.path.join(folder, POSTS), exist_ok=True)
        with self._index(folder):
            pass
        self._write_info(board)
        fsync_dir(self.root)
        return board

    def _write_info(self, board):
        data = json.dumps(asdict(board), ensure_ascii=False, indent=1, sort_keys=True)
        atomic_write(os.path.join(self.folder(board.name), INFO_FILE), data.encode("utf-8"))

    def update(self, name, **changes):
        """Change a board's info (title, group, description, write, maxattach)."""
        board = self.get(name)
        values = asdict(board)
        for key, value in changes.items():
            if key not in ("title", "group", "description", "write", "maxattach"):
                raise InvalidValue("a board has no setting %r" % key)
            values[key] = value
        board = make_board(**values)
        self._write_info(board)
        return board

    def delete(self, name):
        """Remove a board and its posts (renamed aside first: one atomic step)."""
        folder = self._existing(name)
        aside = os.path.join(self.root, "%sdeleted-%s-%s" % (TMP_PREFIX, check_name(name),
                                                              secrets.token_hex(4)))
        os.rename(folder, aside)
        fsync_dir(self.root)
        self._sweep_deleted()

    def _sweep_deleted(self):
        """Remove boards renamed aside for deletion (also those a crash left)."""
        for entry in os.scandir(self.root):
            if entry.name.startswith(TMP_PREFIX + "deleted-"):
                shutil.rmtree(entry.path, ignore_errors=True)

    def stats(self, name):
        """(threads, posts, bytes) of a board, from its index."""
        with self._index(self._existing(name)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        return meta.get("threads", 0), meta.get("posts", 0), meta.get("bytes", 0)

    # -- reading -------------------------------------------------------------

    def page(self, name, page=1, perpage=PERPAGE):
        """One page of top posts, newest first (L{PostPage})."""
        with self._index(self._existing(name)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            threads = meta.get("threads", 0)
            pages = max(1, -(-threads // perpage))
            page = min(max(1, int(page)), pages)
            rows = db.execute("SELECT %s FROM posts WHERE parent = 0 ORDER BY number DESC "
                              "LIMIT ? OFFSET ?" % _COLUMNS, (perpage, (page - 1) * perpage))
            posts = [_row(r) for r in rows]
        return PostPage(posts, page, pages, threads, meta.get("posts", 0))

    def info(self, name, number):
        """The L{PostInfo} of post C{number}.  @raise NoSuchPost."""
        with self._index(self._existing(name)) as db:
            return _info(db, name, number)

    def replies(self, name, number):
        """The replies of top post C{number}, oldest first."""
        with self._index(self._existing(name)) as db:
            return [_row(r) for r in db.execute(
                "SELECT %s FROM posts WHERE parent = ? ORDER BY number" % _COLUMNS,
                (int(number),))]

    def read(self, name, number):
        """The stored bytes of a post.  @raise NoSuchPost."""
        return self._read(self._existing(name), name, number)

    @staticmethod
    def _read(folder, name, number):
        path = os.path.join(folder, POSTS, POST_NAME % int(number))
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NoSuchPost("no post %s on board %s" % (number, name))

    def post(self, name, number):
        """The whole L{Post}."""
        info = self.info(name, number)
        parsed = mimeparse.parse(self.read(name, number))
        return Post(info, parsed.text, parsed.attachments)

    def attachment(self, name, number, index):
        """(content type, file name, bytes) of one attachment.  @raise NoSuchPost."""
        post = self.post(name, number)
        if index not in [a.index for a in post.attachments]:
            raise NoSuchPost("post %s has no attachment %s" % (number, index))
        return mimeparse.part_of(self.read(name, number), index)

    def post_files(self, name):
        """(number, path) of every post file, in order (for zips and reindex)."""
        folder = os.path.join(self._existing(name, rebuild=False), POSTS)
        out = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return out
        for entry in entries:
            m = POST_FILE.match(entry.name)
            if m and entry.is_file(follow_symlinks=False):
                out.append((int(m.group(1)), entry.path))
        return sorted(out)

    # -- writing -------------------------------------------------------------

    def _message(self, author, author_name, subject, body, attachments, parent, date,
                 edited, domain):
        subject = clean_line(subject, MAX_SUBJECT, "subject", True)
        body = clean_text(body, MAX_BODY, "text")
        if len(attachments) > MAX_ATTACHMENTS:
            raise InvalidValue("at most %d attachments" % MAX_ATTACHMENTS)
        data = compose.build("%s@%s" % (author, domain), author_name, [], [], subject, body,
                             attachments, domain=domain, now=date)
        head = "X-ZWMS-Author: %s\r\nX-ZWMS-Parent: %d\r\n" % (author, parent)
        if edited:
            head += "X-ZWMS-Edited: %s\r\n" % email.utils.formatdate(edited)
        return head.encode("ascii") + data

    def add(self, name, author, author_name, subject, body, attachments=(), parent=0,
            domain="localhost"):
        """
        Store a new post (a reply when C{parent} names a post; a reply to a
        reply joins its thread).

        @param attachments: [(file name, content type or "", bytes)].
        @return: the new L{PostInfo}.
        @raise NoSuchBoard, NoSuchPost, InvalidValue.
        """
        author = check_id(author)
        folder = self._existing(name)
        posts = os.path.join(folder, POSTS)
        with self._locked(folder), self._index(folder) as db:
            if parent:
                r = db.execute("SELECT parent FROM posts WHERE number = ?",
                               (int(parent),)).fetchone()
                if r is None:
                    raise NoSuchPost("no post %s on board %s to reply to" % (parent, name))
                parent = r[0] or int(parent)
            now = self.now()
            data = self._message(author, author_name, subject, body, list(attachments),
                                 parent, now, 0, domain)
            top = db.execute("SELECT MAX(number) FROM posts").fetchone()[0] or 0
            number = self._link(posts, data, top + 1)
            info = self._info_of(number, data)
            self._insert(db, info, len(data))
        return info

    @staticmethod
    def _link(posts, data, number):
        """Write C{data} as a post file under the first free number from C{number}."""
        os.makedirs(posts, exist_ok=True)
        tmp = write_temp(posts, data)
        try:
            while True:
                try:
                    os.link(tmp, os.path.join(posts, POST_NAME % number))
                    break
                except FileExistsError:
                    number += 1  # a post the index lost (a crash): never overwrite it
        finally:
            os.unlink(tmp)
        fsync_dir(posts)
        return number

    @staticmethod
    def _insert(db, info, size, transaction=True):
        if transaction:
            db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO posts(%s) VALUES (?,?,?,?,?,?,?,?,?,?)"
                       % _COLUMNS, tuple(asdict(info).values()))
            if info.parent:
                db.execute("UPDATE posts SET replies = replies + 1 WHERE number = ?",
                           (info.parent,))
            else:
                _bump(db, "threads", 1)
            _bump(db, "posts", 1)
            _bump(db, "bytes", size)
            if transaction:
                db.execute("COMMIT")
        except BaseException:
            if transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _info_of(number, data):
        """The index row of a post file's bytes (what reindex trusts)."""
        msg = email.message_from_bytes(mimeparse.header_block(data),
                                       policy=email.policy.compat32)
        summary = mimeparse.summary_of(msg)
        parsed_date = summary.date.timestamp() if summary.date else 0.0
        edited = mimeparse.raw_get(msg, "X-ZWMS-Edited")
        try:
            edited = email.utils.parsedate_to_datetime(edited).timestamp() if edited else 0.0
        except (TypeError, ValueError):
            edited = 0.0
        try:
            parent = int(mimeparse.raw_get(msg, "X-ZWMS-Parent") or 0)
        except ValueError:
            parent = 0
        count = len(mimeparse.parse(data).attachments)
        return PostInfo(number=number, parent=parent,
                        author=(mimeparse.raw_get(msg, "X-ZWMS-Author") or "").strip(),
                        name=summary.sender if summary.sender != summary.sender_address
                        else "", subject=summary.subject, date=parsed_date, edited=edited,
                        size=len(data), attachments=count)

    def edit(self, name, number, subject, body, keep=None, attachments=(),
             domain="localhost"):
        """
        Change a post's subject and text; keep the attachments whose part
        index is in C{keep} (all when None) and add C{attachments}.

        @return: the new L{PostInfo}.
        """
        folder = self._existing(name)
        with self._locked(folder), self._index(folder) as db:
            old = _info(db, name, number)
            data = self._read(folder, name, number)
            parsed = mimeparse.parse(data)
            kept = []
            for a in parsed.attachments:
                if keep is None or a.index in keep:
                    ctype, filename, content = mimeparse.part_of(data, a.index)
                    kept.append((filename, ctype, content))
            new = self._message(old.author, old.name, subject, body,
                                kept + list(attachments), old.parent, old.date, self.now(),
                                domain)
            atomic_write(os.path.join(folder, POSTS, POST_NAME % old.number), new)
            info = self._info_of(old.number, new)
            info = PostInfo(**dict(asdict(info), replies=old.replies, date=old.date))
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("UPDATE posts SET subject=?, edited=?, size=?, attachments=? "
                           "WHERE number=?", (info.subject, info.edited, info.size,
                                              info.attachments, info.number))
                _bump(db, "bytes", info.size - old.size)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return info

    def delete_post(self, name, number):
        """
        Delete a post; a top post takes its replies with it.

        @return: the numbers deleted.
        """
        folder = self._existing(name)
        with self._locked(folder), self._index(folder) as db:
            info = _info(db, name, number)
            gone = [info] + ([_row(r) for r in db.execute(
                "SELECT %s FROM posts WHERE parent = ? ORDER BY number" % _COLUMNS,
                (info.number,))] if not info.parent else [])
            db.execute("BEGIN IMMEDIATE")
            try:
                for p in gone:
                    db.execute("DELETE FROM posts WHERE number = ?", (p.number,))
                    _bump(db, "posts", -1)
                    _bump(db, "bytes", -p.size)
                if info.parent:
                    db.execute("UPDATE posts SET replies = MAX(0, replies - 1) "
                               "WHERE number = ?", (info.parent,))
                else:
                    _bump(db, "threads", -1)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            # The index first: a crash now leaves files reindex would restore,
            # never an index row without its file.
            for p in gone:
                try:
                    os.unlink(os.path.join(folder, POSTS, POST_NAME % p.number))
                except FileNotFoundError:
                    pass
            fsync_dir(os.path.join(folder, POSTS))
        return [p.number for p in gone]

    def reindex(self, name):
        """Rebuild a board's index from its .eml files.  @return: posts indexed."""
        folder = self._existing(name, rebuild=False)
        with self._locked(folder):
            posts = os.path.join(folder, POSTS)
            if os.path.isdir(posts):
                sweep_temp(posts)  # halves of posts a crash left
            rows = []
            for number, path in self.post_files(name):
                with open(path, "rb") as f:
                    data = f.read()
                rows.append((self._info_of(number, data), len(data)))
            tmp = os.path.join(folder, "%sindex-%s" % (TMP_PREFIX, secrets.token_hex(4)))
            db = _connect(tmp)
            try:
                db.execute("BEGIN")
                tops = {i.number for i, _ in rows if not i.parent}
                for info, size in rows:
                    if info.parent and info.parent not in tops:
                        info = PostInfo(**dict(asdict(info), parent=0))  # an orphan: own thread
                        tops.add(info.number)
                    self._insert(db, info, size, transaction=False)
                db.execute("COMMIT")
            finally:
                db.close()
            os.replace(tmp, os.path.join(folder, INDEX_FILE))
            fsync_dir(folder)
        return len(rows)


def _bump(db, key, delta):
    db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
               "SET value = value + excluded.value", (key, delta))
