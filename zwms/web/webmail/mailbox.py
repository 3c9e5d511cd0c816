# -*- test-case-name: tests.test_webmail_read -*-
"""
/mail/box/RAND/...: the folders and reading (SPEC W2).

  folder/F?page=N     the five folders with unread counts; one page of F,
                      newest first, paged in the index; subject, sender and
                      date from each listed message's header block
  read/F/NAME         headers decoded, the text body, the HTML body in a
                      sandboxed frame; attachments; marks the message seen
  frame/F/NAME        the sanitised HTML alone (CSP sandbox, no script);
                      ?images=1 lets remote images through
  part/F/NAME/I       part I as a download (RFC 5987 file name); ?inline=1
                      shows safe image types
  raw/F/NAME          the stored bytes as text/plain, nosniff
  delete/F/NAME       POST: to Trash (from Trash: gone)
  unread/F/NAME       POST: mark unread
  notice              the administrator's notice (§6), after login
"""

import base64
from urllib.parse import quote

from klein import Klein
from twisted.internet import defer

from zwms.account import FOLDERS
from zwms.admin import consoleops
from zwms.errors import NoSuchMessage
from zwms.mime import parse as mimeparse
from zwms.web.console import Redirect, Refused, query_args, to_int
from zwms.web.sanitize import clean_html
from zwms.web.webmail.state import page

#: Image types shown inline (no SVG: it can carry script).
INLINE_IMAGES = {"image/png", "image/gif", "image/jpeg", "image/webp", "image/bmp"}


def check_box(folder):
    """Only the five folders for now (user folders come later)."""
    if folder not in FOLDERS:
        raise Refused(404, "No such folder.")
    return folder


def content_disposition(kind, filename):
    """C{attachment; filename="ascii"; filename*=UTF-8''…} (RFC 6266, RFC 5987)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_"
                         for c in filename) or "attachment"
    return ('%s; filename="%s"; filename*=UTF-8\'\'%s'
            % (kind, ascii_name, quote(filename, safe=""))).encode("ascii")


def listing(mail, account_id, folder, offset, limit):
    """One page of a folder with header summaries (blocking: a thread)."""
    total, infos = mail.page(account_id, folder, offset, limit)
    rows = []
    for info in infos:
        try:
            summary = mimeparse.summary(mail.read(account_id, folder, info.name))
        except NoSuchMessage:
            continue
        rows.append((info, summary))
    return total, rows, mail.counts(account_id)


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
        counts = await wm.run(wm.services.mail.counts, session.login)
        return wm.render(request, session, "notice.html", notice=text, counts=counts,
                         folders=FOLDERS)

    @app.route("/<rand>/folder/<folder>", methods=["GET"])
    @page()
    async def folder(self, request, session, folder):
        wm = self.webmail
        check_box(folder)
        perpage = max(1, min(500, int(wm.services.settings["PERPAGE"] or 100)))
        number = to_int(query_args(request).get("page"), 1)
        total, rows, counts = await wm.run(listing, wm.services.mail, session.login, folder,
                                           (number - 1) * perpage, perpage)
        pages = max(1, (total + perpage - 1) // perpage)
        return wm.render(request, session, "list.html", folder=folder, rows=rows,
                         total=total, page=number, pages=pages, counts=counts,
                         folders=FOLDERS)

    @app.route("/<rand>/read/<folder>/<name>", methods=["GET"])
    @page()
    async def read(self, request, session, folder, name):
        wm = self.webmail
        check_box(folder)
        data, parsed = await wm.run(load, wm.services.mail, session.login, folder, name)
        await defer.maybeDeferred(wm.services.mail.mark_seen, session.login, folder, [name])
        blocked = 0
        if parsed.html:
            _, blocked = await wm.run(clean_html, parsed.html)
        images = query_args(request).get("images") == "1"
        counts = await wm.run(wm.services.mail.counts, session.login)
        return wm.render(request, session, "read.html", folder=folder, msgname=name,
                         message=parsed, blocked=blocked, images=images, counts=counts,
                         folders=FOLDERS)

    @app.route("/<rand>/frame/<folder>/<name>", methods=["GET"])
    @page()
    async def frame(self, request, session, folder, name):
        wm = self.webmail
        check_box(folder)
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
        check_box(folder)
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
        check_box(folder)
        data = await wm.run(wm.services.mail.read, session.login, folder, name)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Content-Security-Policy", b"sandbox; default-src 'none'")
        request.setHeader(b"Cache-Control", b"private, no-store")
        return data

    @app.route("/<rand>/delete/<folder>/<name>", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, folder, name, values):
        wm = self.webmail
        check_box(folder)
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
        check_box(folder)
        await defer.maybeDeferred(wm.services.mail.mark_seen, session.login, folder, [name],
                                  False)
        raise Redirect(self._url(session, "folder", folder))
