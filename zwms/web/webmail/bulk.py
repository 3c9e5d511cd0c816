# -*- test-case-name: tests.test_webmail_bulk -*-
"""
/mail/bulk/RAND/...: bulk sending and the delivery status of mailings
(SPEC Q5, seed §21, the user side).

  (GET)             the bulk-send window: uploaded address lists, upload,
                    compose and send (accounts with C{bulksend}; others 403)
  upload            POST multipart: field C{file}, an address list
  delete            POST C{name}: remove an uploaded list
  send              POST multipart: C{list}, C{subject}, C{body}, C{html}
                    ("1": HTML with read tracking), C{mdn} ("1": ask for
                    read receipts), C{attachment} (files)
  sent              the account's mailings ((NAME) lists and bulk sends):
                    subject, date, list, total, delivered, failed, pending,
                    read (every user; linked from the Sent folder)
  sent/JOBID        one mailing: counts, how far the fan-out is, each
                    recipient's status (queued, delivered, deferred or
                    bounced with the reason) and read time; C{?state=} and
                    C{?page=}; reloads itself (Refresh header) while
                    recipients are pending
  /mail/bulk/track/TOKEN.gif   the read-tracking image (no session)

Read confirmation: a tracking image, chosen over MDN
(Disposition-Notification-To) because an MDN needs the reader's consent
and client support (most webmail services never send one), lands in the
sender's Inbox as a mail to parse, and says nothing for the copies it is
not sent for; an image needs no mail back and is recorded here at once.
A bulk send written as HTML (the default of the window) gets, in each
personal copy, an <img> whose URL carries an unguessable per-recipient
token (L{zwms.routing.status.track_token}: HMAC of the mailing's own key;
the token names the recipient's line number, never the address), spliced
in by the fan-out (L{zwms.routing.lists.html_slot}).  The first fetch of
the image records the read time.  Limits, said on the pages too: a
plain-text message carries no image, so it has no read confirmation; a
reader whose mail program does not load images is never counted as
read; mail to a (NAME) list from the compose page (plain text) or by SMTP
(the server does not know the webmail's address then) is not tracked by
an image.  A forged or unknown token gets the same 1x1 image and records
nothing.

MDN answers are honoured as well, as a second source: a mailing whose
message asks for them (Disposition-Notification-To: the bulk window's
"ask for read receipts" box, off by default since it makes mail programs
prompt each reader; or a (NAME) mail whose sender's mail program asked)
has the "displayed" notifications that arrive in the sender's Inbox
counted as reads (L{zwms.routing.status.collect_mdns}, run when the status
pages are shown; each Inbox message is read once per process).

Bulk sending: the chosen list (at most L{MAX_ADDRESSES}) goes to the same
fan-out as a (NAME) list, in personal mode (each copy addressed to its
recipient alone) with the account as owner and sender (bounces come back
to it), counted once against the daily limits (like a (NAME) mail from
the compose page); the message size limits and the relay permission for
outside recipients apply.  The account's per-message recipient limit does
not: the bulk-send permission is the administrator's grant of lists.

Address lists: one address a line (or "Name <address>"), or a CSV file
with an e-mail column (a header such as "E-mail", "E-mail Address",
"전자 메일 주소"); UTF-8 (with or without BOM), UTF-16 with BOM or EUC-KR;
bad lines are reported and skipped, repeats dropped.  Stored as
data/userd/ID/bulk/NAME.txt, one address a line, NAME made of the file
name's letters, digits, "." "_" "-".
"""

import csv
import email.policy
import email.utils
import mimetypes
import os
import re
from email.message import EmailMessage
from html import escape

from klein import Klein
from twisted.internet import defer

from zwms import i18n
from zwms import logs as logchannels
from zwms.account import Delivery, is_address
from zwms.errors import InvalidValue, ZWMSError
from zwms.home import safe_join
from zwms.queue.spool import ID_RE
from zwms.routing import status as mstatus
from zwms.routing.lists import MAX_RECIPIENTS
from zwms.smtp.relay import RelayRules
from zwms.web.console import Redirect, client_ip, query_args, to_int
from zwms.web.webmail.state import page

#: Most addresses of one list (seed §21).
MAX_ADDRESSES = MAX_RECIPIENTS
#: Largest address-list file accepted.
MAX_FILE = 4 * 1024 * 1024
#: Bad lines listed in the upload report (the count is always given).
MAX_REPORTED = 50
#: Mailings per page of the status list, recipients per page of a mailing.
JOBS_PER_PAGE = 30
RCPTS_PER_PAGE = 200
#: Seconds between reloads of a mailing's page while recipients are pending.
REFRESH = 15
#: Most uploaded lists an account keeps.
MAX_LISTS = 50
NAME_RE = re.compile(r"^\w[\w.-]{0,63}\Z")
#: A Host header good enough for the tracking URL (name or IP, optional port).
HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))(:[0-9]{1,5})?\Z")
EMAIL_HEADERS = ("e-mail", "email", "e-mail address", "email address", "mail",
                 "e-mail 주소", "전자 메일 주소", "전자메일", "이메일", "메일", "메일주소", "메일 주소")
STATES = ("queued", "delivered", "deferred", "bounced")
FLASHES = ("uploaded", "deleted", "sent")
#: The 1x1 transparent GIF of the tracking URL.
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
       b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


class Problem(InvalidValue):
    """
    A refusal shown on the page: a catalog msgid with %(name)s fields and
    their values (translated first, then filled in).
    """

    def __init__(self, text, **values):
        InvalidValue.__init__(self, text % values if values else text)
        self.text = text
        self.values = values


def problem(error):
    """(msgid, values) of an error for the templates."""
    if isinstance(error, Problem):
        return error.text, error.values
    return str(error).replace("%", "%%"), {}


# -- address-list files ------------------------------------------------------------


def decode_text(data):
    """An uploaded text file as str: UTF-8 (BOM or not), UTF-16 with BOM, EUC-KR."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise Problem("The file is not readable text (UTF-16 damaged).")
    for charset in ("utf-8", "cp949"):
        try:
            return data.decode(charset)
        except UnicodeDecodeError:
            continue
    raise Problem("The file is neither UTF-8 nor EUC-KR text.")


def _address_in(text):
    """The address of "a@b", "Name <a@b>" or "<a@b>", else None."""
    text = text.strip().strip('"').strip()
    if is_address(text):
        return text
    name, addr = email.utils.parseaddr(text)
    if addr and is_address(addr) and "<" in text:
        return addr
    return None


def parse_addresses(data):
    """
    Read an address-list file (see the module docstring).

    @return: (addresses in file order, [(line number, text)] bad lines,
        number of repeats dropped).
    @raise InvalidValue: not text, no address at all, or over
        L{MAX_ADDRESSES} addresses.
    """
    lines = decode_text(data).splitlines()
    column, first = None, 0
    for number, line in enumerate(lines):
        # One CSV row a line: an address list has no multi-line fields, and a
        # stray quote must not swallow the lines after it.
        row = next(csv.reader([line]), [])
        if not any(cell.strip() for cell in row):
            continue
        names = [cell.strip().lower() for cell in row]
        for i, cell in enumerate(names):
            if cell in EMAIL_HEADERS or ("mail" in cell and "@" not in cell) or "메일" in cell:
                column, first = i, number + 1
                break
        break
    out, bad, seen, repeats = [], [], set(), 0
    for number in range(first, len(lines)):
        line = lines[number]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if column is not None:
            row = next(csv.reader([line]), [])
            addr = _address_in(row[column]) if column < len(row) else None
        else:
            addr = _address_in(line)
            if addr is None and re.search(r"[,;\t]", line):
                cells = [c for c in re.split(r"[,;\t]", line) if _address_in(c)]
                addr = _address_in(cells[0]) if cells else None
        if addr is None:
            bad.append((number + 1, line.strip()[:200]))
            continue
        if addr.lower() in seen:
            repeats += 1
            continue
        seen.add(addr.lower())
        out.append(addr)
        if len(out) > MAX_ADDRESSES:
            raise Problem("The file has more than %(n)s addresses.", n=MAX_ADDRESSES)
    if not out:
        raise Problem("The file has no e-mail address.")
    return out, bad, repeats


def safe_name(filename):
    """The stored name of an uploaded file ("고객 명단.csv" -> "고객_명단")."""
    stem = os.path.basename(str(filename or "").replace("\\", "/"))
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    stem = re.sub(r"[^\w.-]+", "_", stem).strip("._-")[:64]
    stem = re.sub(r"\.{2,}", ".", stem)
    return stem if stem and NAME_RE.match(stem) else "list"


def bulk_folder(home, login):
    """data/userd/ID/bulk."""
    return os.path.join(home.user_dir(login), "bulk")


def list_file(home, login, name):
    """The file of one uploaded list (name checked: no path tricks)."""
    if not NAME_RE.match(str(name)) or ".." in name:
        raise Problem("No such address list.")
    return safe_join(bulk_folder(home, login), name + ".txt")


def store_list(home, login, name, addresses):
    """Write an uploaded list.  @return: True when it replaced one."""
    from zwms.fileio import atomic_write
    path = list_file(home, login, name)
    existed = os.path.exists(path)
    if not existed and len(uploaded_lists(home, login)) >= MAX_LISTS:
        raise Problem("At most %(n)s address lists can be kept; delete one first.",
                      n=MAX_LISTS)
    atomic_write(path, "".join(a + "\n" for a in addresses).encode("utf-8"))
    return existed


def read_uploaded(home, login, name):
    """The addresses of an uploaded list.  @raise InvalidValue: none such."""
    try:
        with open(list_file(home, login, name), "rb") as f:
            return f.read().decode("utf-8").split()
    except FileNotFoundError:
        raise Problem("No such address list.")


def uploaded_lists(home, login):
    """[{"name", "count", "mtime"}] of the account's lists, by name."""
    folder = bulk_folder(home, login)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".txt"))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        path = os.path.join(folder, n)
        try:
            with open(path, "rb") as f:
                count = sum(1 for line in f if line.strip())
            out.append({"name": n[:-4], "count": count, "mtime": os.path.getmtime(path)})
        except OSError:
            continue
    return out


def delete_list(home, login, name):
    try:
        os.unlink(list_file(home, login, name))
    except FileNotFoundError:
        raise Problem("No such address list.")


# -- the message -------------------------------------------------------------------


def text_to_html(text):
    """The plain-text body as simple HTML (escaped; line breaks kept)."""
    paragraphs = re.split(r"\n{2,}", str(text or "").replace("\r\n", "\n").strip("\n"))
    body = "\n".join("<p>%s</p>" % escape(p).replace("\n", "<br>\n") for p in paragraphs)
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"></head>\n<body>\n%s\n"
            "</body></html>\n" % body)


def _clean(text):
    """A header value on one line."""
    return re.sub(r"[\r\n\x00]+", " ", str(text or "")).strip()


def build_message(sender, sender_name, subject, body, html, attachments, domain, now,
                  mdn=False):
    """
    A bulk message (CRLF bytes): no To (each copy gets its own); with
    C{mdn}, a request for read receipts to the sender.
    """
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((_clean(sender_name), sender)) if sender_name \
        else sender
    msg["Subject"] = _clean(subject)
    msg["Date"] = email.utils.formatdate(now, localtime=False)
    msg["Message-ID"] = email.utils.make_msgid("bulk", domain=domain)
    msg["MIME-Version"] = "1.0"
    msg["User-Agent"] = "zWMS webmail"
    if mdn:
        msg["Disposition-Notification-To"] = sender
    text = str(body or "").replace("\r\n", "\n")
    msg.set_content(text, charset="utf-8", cte="base64")
    if html:
        msg.add_alternative(text_to_html(text), subtype="html", charset="utf-8",
                            cte="quoted-printable")
    for filename, ctype, data in attachments:
        if not ctype or ctype == "application/octet-stream":
            ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if "/" not in ctype or ctype.startswith(("multipart/", "text/", "message/")):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(bytes(data), maintype=maintype, subtype=subtype.split(";")[0],
                           filename=_clean(filename) or "attachment")
    return msg.as_bytes()


def base_url(request):
    """The scheme and host the browser reached us at, or "" when the Host is odd."""
    host = (request.getHeader(b"host") or b"").decode("ascii", "replace").strip()
    if not HOST_RE.match(host):
        return ""
    return "%s://%s" % ("https" if request.isSecure() else "http", host)


class BulkApp:
    """The bulk-send window and the mailing status pages, at /mail/bulk."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
        #: (job ID, index) reads already on disk (a reloaded image writes nothing).
        self._reads = set()
        #: account -> Inbox message names already looked at for MDNs.
        self._examined = {}

    def _url(self, session, path="", done=""):
        return "/mail/bulk/%s/%s%s" % (self.webmail.rand(session), path,
                                       "?done=" + done if done else "")

    def _refuse(self, request, session, status, message):
        """The error page, its message in the page's language."""
        wm = self.webmail
        text = i18n.translations(wm.language(request, session)).gettext(message)
        return wm.error_page(request, session, status, text)

    def _allowed(self, session):
        try:
            account = self.webmail.services.accounts.get(session.login)
        except ZWMSError:
            return False
        return bool(account is not None and account.bulksend)

    async def _window(self, request, session, status=200, error="", report=None, draft=None,
                      flash=""):
        wm = self.webmail
        home = wm.services.home
        request.setResponseCode(status)
        lists = await wm.run(uploaded_lists, home, session.login)
        limit = int(wm.services.settings["MAXMAILSIZE"]) * 1024
        nav = await wm.nav(session)
        error, error_values = problem(error) if error else ("", {})
        return wm.render(request, session, "bulk.html", lists=lists, error=error,
                         error_values=error_values,
                         report=report, flash=flash,
                         draft=draft or {"list": "", "subject": "", "body": "", "html": "1",
                                        "mdn": ""},
                         max_addresses=MAX_ADDRESSES, max_size=limit,
                         tracking=bool(base_url(request)), **nav)

    # -- the bulk-send window ----------------------------------------------------------

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def window(self, request, session):
        if not self._allowed(session):
            return self._refuse(request, session, 403,
                                "This account has no bulk-send permission.")
        done = query_args(request).get("done", "")
        return await self._window(request, session, flash=done if done in FLASHES else "")

    @app.route("/<rand>/upload", methods=["POST"])
    @page("POST", upload=True)
    async def upload(self, request, session, values, files):
        wm = self.webmail
        if not self._allowed(session):
            return self._refuse(request, session, 403,
                                "This account has no bulk-send permission.")
        files = [f for f in files if f[0] == "file"]
        if not files:
            return await self._window(request, session, 400, "Choose a file to upload.")
        _field, filename, _ctype, data = files[0]
        if len(data) > MAX_FILE:
            return await self._window(request, session, 400, "The file is too large.")
        try:
            addresses, bad, repeats = await wm.run(parse_addresses, data)
            name = safe_name(filename)
            replaced = await wm.run(store_list, wm.services.home, session.login, name,
                                    addresses)
        except InvalidValue as e:
            return await self._window(request, session, 400, e)
        wm.log("webmail bulk list uploaded: %s %s, %d addresses, %d bad lines"
               % (session.login, name, len(addresses), len(bad)), request)
        report = {"name": name, "count": len(addresses), "bad": bad[:MAX_REPORTED],
                  "bad_count": len(bad), "repeats": repeats, "replaced": replaced}
        return await self._window(request, session, report=report, flash="uploaded")

    @app.route("/<rand>/delete", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, values):
        wm = self.webmail
        if not self._allowed(session):
            return self._refuse(request, session, 403,
                                "This account has no bulk-send permission.")
        name = values.get("name", "")
        try:
            await wm.run(delete_list, wm.services.home, session.login, name)
        except InvalidValue as e:
            return await self._window(request, session, 404, e)
        wm.log("webmail bulk list deleted: %s %s" % (session.login, name), request)
        raise Redirect(self._url(session, done="deleted"))

    @app.route("/<rand>/send", methods=["POST"])
    @page("POST", upload=True)
    async def send(self, request, session, values, files):
        wm = self.webmail
        if not self._allowed(session):
            return self._refuse(request, session, 403,
                                "This account has no bulk-send permission.")
        draft = {k: values.get(k, "") for k in ("list", "subject", "body", "html", "mdn")}
        try:
            job_id, total = await self._send(request, session, draft, files)
        except InvalidValue as e:
            return await self._window(request, session, 400, e, draft=draft)
        wm.log("webmail bulk send: %s list %s, %d recipients, mailing %s"
               % (session.login, draft["list"], total, job_id), request)
        raise Redirect(self._url(session, "sent/" + job_id, "sent"))

    async def _send(self, request, session, draft, files):
        wm = self.webmail
        services = wm.services
        account = services.accounts.get(session.login)
        if account is None or account.locked:
            raise Problem("This account may not send mail.")
        if not draft["subject"].strip():
            raise Problem("Write a subject.")
        addresses = await wm.run(read_uploaded, services.home, session.login, draft["list"])
        router = services.router
        fanout = router.fanout
        if fanout is None:
            raise Problem("This server does not send mail outside.")
        attachments = [(name, ctype, data) for field, name, ctype, data in files
                       if field == "attachment"]
        domain = services.settings["DOMAIN"]
        sender = account.address or "%s@%s" % (account.id, domain)
        html = draft["html"] == "1"
        message = await wm.run(build_message, sender, account.name, draft["subject"],
                               draft["body"], html, attachments, domain, wm.now(),
                               draft["mdn"] == "1")
        received = ("Received: from webmail ([%s]) by %s (zWMS bulk send) for <%s>;\r\n\t%s\r\n"
                    % (client_ip(request), domain, session.login,
                       email.utils.formatdate(wm.now()))).encode("ascii", "replace")
        data = received + message
        limit = int(services.settings["MAXMAILSIZE"]) * 1024
        if account.sendsize and (not limit or account.sendsize < limit):
            limit = account.sendsize
        if limit and len(data) > limit:
            raise Problem("The message is too large (%(size)s KB; at most %(limit)s KB). "
                          "Remove or shrink attachments.", size=len(data) // 1024,
                          limit=limit // 1024)
        if account.daycount or account.daysize:
            count, size = await router.threads(router.counter.get, account.id)
            if account.daycount and count >= account.daycount:
                raise Problem("The daily limit of messages of this account is reached.")
            if account.daysize and size + len(data) > account.daysize:
                raise Problem("The daily size limit of this account is reached.")
        if await self._has_remote(addresses):
            grant = await RelayRules(services).decide("", account.id)
            if grant is None:
                raise Problem("This account may not send mail outside the server.")
        job_id = await fanout.submit(sender, addresses, data, mode="personal",
                                     owner=account.id, name=draft["list"],
                                     origin="bulk %s" % client_ip(request),
                                     track=base_url(request) if html else "")
        local = b"Return-Path: <" + sender.encode("ascii", "replace") + b">\r\n" + data
        await defer.maybeDeferred(services.mail.deliver, [Delivery(account.id, local, "Sent")])
        if account.daycount or account.daysize:
            try:
                await router.threads(router.counter.add, account.id, len(data))
            except Exception as e:
                wm.log("webmail bulk send counter of %s not written: %s" % (account.id, e),
                       request)
        return job_id, len(addresses)

    async def _has_remote(self, addresses):
        """True when some address is not one of this server's mailboxes."""
        settings = self.webmail.services.settings
        local = {settings["DOMAIN"].lower()} | {d.lower() for d in str(
            settings["MULTIDOMAINS"] or "").replace(",", " ").split()}
        directory = self.webmail.services.directory
        for addr in addresses:
            if addr.rpartition("@")[2].lower() in local:
                continue
            res = await defer.maybeDeferred(directory.resolve, addr)
            if res.kind != "local" or res.addresses:
                return True
        return False

    # -- status of mailings (every user) ---------------------------------------------------

    async def _mdns(self, session):
        """Count the MDNs that came in since the last look (see the docstring)."""
        wm = self.webmail
        examined = self._examined.setdefault(session.login, set())
        await wm.run(mstatus.collect_mdns, wm.services.home, wm.services.mail, session.login,
                     examined)

    @app.route("/<rand>/sent", methods=["GET"])
    @page()
    async def sent(self, request, session):
        wm = self.webmail
        home = wm.services.home
        await self._mdns(session)
        ids = list(reversed(await wm.run(mstatus.list_mailings, home, session.login)))
        pages = max(1, (len(ids) + JOBS_PER_PAGE - 1) // JOBS_PER_PAGE)
        number = min(to_int(query_args(request).get("page"), 1), pages)
        jobs = []
        for job_id in ids[(number - 1) * JOBS_PER_PAGE:number * JOBS_PER_PAGE]:
            try:
                jobs.append(await wm.run(mstatus.summary, home, session.login, job_id))
            except (OSError, ValueError):
                continue  # a record cut by a crash: left out, not an error page
        nav = await wm.nav(session)
        return wm.render(request, session, "bulk_sent.html", jobs=jobs, page=number,
                         pages=pages, folder="Sent", bulk_page=self._allowed(session), **nav)

    @app.route("/<rand>/sent/<job_id>", methods=["GET"])
    @page()
    async def job(self, request, session, job_id):
        wm = self.webmail
        home = wm.services.home
        if not ID_RE.match(job_id):
            return self._refuse(request, session, 404, "No such mailing.")
        await self._mdns(session)
        try:
            meta, latest = await wm.run(mstatus.read_status, home, session.login, job_id)
        except (OSError, ValueError):
            return self._refuse(request, session, 404, "No such mailing.")
        recipients = await wm.run(mstatus.read_recipients, home, session.login, job_id)
        reads = await wm.run(mstatus.read_reads, home, session.login, job_id)
        job = mstatus.tally(meta, latest, reads)
        if not recipients:  # a record older than the kept recipient list
            recipients = sorted(latest)
        args = query_args(request)
        want = args.get("state", "")
        rows = []
        for index, addr in enumerate(recipients):
            state, reason = mstatus.state_of(latest.get(addr.lower()))
            if want in STATES and state != want:
                continue
            rows.append({"address": addr, "state": state, "reason": reason,
                         "read": reads.get(index)})
        pages = max(1, (len(rows) + RCPTS_PER_PAGE - 1) // RCPTS_PER_PAGE)
        number = min(to_int(args.get("page"), 1), pages)
        fanout = wm.services.router.fanout
        running = await wm.run(fanout.store.load, job_id) if fanout is not None else None
        if job["pending"]:
            # Progress: reload while recipients are pending (no script needed).
            request.setHeader(b"Refresh", str(REFRESH).encode("ascii"))
        nav = await wm.nav(session)
        done = args.get("done", "")
        return wm.render(request, session, "bulk_job.html", job=job,
                         rows=rows[(number - 1) * RCPTS_PER_PAGE:number * RCPTS_PER_PAGE],
                         matching=len(rows), state=want if want in STATES else "",
                         states=STATES, page=number, pages=pages, running=running,
                         refresh=REFRESH if job["pending"] else 0, folder="Sent",
                         flash=done if done in FLASHES else "", **nav)

    # -- the tracking image (no session) ---------------------------------------------------

    @app.route("/track/<name>", methods=["GET", "HEAD"])
    async def track(self, request, name):
        """Always the same 1x1 GIF; a genuine token's first fetch is recorded."""
        wm = self.webmail
        request.setHeader(b"Content-Type", b"image/gif")
        request.setHeader(b"Cache-Control", b"no-store, private")
        token = name[:-4] if name.endswith(".gif") else ""
        try:
            found = await wm.run(mstatus.check_token, wm.services.home, token) if token \
                else None
            if found is not None and (found[1], found[2]) not in self._reads:
                owner, job_id, index = found
                await wm.run(mstatus.record_read, wm.services.home, owner, job_id, index,
                             wm.now())
                if len(self._reads) > 100000:
                    self._reads.clear()  # a memo only: the file has the truth
                self._reads.add((job_id, index))
        except Exception as e:
            # The image is answered whatever happens; the error is logged.
            wm.services.logs.write(logchannels.SYSTEMERROR,
                                   "Read tracking not recorded: %s" % e)
        return GIF
