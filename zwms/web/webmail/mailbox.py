# -*- test-case-name: tests.test_webmail_read -*-
"""
/mail/box/RAND/...: the folders and reading (SPEC W2).

  folder/F?page=N&sort=date|size|sender|subject&dir=asc|desc
          &from=TEXT&subject=TEXT&since=YYYY-MM-DD&until=YYYY-MM-DD
                      the folders with unread counts; one page of F,
                      newest first, paged in the index; subject, sender and
                      date from each listed message's header block; sorting
                      and search as L{zwms.web.webmail.listing} (what the
                      index does and what costs header reads)
  read/F/NAME         headers decoded, the text body, the HTML body in a
                      sandboxed frame; attachments; marks the message seen;
                      a returned mail gets the analysis panel (SPEC W8:
                      failed recipients, category, advice in Korean and
                      English; L{bounce_of})
  frame/F/NAME        the sanitised HTML alone (CSP sandbox, no script);
                      ?images=1 lets remote images through
  part/F/NAME/I       part I as a download (RFC 5987 file name); ?inline=1
                      shows safe image types
  raw/F/NAME          the stored bytes as text/plain, nosniff
  delete/F/NAME       POST: to Trash (from Trash: gone)
  unread/F/NAME       POST: mark unread
  block/F/NAME        POST: the "block" button (SPEC P6, seed §32): the
                      sender and subject go into the user's spam filter
                      (L{zwms.store.rules.RulesStore.block}); the message
                      moves to Spam (from Spam or Trash it stays put)
  notice              the administrator's notice (§6), after login
"""

import base64
from urllib.parse import quote

from klein import Klein
from twisted.internet import defer
from twisted.python import log

from zwms.account import FOLDERS
from zwms.admin import consoleops
from zwms.bounces import analyse, looks_like_bounce
from zwms.mime import parse as mimeparse
from zwms.store import userprefs
from zwms.errors import InvalidValue
from zwms.store.mailstore import check_folder as store_check_folder
from zwms.store.rules import check_address_pattern
from zwms.web.console import Redirect, Refused, query_args, to_int
from zwms.web.sanitize import clean_html
from zwms.web.webmail import listing as listings
from zwms.web.webmail.state import page

#: The done=… notes a list page shows (fixed words, never echoed text).
FLASHES = ("deleted", "moved", "blocked", "emptied", "sent", "saved", "marked")

#: Image types shown inline (no SVG: it can carry script).
INLINE_IMAGES = {"image/png", "image/gif", "image/jpeg", "image/webp", "image/bmp"}


async def check_box(wm, session, folder):
    """A folder of this account (a standard one or its own); else 404."""
    if folder in FOLDERS:
        return folder
    try:
        store_check_folder(folder)
    except InvalidValue:
        raise Refused(404, "No such folder.")
    if folder not in await wm.run(wm.services.mail.folders, session.login):
        raise Refused(404, "No such folder.")
    return folder


def list_query(args, tz):
    """The L{listings.Query} of a folder page's query string (bad values ignored)."""
    order = args.get("sort", "date")
    return listings.Query(
        order=order if order in listings.ORDERS else "date",
        descending=args.get("dir", "desc") != "asc",
        sender=args.get("from", "").strip()[:200],
        subject=args.get("subject", "").strip()[:200],
        since=listings.parse_day(args.get("since"), tz),
        until=listings.parse_day(args.get("until"), tz, end=True))


def content_disposition(kind, filename):
    """C{attachment; filename="ascii"; filename*=UTF-8''…} (RFC 6266, RFC 5987)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_"
                         for c in filename) or "attachment"
    return ('%s; filename="%s"; filename*=UTF-8\'\'%s'
            % (kind, ascii_name, quote(filename, safe=""))).encode("ascii")


def load(mail, account_id, folder, name):
    """(bytes, Parsed) of one message (blocking: a thread)."""
    data = mail.read(account_id, folder, name)
    return data, mimeparse.parse(data)


#: Largest cid: image put into the frame (bytes).
MAX_INLINE = 2 * 1024 * 1024


def frame_html(mail, account_id, folder, name, images):
    """
    The sanitised HTML of one message (blocking: a thread).  cid: images
    become data: URLs: the frame is a sandbox with an opaque origin, whose
    requests carry no SameSite cookie, so part URLs would not load there.
    """
    data, parsed = load(mail, account_id, folder, name)
    cids = mimeparse.cid_map(parsed)

    def part_url(cid):
        index = cids.get(cid)
        if index is None:
            return None
        ctype, _, body = mimeparse.part_of(data, index)
        if ctype not in INLINE_IMAGES or len(body) > MAX_INLINE:
            return None
        return "data:%s;base64,%s" % (ctype, base64.b64encode(body).decode("ascii"))
    return clean_html(parsed.html, part_url, images)[0]


#: Most failed recipients the return-mail panel lists (a bounce may name hundreds).
BOUNCE_ROWS = 20


async def bounce_of(wm, data, request):
    """
    The return-mail analysis of a message being read (SPEC W8), or None:
    a cheap header test first, then L{zwms.bounces.analyse} in a thread.
    A classifier error never breaks reading: it is logged, the panel left out.
    """
    if not looks_like_bounce(data):
        return None
    try:
        analysis = await wm.run(analyse, data)
    except Exception:
        log.err(None, "return-mail analysis of %s" % (request.path,))
        return None
    if analysis is None:
        return None
    # The panel lists the first rows and says how many more there are.
    analysis.more = max(0, len(analysis.failures) - BOUNCE_ROWS)
    analysis.failures = analysis.failures[:BOUNCE_ROWS]
    return analysis


class MailboxApp:
    """Folders and reading, at /mail/box."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    def _url(self, session, *parts):
        return "/mail/box/%s/%s" % (self.webmail.rand(session),
                                    "/".join(quote(str(p), safe="") for p in parts))

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def home(self, request, session):
        raise Redirect(self._url(session, "folder", "Inbox"))

    @app.route("/<rand>/notice", methods=["GET"])
    @page()
    async def notice(self, request, session):
        wm = self.webmail
        from zwms.web.webmail.app import _Ctx
        text = await wm.run(consoleops.notice_get, _Ctx(wm.services.home))
        return wm.render(request, session, "notice.html", notice=text,
                         **(await wm.nav(session)))

    @app.route("/<rand>/folder/<folder>", methods=["GET"])
    @page()
    async def folder(self, request, session, folder):
        wm = self.webmail
        await check_box(wm, session, folder)
        perpage = max(1, min(500, int(wm.services.settings["PERPAGE"] or 100)))
        args = query_args(request)
        number = to_int(args.get("page"), 1)
        tz = userprefs.tzinfo(session.data.get("tz"))
        query = list_query(args, tz)
        result = await wm.run(listings.listing, wm.services.mail, session.login, folder,
                              query, (number - 1) * perpage, perpage)
        pages = max(1, (result.total + perpage - 1) // perpage)
        keep = {k: args[k] for k in ("sort", "dir", "from", "subject", "since", "until")
                if args.get(k)}
        nav = await wm.nav(session)
        return wm.render(request, session, "list.html", folder=folder, rows=result.rows,
                         total=result.total, page=number, pages=pages, query=query,
                         keep=keep, search=dict(keep), truncated=result.truncated,
                         scan_limit=listings.SCAN_LIMIT,
                         flash=args.get("done", "") if args.get("done") in FLASHES else "",
                         targets=[f for f in FOLDERS + tuple(nav["user_folders"])
                                  if f != folder], **nav)

    @app.route("/<rand>/read/<folder>/<name>", methods=["GET"])
    @page()
    async def read(self, request, session, folder, name):
        wm = self.webmail
        await check_box(wm, session, folder)
        data, parsed = await wm.run(load, wm.services.mail, session.login, folder, name)
        await defer.maybeDeferred(wm.services.mail.mark_seen, session.login, folder, [name])
        blocked = 0
        if parsed.html:
            _, blocked = await wm.run(clean_html, parsed.html)
        args = query_args(request)
        images = args.get("images") == "1"
        return wm.render(request, session, "read.html", folder=folder, msgname=name,
                         message=parsed, blocked=blocked, images=images,
                         flash="blocked" if args.get("done") == "blocked" else "",
                         bounce=await bounce_of(wm, data, request),
                         **(await wm.nav(session)))

    @app.route("/<rand>/frame/<folder>/<name>", methods=["GET"])
    @page()
    async def frame(self, request, session, folder, name):
        wm = self.webmail
        await check_box(wm, session, folder)
        images = query_args(request).get("images") == "1"
        html = await wm.run(frame_html, wm.services.mail, session.login, folder, name, images)
        img = b"img-src 'self' data:" + (b" https: http:" if images else b"")
        # The frame's own wall: no script at all, a unique origin, no forms.
        request.setHeader(b"Content-Security-Policy",
                          b"sandbox allow-popups allow-popups-to-escape-sandbox; "
                          b"default-src 'none'; style-src 'unsafe-inline'; " + img +
                          b"; frame-ancestors 'self'; form-action 'none'; base-uri 'none'")
        request.setHeader(b"X-Frame-Options", b"SAMEORIGIN")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        return wm.render(request, session, "frame.html", html=html)

    @app.route("/<rand>/part/<folder>/<name>/<int:index>", methods=["GET"])
    @page()
    async def part(self, request, session, folder, name, index):
        wm = self.webmail
        await check_box(wm, session, folder)
        data = await wm.run(wm.services.mail.read, session.login, folder, name)
        try:
            ctype, filename, body = await wm.run(mimeparse.part_of, data, index)
        except KeyError:
            raise Refused(404, "No such attachment.")
        inline = query_args(request).get("inline") == "1" and ctype in INLINE_IMAGES
        request.setHeader(b"Content-Type", ctype.encode("ascii") if inline
                          else b"application/octet-stream")
        request.setHeader(b"Content-Disposition",
                          content_disposition("inline" if inline else "attachment", filename))
        request.setHeader(b"Content-Security-Policy", b"sandbox; default-src 'none'")
        request.setHeader(b"X-Frame-Options", b"SAMEORIGIN")
        request.setHeader(b"Cache-Control", b"private, no-store")
        return body

    @app.route("/<rand>/raw/<folder>/<name>", methods=["GET"])
    @page()
    async def raw(self, request, session, folder, name):
        wm = self.webmail
        await check_box(wm, session, folder)
        data = await wm.run(wm.services.mail.read, session.login, folder, name)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Content-Security-Policy", b"sandbox; default-src 'none'")
        request.setHeader(b"Cache-Control", b"private, no-store")
        return data

    @app.route("/<rand>/delete/<folder>/<name>", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, folder, name, values):
        wm = self.webmail
        await check_box(wm, session, folder)
        if folder == "Trash":
            await defer.maybeDeferred(wm.services.mail.delete, session.login, folder, [name])
        else:
            await defer.maybeDeferred(wm.services.mail.move, session.login, folder, [name],
                                      "Trash")
        wm.log("webmail %s: %s/%s %s" % ("delete" if folder == "Trash" else "to Trash",
                                        session.login, folder, name), request)
        raise Redirect(self._url(session, "folder", folder) + "?done=deleted")

    @app.route("/<rand>/unread/<folder>/<name>", methods=["POST"])
    @page("POST")
    async def unread(self, request, session, folder, name, values):
        wm = self.webmail
        await check_box(wm, session, folder)
        await defer.maybeDeferred(wm.services.mail.mark_seen, session.login, folder, [name],
                                  False)
        raise Redirect(self._url(session, "folder", folder))

    @app.route("/<rand>/block/<folder>/<name>", methods=["POST"])
    @page("POST")
    async def block(self, request, session, folder, name, values):
        wm = self.webmail
        await check_box(wm, session, folder)
        head = await wm.run(wm.services.mail.head, session.login, folder, name,
                            listings.HEAD_BYTES)
        summary = mimeparse.summary(head)
        sender = (summary.sender_address or "").strip().lower()
        try:
            # A whole address only: a bare word would block a domain.
            sender = check_address_pattern(sender) if "@" in sender[1:] else ""
        except InvalidValue:
            sender = ""     # an unusable From: block the subject alone
        subject = " ".join((summary.subject or "").split())[:256]
        if not sender and not subject:
            raise Refused(400, "This message has neither a usable sender nor a subject "
                               "to block.")
        await wm.run(wm.rules.block, session.login, sender, subject)
        wm.log("webmail block: %s sender %s subject %r" % (session.login, sender or "-",
                                                           subject), request)
        if folder in ("Spam", "Trash"):
            raise Redirect(self._url(session, "read", folder, name) + "?done=blocked")
        await defer.maybeDeferred(wm.services.mail.move, session.login, folder, [name], "Spam")
        raise Redirect(self._url(session, "folder", folder) + "?done=blocked")
