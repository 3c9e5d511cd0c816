# -*- test-case-name: tests.test_queue_spool -*-
"""
The outbound queue on disk (SPEC Q1): data/queue/ID.eml holds the message
bytes (CRLF line ends), data/queue/ID.json its envelope.

Commit order (DESIGN.md rule 2, SPEC S3): the message file is written
durably first (temp, fsync, rename, fsync dir), then the envelope.  The
envelope's presence commits the message, so a crash leaves either nothing
queued (an .eml without .json, swept by L{Spool.recover}) or a whole entry.
Removal goes the other way: envelope first, then the message.

Every L{Spool} method blocks (fsync): call it from a thread.  L{AsyncSpool}
wraps the same methods with an injected thread runner (deferToThread by
default; a synchronous runner in tests).
"""

import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass

from zwms.fileio import TMP_PREFIX, atomic_write, fsync_dir, sweep_temp

#: Version of the JSON envelope layout; bump when it changes.
SCHEMA = 1

PENDING = "pending"
SENT = "sent"
BOUNCED = "bounced"
EXPIRED = "expired"
STATES = (PENDING, SENT, BOUNCED, EXPIRED)

ID_RE = re.compile(r"^[0-9]{10}\.[0-9a-f]{16}\Z")

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class SpoolError(Exception):
    """A queue entry is missing or unreadable."""


def to_crlf(data):
    """
    Every line end (CRLF, bare LF, bare CR) as CRLF, and a CRLF at the end of
    a non-empty message (SPEC S1: relayed lines are CRLF-normalised).
    """
    data = _LINE_ENDS.sub(b"\r\n", bytes(data))
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


@dataclass
class Recipient:
    """
    One recipient's delivery state.

    state: pending | sent | bounced | expired.  reply: the last remote (or
    our own) reply, e.g. "550 5.1.1 No such user".  reason: the numbered §36
    bounce reason when it failed for good.  step: the §36 log line of the
    step that failed.  notified: the sender has been told (bounce queued or
    not wanted) — a bounced recipient with notified False still owes a DSN.
    """
    addr: str
    state: str = PENDING
    attempts: int = 0
    reply: str = ""
    reason: str = ""
    step: str = ""
    remote: str = ""
    code: int = 0
    notified: bool = False
    done_at: float = 0.0


@dataclass
class Envelope:
    """One queued message: who from, who to, and how far it got."""
    id: str
    sender: str
    recipients: list
    created: float
    next_attempt: float
    attempts: int = 0
    auto: bool = False
    origin: str = ""
    size: int = 0
    schema: int = SCHEMA

    def pending(self):
        """The recipients still to be tried."""
        return [r for r in self.recipients if r.state == PENDING]

    def unnotified(self):
        """Failed recipients whose sender has not been told yet."""
        return [r for r in self.recipients
                if r.state in (BOUNCED, EXPIRED) and not r.notified]

    def finished(self):
        """Nothing left to send and nobody left to tell."""
        return not self.pending() and not self.unnotified()

    def to_json(self):
        data = asdict(self)
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw):
        """Parse an envelope; raise SpoolError when it is not one."""
        try:
            data = json.loads(raw.decode("utf-8"))
            if data.get("schema") != SCHEMA:
                raise SpoolError("unknown envelope schema %r" % (data.get("schema"),))
            rcpts = [Recipient(**r) for r in data.pop("recipients")]
            env = cls(recipients=rcpts, **data)
        except SpoolError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise SpoolError("bad envelope: %s" % (e,))
        if not ID_RE.match(env.id) or not rcpts or any(r.state not in STATES for r in rcpts):
            raise SpoolError("bad envelope %r" % (env.id,))
        return env


class Spool:
    """
    The queue folder.  Blocking: every method may fsync, so run them in a
    thread (L{AsyncSpool}) when called from the reactor.
    """

    def __init__(self, home, now=time.time):
        """
        @param home: a L{zwms.home.Home} (its C{queue} folder is used) or a
            folder path.
        @param now: the wall clock, for IDs and created times.
        """
        self.folder = getattr(home, "queue", home)
        self._now = now
        os.makedirs(self.folder, exist_ok=True)

    def _path(self, msg_id, ext):
        if not ID_RE.match(str(msg_id)):
            raise SpoolError("bad queue ID %r" % (msg_id,))
        return os.path.join(self.folder, "%s.%s" % (msg_id, ext))

    def new_id(self, now=None):
        """A fresh ID: creation second (so names sort by age) and 64 random bits."""
        return "%010d.%s" % (int(self._now() if now is None else now), secrets.token_hex(8))

    def enqueue(self, sender, recipients, data, auto=False, origin="", now=None):
        """
        Queue one message durably.

        @param sender: the envelope sender ("" for a bounce).
        @param recipients: addresses (str); duplicates are dropped.
        @param data: the message bytes (line ends are made CRLF).
        @param auto: automatic mail (bounce, notice): never bounced itself.
        @param origin: where it came from (e.g. "smtp 127.0.0.1"), for logs.
        @param now: the created time (the runner's clock); the wall clock if None.
        @return: the L{Envelope}, once both files are on disk.
        """
        rcpts, seen = [], set()
        for addr in recipients:
            addr = str(addr).strip()
            if addr and addr.lower() not in seen:
                seen.add(addr.lower())
                rcpts.append(Recipient(addr=addr))
        if not rcpts:
            raise SpoolError("a queued message needs at least one recipient")
        data = to_crlf(data)
        now = self._now() if now is None else now
        env = Envelope(id=self.new_id(now), sender=str(sender or ""), recipients=rcpts,
                       created=now, next_attempt=now, auto=bool(auto),
                       origin=str(origin), size=len(data))
        # Message first, made durable (dir fsync) before the envelope exists.
        atomic_write(self._path(env.id, "eml"), data, sync_dir=True)
        atomic_write(self._path(env.id, "json"), env.to_json(), sync_dir=True)
        return env

    def update(self, env):
        """Rewrite an envelope atomically (the new state or the old, never half)."""
        self.write_envelope(env.id, env.to_json())

    def write_envelope(self, msg_id, raw):
        """Rewrite an envelope from its JSON bytes (L{Envelope.to_json})."""
        atomic_write(self._path(msg_id, "json"), raw, sync_dir=True)

    def load(self, msg_id):
        """@return: the L{Envelope} of C{msg_id}; raise SpoolError."""
        try:
            with open(self._path(msg_id, "json"), "rb") as f:
                return Envelope.from_json(f.read())
        except OSError as e:
            raise SpoolError("cannot read envelope %s: %s" % (msg_id, e))

    def read(self, msg_id):
        """@return: the message bytes of C{msg_id}; raise SpoolError."""
        try:
            with open(self._path(msg_id, "eml"), "rb") as f:
                return f.read()
        except OSError as e:
            raise SpoolError("cannot read message %s: %s" % (msg_id, e))

    def ids(self):
        """The committed entries (those with an envelope), oldest first."""
        out = []
        for name in os.listdir(self.folder):
            base, dot, ext = name.rpartition(".")
            if ext == "json" and ID_RE.match(base):
                out.append(base)
        return sorted(out)

    def remove(self, msg_id):
        """Drop a finished entry: envelope first (uncommit), then the message."""
        for ext in ("json", "eml"):
            try:
                os.unlink(self._path(msg_id, ext))
            except FileNotFoundError:
                pass
        fsync_dir(self.folder)

    def recover(self):
        """
        Auto recovery at start: sweep temp files and uncommitted messages
        (an .eml without its .json); an envelope that cannot be read, or whose
        message is gone, is renamed NAME.bad (kept for the administrator,
        never deleted).

        @return: (entries, swept, bad): the IDs to resume, the number of
            leftovers removed, the names set aside.
        """
        swept = sweep_temp(self.folder)
        names = set(os.listdir(self.folder))
        for name in sorted(names):
            base, _, ext = name.rpartition(".")
            if ext == "eml" and ID_RE.match(base) and base + ".json" not in names:
                os.unlink(os.path.join(self.folder, name))
                swept += 1
        entries, bad = [], []
        for msg_id in self.ids():
            try:
                self.load(msg_id)
                if not os.path.exists(self._path(msg_id, "eml")):
                    raise SpoolError("message file missing")
                entries.append(msg_id)
            except SpoolError:
                src = self._path(msg_id, "json")
                os.replace(src, src + ".bad")
                bad.append(msg_id + ".json.bad")
        if swept or bad:
            fsync_dir(self.folder)
        return entries, swept, bad


def _thread_runner():
    from twisted.internet.threads import deferToThread
    return deferToThread


class AsyncSpool:
    """
    L{Spool} with Deferred results: each call runs in a thread through
    C{run(f, *args)} (deferToThread unless one is injected).
    """

    def __init__(self, spool, run=None):
        self.spool = spool
        self._run = run or _thread_runner()

    def run(self, f, *args, **kwargs):
        """Run any blocking callable through the thread runner."""
        return self._run(f, *args, **kwargs)

    def __getattr__(self, name):
        method = getattr(self.spool, name)

        def call(*args, **kwargs):
            return self._run(method, *args, **kwargs)
        call.__name__ = name
        call.__doc__ = method.__doc__
        return call


def run_now(f, *args, **kwargs):
    """A synchronous thread runner for tests: call now, return a fired Deferred."""
    from twisted.internet import defer
    return defer.maybeDeferred(f, *args, **kwargs)


__all__ = ["Spool", "AsyncSpool", "Envelope", "Recipient", "SpoolError", "to_crlf",
           "run_now", "PENDING", "SENT", "BOUNCED", "EXPIRED", "TMP_PREFIX"]
