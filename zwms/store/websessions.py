# -*- test-case-name: tests.test_web_session -*-
"""
Server-side web sessions that survive a restart: one small JSON file per
session under data/sessions/, written with L{zwms.fileio.atomic_write}.

The cookie carries a random token (32 bytes, URL-safe); the file is named
after the SHA-256 of that token, so that reading data/sessions/ tells
nobody a cookie that would log in.  Each session has its own CSRF token,
distinct from the cookie value (a page may show the CSRF token; it never
shows the cookie).

Sessions expire after C{idle} seconds without a request.  The last-seen
time is written back at most every C{TOUCH_EVERY} seconds, so a busy
console does not fsync on every click; an expiry is therefore exact to
within that slack, in the user's favour.

Writes fsync (blocking): the web runs L{SessionStore.create},
L{SessionStore.save} and L{SessionStore.delete} in a thread.  L{get} reads
one small file (or the memory cache) and may run in the reactor thread.
"""

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field

from zwms.fileio import atomic_write

#: Seconds without a request after which a session is gone (30 minutes).
IDLE = 30 * 60
#: Least seconds between two writes of a session's last-seen time.
TOUCH_EVERY = 60


def _file_name(token):
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest() + ".json"


def _valid_token(token):
    return (isinstance(token, str) and 20 <= len(token) <= 100
            and all(c.isalnum() or c in "-_" for c in token))


@dataclass
class WebSession:
    """
    One logged-in administrator.

    @ivar token: the cookie value (never written to disk: the file name is
        its hash).
    @ivar csrf: the token every form of this session carries.
    @ivar login: who logged in; C{role} "root" (a middle admin later).
    @ivar data: small per-session settings (the language).
    """
    token: str
    csrf: str
    login: str
    role: str
    created: float
    seen: float
    data: dict = field(default_factory=dict)

    def to_json(self):
        record = asdict(self)
        del record["token"]
        return json.dumps(record, sort_keys=True).encode("utf-8")


class SessionStore:
    """
    Sessions as files in C{folder} (data/sessions).

    @param now: a callable giving the time in seconds (the service clock).
    """

    def __init__(self, folder, now, idle=IDLE):
        self.folder = folder
        self.now = now
        self.idle = idle
        self._cache = {}   # token -> (WebSession, seen when last written)

    def _path(self, token):
        return os.path.join(self.folder, _file_name(token))

    def create(self, login, role, data=None):
        """Start a session (blocking: fsync).  @return: the L{WebSession}."""
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        now = self.now()
        session = WebSession(token=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                             login=login, role=role, created=now, seen=now,
                             data=dict(data or {}))
        atomic_write(self._path(session.token), session.to_json())
        self._cache[session.token] = (session, now)
        return session

    def get(self, token):
        """
        The live session for a cookie value, or None (unknown, damaged or
        expired; an expired one is forgotten from memory, its file is left
        for L{sweep}).
        """
        if not _valid_token(token):
            return None
        cached = self._cache.get(token)
        if cached is None:
            session = self._read(token)
            if session is None:
                return None
            cached = (session, session.seen)
            self._cache[token] = cached
        session = cached[0]
        if self.now() - session.seen > self.idle:
            self._cache.pop(token, None)
            return None
        return session

    def _read(self, token):
        try:
            with open(self._path(token), "rb") as f:
                record = json.loads(f.read().decode("utf-8"))
            return WebSession(token=token, csrf=str(record["csrf"]),
                              login=str(record["login"]), role=str(record["role"]),
                              created=float(record["created"]), seen=float(record["seen"]),
                              data=dict(record.get("data") or {}))
        except (OSError, ValueError, KeyError, TypeError):
            # Missing or damaged: no session (the admin logs in again).
            return None

    def touch(self, session):
        """
        Note a request now.  @return: True when the file should be
        rewritten (L{save}) because the last write is older than TOUCH_EVERY.
        """
        now = self.now()
        session.seen = now
        cached = self._cache.get(session.token)
        written = cached[1] if cached else 0
        return now - written >= TOUCH_EVERY

    def save(self, session):
        """Write the session (blocking: fsync)."""
        atomic_write(self._path(session.token), session.to_json())
        self._cache[session.token] = (session, session.seen)

    def delete(self, token):
        """End a session (logout); no error if it is gone."""
        self._cache.pop(token, None)
        if not _valid_token(token):
            return
        try:
            os.unlink(self._path(token))
        except FileNotFoundError:
            pass

    def sweep(self):
        """
        Remove the files of expired or damaged sessions (blocking).

        @return: how many were removed.
        """
        removed = 0
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return 0
        limit = self.now() - self.idle
        for name in names:
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.folder, name)
            try:
                with open(path, "rb") as f:
                    seen = float(json.loads(f.read().decode("utf-8"))["seen"])
            except (OSError, ValueError, KeyError, TypeError):
                seen = None
            if seen is None or seen < limit:
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def delete_login(self, login, role):
        """
        End every session of one login and role (a site's signed logout or
        removal, §35); blocking.  @return: how many were ended.
        """
        for token, (session, _) in list(self._cache.items()):
            if session.login == login and session.role == role:
                self._cache.pop(token, None)
        ended = 0
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return 0
        for name in names:
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.folder, name)
            try:
                with open(path, "rb") as f:
                    record = json.loads(f.read().decode("utf-8"))
                mine = record.get("login") == login and record.get("role") == role
            except (OSError, ValueError, AttributeError):
                continue
            if mine:
                try:
                    os.unlink(path)
                    ended += 1
                except FileNotFoundError:
                    pass
        return ended
