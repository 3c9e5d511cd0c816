# -*- test-case-name: tests.test_lists -*-
"""
Fan-out: one message to many recipients (mailing lists, SPEC Q5, seed §21)
without holding the copies in memory and without blocking the reactor.

A job is committed durably before the sender gets its 250, in
data/queue/fanout/:

    JOBID.eml   the message (CRLF)
    JOBID.rcpt  the recipients, one a line (a snapshot: later edits of the
                list file do not change a job already accepted)
    JOBID.json  the job: sender, mode, owner, total, cursor  (commit point)

The job is then worked through in batches of L{BATCH} recipients: local
recipients are delivered to their mailboxes, remote ones become ordinary
queue entries (data/queue/ID.eml + ID.json, written in a thread with one
fsync per file and one folder fsync per batch), then the cursor is saved
and the entries are handed to the L{QueueRunner} (C{adopt}).  The next
batch is written only when the runner has tried at least half of the
previous one, so memory, open timers and queue files stay bounded by about
two batches whatever the size of the list.

Modes: "personal" ((NAME) lists): one entry per recipient, its To: header
rewritten to that recipient alone (L{zwms.routing.lists.personal}), and
per-recipient status recorded for the owner account
(L{zwms.routing.status}) and, when the job has a tracking base URL (the
bulk-send window), a read-tracking image with the copy's own token
spliced into its HTML part (L{zwms.routing.lists.html_slot}); "plain"
(NAME@DOMAIN lists): the message unchanged, up to L{PLAIN_CHUNK}
recipients per entry, no status.

Crash safety: entry IDs are derived from (job, index), and entries are
registered with the runner only after the cursor past them is on disk.  At
start, L{FanOut.recover} (run before the runner starts) deletes the entries
of each job's unfinished batch — written but never registered, so never
sent — and the batch is written again: no remote copy is sent twice by the
fan-out.  Local copies of that batch may be delivered twice after a crash
at that instant (at least once, like the runner).
"""

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass

from twisted.internet import defer, task

from zwms import logs as ch
from zwms.account import Delivery
from zwms.fileio import atomic_write, fsync_dir, write_temp
from zwms.queue.spool import ID_RE, Envelope, Recipient, to_crlf

#: Recipients handled per batch.
BATCH = 500
#: Recipients per queue entry of a "plain" list.
PLAIN_CHUNK = 100
#: Seconds before a batch that failed on our side is tried again.
RETRY = 60
SCHEMA = 1
PERSONAL, PLAIN = "personal", "plain"


@dataclass
class Job:
    """One fan-out job (see the module docstring)."""
    id: str
    sender: str
    mode: str
    total: int
    created: float
    cursor: int = 0
    owner: str = ""
    name: str = ""
    origin: str = ""
    batch: int = BATCH
    #: Read tracking: the webmail's base URL and the mailing's key ("": none).
    track: str = ""
    track_key: str = ""
    schema: int = SCHEMA

    def to_json(self):
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw):
        data = json.loads(raw.decode("utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError("unknown fan-out schema %r" % (data.get("schema"),))
        return cls(**data)


def entry_id(job, index):
    """The queue ID of the entry starting at recipient C{index} of C{job}."""
    digest = hashlib.sha256(("%s:%d" % (job.id, index)).encode("ascii")).hexdigest()
    return "%010d.%s" % (int(job.created), digest[:16])


def origin_of(job):
    """The C{origin} of the job's queue entries: C{list JOBID OWNER}."""
    return "list %s %s" % (job.id, job.owner or "-")


def parse_origin(origin):
    """(job ID, owner or None) of a fan-out entry's origin, else None."""
    parts = str(origin or "").split()
    if len(parts) == 3 and parts[0] == "list" and ID_RE.match(parts[1]):
        return parts[1], (None if parts[2] == "-" else parts[2])
    return None


class JobStore:
    """The job files (blocking: call from a thread)."""

    def __init__(self, queue_folder):
        self.queue = queue_folder
        self.folder = os.path.join(queue_folder, "fanout")
        os.makedirs(self.folder, exist_ok=True)

    def _path(self, job_id, ext):
        if not ID_RE.match(str(job_id)):
            raise ValueError("bad fan-out job ID %r" % (job_id,))
        return os.path.join(self.folder, "%s.%s" % (job_id, ext))

    def create(self, job, data, recipients):
        """Write the job durably; the .json written last is the commit."""
        atomic_write(self._path(job.id, "eml"), to_crlf(data), sync_dir=False)
        text = "".join(addr + "\n" for addr in recipients)
        atomic_write(self._path(job.id, "rcpt"), text.encode("utf-8"), sync_dir=True)
        atomic_write(self._path(job.id, "json"), job.to_json(), sync_dir=True)

    def save(self, job):
        atomic_write(self._path(job.id, "json"), job.to_json(), sync_dir=True)

    def load(self, job_id):
        """The job C{job_id} while it is being written out, else None."""
        try:
            with open(self._path(job_id, "json"), "rb") as f:
                return Job.from_json(f.read())
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def data(self, job_id):
        with open(self._path(job_id, "eml"), "rb") as f:
            return f.read()

    def recipients(self, job_id):
        with open(self._path(job_id, "rcpt"), "rb") as f:
            return f.read().decode("utf-8").split()

    def remove(self, job_id):
        for ext in ("json", "rcpt", "eml"):
            try:
                os.unlink(self._path(job_id, ext))
            except FileNotFoundError:
                pass
        fsync_dir(self.folder)

    def jobs(self):
        """
        Every committed job; files without a .json (a crash during
        L{create}) are removed, unreadable jobs set aside as .bad.
        """
        names = set(os.listdir(self.folder))
        out = []
        for name in sorted(names):
            base, _, ext = name.rpartition(".")
            if ext in ("eml", "rcpt") and base + ".json" not in names and ID_RE.match(base):
                os.unlink(os.path.join(self.folder, name))
            elif ext == "json" and ID_RE.match(base):
                path = os.path.join(self.folder, name)
                try:
                    with open(path, "rb") as f:
                        out.append(Job.from_json(f.read()))
                except (ValueError, TypeError, KeyError, OSError):
                    os.replace(path, path + ".bad")
        return out

    def batch_ids(self, job):
        """The entry IDs of the batch starting at the job's cursor."""
        end = min(job.cursor + job.batch, job.total)
        step = 1 if job.mode == PERSONAL else PLAIN_CHUNK
        return [entry_id(job, i) for i in range(job.cursor, end, step)]

    def drop_unregistered(self, job):
        """Delete the entries of the unfinished batch (see the module doc)."""
        removed = 0
        # Plain batches group remote recipients after local ones are taken
        # out, so any index of the batch may start an entry.
        end = min(job.cursor + job.batch, job.total)
        for i in range(job.cursor, end):
            eid = entry_id(job, i)
            for ext in ("json", "eml"):
                try:
                    os.unlink(os.path.join(self.queue, "%s.%s" % (eid, ext)))
                    removed += 1
                except FileNotFoundError:
                    pass
        if removed:
            fsync_dir(self.queue)
        return removed

    def write_entries(self, job, entries, cursor, now):
        """
        Write queue entries [(index, [addresses], bytes)] durably, then the
        job's new cursor.

        @return: the L{Envelope}s written.
        """
        envs, pending = [], []
        for index, addresses, data in entries:
            data = to_crlf(data)
            env = Envelope(id=entry_id(job, index), sender=job.sender,
                           recipients=[Recipient(addr=a) for a in addresses],
                           created=now, next_attempt=now, origin=origin_of(job),
                           size=len(data))
            # Message before envelope, as Spool.enqueue; the folder fsync
            # below makes every rename of the batch durable at once.
            eml = write_temp(self.queue, data)
            os.replace(eml, os.path.join(self.queue, env.id + ".eml"))
            pending.append(env)
        if pending:
            fsync_dir(self.queue)
        for env in pending:
            tmp = write_temp(self.queue, env.to_json())
            os.replace(tmp, os.path.join(self.queue, env.id + ".json"))
            envs.append(env)
        if envs:
            fsync_dir(self.queue)
        job.cursor = cursor
        self.save(job)
        return envs


class FanOut:
    """
    Works fan-out jobs into the queue.

    @param services: the service layer (directory, mail, logs, clock, home).
    @param runner: the L{zwms.queue.runner.QueueRunner} (C{adopt},
        C{observers}).
    @param threads: C{run(f, *args)} -> Deferred (deferToThread).
    @param status: a L{zwms.routing.status.StatusBook} or None.
    """

    def __init__(self, services, runner, threads=None, status=None, batch=BATCH):
        if threads is None:
            from twisted.internet.threads import deferToThread as threads
        self.services = services
        self.runner = runner
        self.threads = threads
        self.status = status
        self.batch = batch
        self.store = JobStore(services.home.queue)
        self._running = {}
        self._outstanding = {}
        self._waiters = {}
        self._recovered = []
        self._stopping = False
        runner.observers.append(self._observed)

    def _log(self, channel, text):
        self.services.logs.write(channel, text)

    # -- life cycle -------------------------------------------------------------

    @defer.inlineCallbacks
    def recover(self):
        """
        Before the runner starts: drop the never-registered entries of each
        unfinished job's current batch.  @return: the number of jobs.
        """
        jobs = yield self.threads(self.store.jobs)
        for job in jobs:
            yield self.threads(self.store.drop_unregistered, job)
        self._recovered = jobs
        if jobs:
            self._log(ch.SYSTEMSTATUS, "Fan-out resumes %d jobs" % len(jobs))
        return len(jobs)

    def start(self):
        """After the runner started: work the recovered jobs."""
        self._stopping = False
        jobs, self._recovered = self._recovered, []
        for job in jobs:
            self._start(job)

    def stop(self):
        """Stop between batches (the cursor on disk says where to go on)."""
        self._stopping = True
        for job_id, d in list(self._waiters.items()):
            self._waiters.pop(job_id, None)
            d.callback(None)
        waits = list(self._running.values())
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    def when_done(self, job_id):
        """A Deferred firing when the job has been written out (tests)."""
        d = self._running.get(job_id)
        if d is None:
            return defer.succeed(None)
        out = defer.Deferred()
        d.addBoth(lambda r: (out.callback(None), r)[1])
        return out

    # -- submitting ----------------------------------------------------------------

    @defer.inlineCallbacks
    def submit(self, sender, recipients, data, mode=PERSONAL, owner="", name="", origin="",
               track=""):
        """
        Commit a job durably and start it.

        @param track: the webmail's base URL ("https://mail.example.com"):
            personal copies with an HTML part get a read-tracking image
            (only with an owner and a status book).

        @return: a Deferred firing with the job ID once it is on disk.
        """
        if mode not in (PERSONAL, PLAIN):
            raise ValueError("unknown fan-out mode %r" % (mode,))
        recipients = list(recipients)
        if not recipients:
            raise ValueError("a mailing needs at least one recipient")
        now = self.services.clock.seconds()
        tracked = bool(track and owner and mode == PERSONAL and self.status is not None)
        job = Job(id="%010d.%s" % (int(now), secrets.token_hex(8)), sender=sender or "",
                  mode=mode, total=len(recipients), created=now, owner=owner or "",
                  name=name, origin=origin, batch=self.batch,
                  track=track if tracked else "",
                  track_key=secrets.token_hex(16) if tracked else "")
        yield self.threads(self.store.create, job, data, recipients)
        if self.status is not None and owner and mode == PERSONAL:
            # After the commit point: a crash in between loses this
            # mailing's status page (and its reads), never its mail.
            yield self.status.begin(owner, job, data, recipients)
        self._log(ch.MAILSERVER, "Mailing %s accepted: %s <%s>, %d recipients (%s)"
                  % (job.id, name or "-", sender, job.total, mode))
        self._start(job)
        return job.id

    def _start(self, job):
        if job.id in self._running:
            return
        d = self._run(job)
        self._running[job.id] = d

        def done(result):
            self._running.pop(job.id, None)
            return result
        d.addBoth(done)
        d.addErrback(lambda f: self._log(
            ch.SYSTEMERROR, "Mailing %s stopped: %s" % (job.id, f.getErrorMessage())))

    # -- working a job ---------------------------------------------------------------

    @defer.inlineCallbacks
    def _run(self, job):
        data = yield self.threads(self.store.data, job.id)
        recipients = yield self.threads(self.store.recipients, job.id)
        parts = slot = None
        if job.mode == PERSONAL:
            from zwms.routing.lists import html_slot, split_head
            parts = split_head(data)
            if job.track and job.track_key:
                slot = html_slot(parts)
        while job.cursor < job.total and not self._stopping:
            try:
                yield self._batch(job, data, parts, recipients, slot)
            except Exception as e:
                self._log(ch.SYSTEMERROR, "Mailing %s batch at %d failed, retried in %ds: %s"
                          % (job.id, job.cursor, RETRY, e))
                yield task.deferLater(self.services.clock, RETRY, lambda: None)
        if job.cursor >= job.total:
            yield self.threads(self.store.remove, job.id)
            self._log(ch.MAILSERVER, "Mailing %s queued: %d recipients" % (job.id, job.total))

    @defer.inlineCallbacks
    def _batch(self, job, data, parts, recipients, slot=None):
        from zwms.routing.lists import personal
        from zwms.routing.status import image_tag
        start = job.cursor
        end = min(start + job.batch, job.total)
        services = self.services
        deliveries, local_status, remote = [], [], []
        for index in range(start, end):
            addr = recipients[index]
            res = yield defer.maybeDeferred(services.directory.resolve, addr)
            if parts is None:
                copy = data
            elif slot is not None:
                copy = personal(parts, addr, slot, image_tag(job.track, job.id, job.track_key,
                                                             index))
            else:
                copy = personal(parts, addr)
            if res.kind == "local":
                head = b"Return-Path: <" + job.sender.encode("ascii", "replace") + b">\r\n"
                deliveries.extend(Delivery(a, head + copy) for a in res.accounts)
                local_status.append((addr, "sent", "delivered locally"))
            elif res.kind == "unknown":
                local_status.append((addr, "bounced", "550 Error. User not found"))
            else:
                targets = res.addresses if res.kind == "remote" else (addr,)
                remote.append((index, list(targets), copy))
        if deliveries:
            yield defer.maybeDeferred(services.mail.deliver, deliveries)
        entries = remote
        if job.mode == PLAIN:
            entries = []
            for i in range(0, len(remote), PLAIN_CHUNK):
                chunk = remote[i:i + PLAIN_CHUNK]
                addrs = [a for _, targets, _ in chunk for a in targets]
                entries.append((chunk[0][0], addrs, data))
        envs = yield self.threads(self.store.write_entries, job, entries, end,
                                  services.clock.seconds())
        if self.status is not None and job.owner and job.mode == PERSONAL and local_status:
            self.status.record(job.owner, job.id, local_status)
        self._outstanding.setdefault(job.id, set()).update(env.id for env in envs)
        self.runner.adopt(envs)
        yield self._drain(job)

    def _drain(self, job):
        """Wait until the runner has tried at least half of what is outstanding."""
        waiting = self._outstanding.get(job.id, set())
        if len(waiting) <= job.batch // 2 or self._stopping:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters[job.id] = d
        return d

    def _observed(self, env):
        parsed = parse_origin(env.origin)
        if parsed is None:
            return
        job_id, owner = parsed
        if self.status is not None and owner:
            self.status.record_envelope(owner, job_id, env)
        waiting = self._outstanding.get(job_id)
        if waiting is None:
            return
        waiting.discard(env.id)
        if not waiting and job_id not in self._running:
            self._outstanding.pop(job_id, None)
        d = self._waiters.get(job_id)
        if d is not None and len(waiting) <= self.batch // 2:
            self._waiters.pop(job_id, None)
            d.callback(None)
