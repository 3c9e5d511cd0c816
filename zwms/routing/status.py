# -*- test-case-name: tests.test_lists -*-
"""
Per-recipient delivery status of a (NAME) mailing, for the sending account
(SPEC Q5: the Sent folder shows it; the webmail reads it with
L{read_status}).

Files, in data/userd/OWNER/lists/:

    JOBID.json  {"id", "list", "kind", "sender", "subject", "total",
                "created", "tracked", "message_id", "mdn"} written once
                when the mailing is accepted ("kind": "list" for a (NAME)
                list, "bulk" for the bulk-send window; "tracked": it has
                tracking images; "mdn": its message asks for MDNs)
    JOBID.rcpt  the recipients, one a line, in the order of the job (the
                tracking token names a recipient by its line number)
    JOBID.read  "INDEX SECONDS" a line: the first read seen of a recipient
    JOBID.log   one JSON object a line, appended as results come:
                {"to": ADDRESS, "state": "sent"|"bounced"|"expired"|
                 "pending", "reply": "250 ..." , "at": SECONDS}

The log is append-only, so recording a result never rewrites a large
file; the latest line of an address is its status.  Lines are buffered a
second and appended (and fsynced) in a thread; a crash may lose the last
second of status lines, never the mail itself, and the queue entry of a
pending recipient records its result again at its next attempt.

Read tracking: a mailing with a tracking base URL (the bulk-send window
knows the address the user reaches the webmail at) gets a random key,
kept in data/tracking/JOBID.json {"owner", "key"}.  The copy for recipient
number I carries the image URL BASE/mail/bulk/track/JOBID-I-MAC.gif, MAC
the first 128 bits of HMAC-SHA256(key, "JOBID:I"): unguessable, and it
names no address (only the line number in the owner's JOBID.rcpt).
L{check_token} answers who owns a token, or None for anything forged.

MDN (RFC 8098): a mailing whose message asks for one
(Disposition-Notification-To) keeps its Message-ID in the meta file;
L{collect_mdns} looks through the owner's Inbox for "displayed"
notifications that name that Message-ID and records the read of the
Final-Recipient.  An MDN is unauthenticated mail: a recipient could claim
a read for another address of the same mailing (it knows the Message-ID);
the tracking image has no such weakness.
"""

import email.parser
import email.policy
import hashlib
import hmac
import json
import os
import re
import secrets

from twisted.internet import defer

from zwms import logs as ch
from zwms.fileio import atomic_write
from zwms.queue.spool import BOUNCED, EXPIRED, ID_RE, PENDING, SENT

FLUSH_DELAY = 1.0
FLUSH_LINES = 500
#: The path of the tracking image under the web root (see bulk.py).
TRACK_PATH = "/mail/bulk/track/"
TOKEN_RE = re.compile(r"^([0-9]{10}\.[0-9a-f]{16})-([0-9]{1,5})-([0-9a-f]{32})\Z")


def tracking_folder(home):
    """data/tracking: which account owns a tracked mailing, and its key."""
    return home.path("data", "tracking")


def new_key():
    """A fresh tracking key (hex)."""
    return secrets.token_hex(16)


def track_token(job_id, key, index):
    """The token of recipient C{index} of a mailing (see the module docstring)."""
    mac = hmac.new(bytes.fromhex(key), ("%s:%d" % (job_id, index)).encode("ascii"),
                   hashlib.sha256).hexdigest()[:32]
    return "%s-%d-%s" % (job_id, index, mac)


def image_tag(base, job_id, key, index):
    """The <img> tag spliced into the HTML of copy C{index} (ASCII bytes)."""
    url = "%s%s%s.gif" % (base.rstrip("/"), TRACK_PATH, track_token(job_id, key, index))
    return ('<img src="%s" width="1" height="1" alt="">' % url).encode("ascii", "replace")


def check_token(home, token):
    """
    (owner, job ID, recipient index) of a genuine token, else None.
    Blocking (reads the mailing's tracking file).
    """
    m = TOKEN_RE.match(str(token))
    if not m:
        return None
    job_id, index = m.group(1), int(m.group(2))
    try:
        with open(os.path.join(tracking_folder(home), job_id + ".json"), "rb") as f:
            entry = json.loads(f.read().decode("utf-8"))
        expected = track_token(job_id, entry["key"], index)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not hmac.compare_digest(expected.encode("ascii"), str(token).encode("ascii")):
        return None
    return entry["owner"], job_id, index


def status_folder(home, owner):
    """data/userd/OWNER/lists."""
    return os.path.join(home.user_dir(owner), "lists")


#: Largest Inbox message looked at as a possible MDN (they are small).
MDN_MAX = 64 * 1024


def header_of(data, name):
    """One decoded header of a message, or ""."""
    try:
        head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        return str(msg.get(name, "") or "").strip()
    except Exception:
        return ""


def mdn_of(data):
    """
    (original Message-ID, final recipient address) of a "displayed" MDN,
    else None (any other mail, or a damaged one).
    """
    try:
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        if (msg.get_content_type() != "multipart/report" or
                str(msg.get_param("report-type", "")).lower() != "disposition-notification"):
            return None
        for part in msg.walk():
            if part.get_content_type() != "message/disposition-notification":
                continue
            payload = part.get_payload()
            if isinstance(payload, list):  # parsed as a message by the email package
                fields = payload[0] if payload else None
            else:
                raw = part.get_payload(decode=True) or b""
                fields = email.parser.BytesHeaderParser(
                    policy=email.policy.compat32).parsebytes(raw.strip() + b"\r\n\r\n")
            if fields is None:
                return None
            disposition = str(fields.get("Disposition", "")).lower()
            original = str(fields.get("Original-Message-ID", "")).strip()
            final = str(fields.get("Final-Recipient", "")).split(";", 1)[-1].strip()
            if "displayed" in disposition.split(";", 1)[-1] and original and final:
                return original, final.strip("<>")
        return None
    except Exception:
        return None


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
    Blocking (reads files).  @raise FileNotFoundError: no such mailing of
    this owner (also for a malformed job ID).
    """
    if not ID_RE.match(str(job_id)):
        raise FileNotFoundError(job_id)
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


def read_recipients(home, owner, job_id):
    """The recipients of a mailing in job order ([] when not kept)."""
    try:
        with open(os.path.join(status_folder(home, owner), job_id + ".rcpt"), "rb") as f:
            return f.read().decode("utf-8").split()
    except FileNotFoundError:
        return []


def read_reads(home, owner, job_id):
    """{recipient index: seconds of its first read} of a mailing."""
    out = {}
    try:
        with open(os.path.join(status_folder(home, owner), job_id + ".read"), "rb") as f:
            for raw in f:
                parts = raw.split()
                try:
                    out.setdefault(int(parts[0]), float(parts[1]))
                except (ValueError, IndexError):
                    continue  # a line cut by a crash
    except FileNotFoundError:
        pass
    return out


def state_of(line):
    """
    What the user is shown for one recipient's latest line (None: nothing
    recorded yet): (queued|delivered|deferred|bounced, reason).
    """
    if line is None:
        return "queued", ""
    state = line.get("state")
    if state == SENT:
        return "delivered", line.get("reply", "")
    if state in (BOUNCED, EXPIRED):
        return "bounced", line.get("reply", "")
    return "deferred", line.get("reply", "")


def summary(home, owner, job_id):
    """
    One mailing for the status list: its meta plus counts C{delivered},
    C{failed}, C{pending} (queued or deferred) and C{read}.  Blocking.
    """
    meta, latest = read_status(home, owner, job_id)
    return tally(meta, latest, read_reads(home, owner, job_id))


def tally(meta, latest, reads):
    """L{summary} from what L{read_status} and L{read_reads} returned."""
    delivered = sum(1 for v in latest.values() if v.get("state") == SENT)
    failed = sum(1 for v in latest.values() if v.get("state") in (BOUNCED, EXPIRED))
    total = int(meta.get("total", 0))
    out = dict(meta)
    out.update(delivered=delivered, failed=failed,
               pending=max(0, total - delivered - failed), read=len(reads))
    return out


def record_read(home, owner, job_id, index, now):
    """
    Append the first read of recipient C{index} (nothing when one is
    already there).  Blocking.  @return: True when it was recorded.
    """
    if index in read_reads(home, owner, job_id):
        return False
    path = os.path.join(status_folder(home, owner), job_id + ".read")
    with open(path, "ab") as f:
        f.write(("%d %.0f\n" % (index, now)).encode("ascii"))
        f.flush()
        os.fsync(f.fileno())
    return True


def collect_mdns(home, mail, owner, examined):
    """
    Record the reads that MDNs in C{owner}'s Inbox report for the owner's
    mailings that asked for them.  Blocking (reads mail).

    @param mail: the mail store (C{messages}, C{read}).
    @param examined: a set of Inbox message names already looked at (kept
        by the caller, so that each message is read once).
    @return: the number of reads recorded.
    """
    wanted, since = {}, None
    for job_id in list_mailings(home, owner):
        try:
            with open(os.path.join(status_folder(home, owner), job_id + ".json"), "rb") as f:
                meta = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("mdn") and meta.get("message_id"):
            wanted[meta["message_id"].lower()] = job_id
            created = float(meta.get("created", 0))
            since = created if since is None else min(since, created)
    if not wanted:
        return 0
    recorded = 0
    for info in mail.messages(owner, "Inbox"):
        if info.name in examined or info.received < since - 60 or info.size > MDN_MAX:
            continue
        examined.add(info.name)
        try:
            found = mdn_of(mail.read(owner, "Inbox", info.name))
        except Exception:
            continue  # a message gone meanwhile
        job_id = found and wanted.get(found[0].lower())
        if not job_id:
            continue
        lowered = [a.lower() for a in read_recipients(home, owner, job_id)]
        if found[1].lower() in lowered:
            if record_read(home, owner, job_id, lowered.index(found[1].lower()),
                           info.received):
                recorded += 1
    return recorded


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

    def begin(self, owner, job, data, recipients=()):
        """
        Write the mailing's meta file, its recipients and (when it is
        tracked) its tracking file: a Deferred, on disk when it fires.
        """
        home = self.services.home
        kind = "bulk" if str(job.origin).startswith("bulk") else "list"
        tracked = bool(getattr(job, "track", "") and getattr(job, "track_key", ""))
        meta = {"id": job.id, "list": job.name, "kind": kind, "sender": job.sender,
                "subject": subject_of(data), "total": job.total, "created": job.created,
                "tracked": tracked, "message_id": header_of(data, "Message-ID"),
                "mdn": bool(header_of(data, "Disposition-Notification-To"))}
        folder = status_folder(home, owner)
        raw = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
        rcpt = "".join(a + "\n" for a in recipients).encode("utf-8")
        track = json.dumps({"owner": owner, "key": getattr(job, "track_key", "")}).encode()

        def write():
            os.makedirs(folder, exist_ok=True)
            atomic_write(os.path.join(folder, job.id + ".rcpt"), rcpt, sync_dir=False)
            if tracked:
                os.makedirs(tracking_folder(home), exist_ok=True)
                atomic_write(os.path.join(tracking_folder(home), job.id + ".json"), track)
            atomic_write(os.path.join(folder, job.id + ".json"), raw)
        return self.threads(write)

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
