# -*- test-case-name: tests.test_lists -*-
"""
Per-recipient delivery status of a (NAME) mailing, for the sending account
(SPEC Q5: the Sent folder shows it; the webmail reads it with
L{read_status}).

Files, in data/userd/OWNER/lists/:

    JOBID.json  {"id", "list", "sender", "subject", "total", "created"}
                written once when the mailing is accepted
    JOBID.log   one JSON object a line, appended as results come:
                {"to": ADDRESS, "state": "sent"|"bounced"|"expired"|
                 "pending", "reply": "250 ..." , "at": SECONDS}

The log is append-only, so recording a result never rewrites a large
file; the latest line of an address is its status.  Lines are buffered a
second and appended (and fsynced) in a thread; a crash may lose the last
second of status lines, never the mail itself, and the queue entry of a
pending recipient records its result again at its next attempt.
"""

import email.parser
import email.policy
import json
import os

from twisted.internet import defer

from zwms import logs as ch
from zwms.fileio import atomic_write
from zwms.queue.spool import BOUNCED, EXPIRED, PENDING, SENT

FLUSH_DELAY = 1.0
FLUSH_LINES = 500


def status_folder(home, owner):
    """data/userd/OWNER/lists."""
    return os.path.join(home.user_dir(owner), "lists")


def subject_of(data):
    """The decoded Subject of a message, or ""."""
    try:
        head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        return str(msg.get("Subject", "") or "")
    except Exception:
        return ""


def read_status(home, owner, job_id):
    """
    The status of one mailing: (meta dict, {address: latest line dict}).
    Blocking (reads files).
    """
    folder = status_folder(home, owner)
    with open(os.path.join(folder, job_id + ".json"), "rb") as f:
        meta = json.loads(f.read().decode("utf-8"))
    latest = {}
    try:
        with open(os.path.join(folder, job_id + ".log"), "rb") as f:
            for raw in f:
                try:
                    line = json.loads(raw.decode("utf-8"))
                except ValueError:
                    continue  # a line cut by a crash
                latest[line["to"].lower()] = line
    except FileNotFoundError:
        pass
    return meta, latest


def list_mailings(home, owner):
    """The job IDs with status for C{owner}, oldest first."""
    try:
        names = os.listdir(status_folder(home, owner))
    except FileNotFoundError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json"))


class StatusBook:
    """Buffered, append-only status writer (see the module docstring)."""

    def __init__(self, services, threads=None):
        if threads is None:
            from twisted.internet.threads import deferToThread as threads
        self.services = services
        self.threads = threads
        self._buffer = {}
        self._call = None
        self._flushing = None

    def begin(self, owner, job, data):
        """Write the mailing's meta file (a Deferred, on disk when it fires)."""
        meta = {"id": job.id, "list": job.name, "sender": job.sender,
                "subject": subject_of(data), "total": job.total, "created": job.created}
        path = os.path.join(status_folder(self.services.home, owner), job.id + ".json")
        raw = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return self.threads(atomic_write, path, raw)

    def record(self, owner, job_id, results):
        """Buffer (address, state, reply) results of a mailing."""
        now = self.services.clock.seconds()
        path = os.path.join(status_folder(self.services.home, owner), job_id + ".log")
        lines = self._buffer.setdefault(path, [])
        for addr, state, reply in results:
            lines.append(json.dumps({"to": addr, "state": state, "reply": reply, "at": now},
                                    ensure_ascii=False) + "\n")
        if sum(len(v) for v in self._buffer.values()) >= FLUSH_LINES:
            self.flush()
        elif self._call is None:
            self._call = self.services.clock.callLater(FLUSH_DELAY, self.flush)

    def record_envelope(self, owner, job_id, env):
        """Record the recipients of a queue entry after an attempt."""
        results = []
        for r in env.recipients:
            if r.state in (SENT, BOUNCED, EXPIRED) or (r.state == PENDING and r.reply):
                results.append((r.addr, r.state, r.reply or r.reason))
        if results:
            self.record(owner, job_id, results)

    def flush(self):
        """Append the buffered lines now; a Deferred firing when written."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        buffer, self._buffer = self._buffer, {}
        if not buffer:
            return self._flushing or defer.succeed(None)
        previous = self._flushing or defer.succeed(None)
        # One write at a time, in order: each waits for the one before.
        d = previous.addCallback(lambda _: self.threads(_append_all, buffer))
        d.addErrback(lambda f: self.services.logs.write(
            ch.SYSTEMERROR, "Mailing status not written: %s" % f.getErrorMessage()))
        self._flushing = d
        return d


def _append_all(buffer):
    for path, lines in buffer.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab") as f:
            f.write("".join(lines).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
