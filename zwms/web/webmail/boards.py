# -*- test-case-name: tests.test_webmail_boards -*-
"""
/mail/boards/RAND/...: the boards, user side (SPEC W3, seed §14).

  (GET)                          the boards this account sees
  b/NAME/                        a board's threads, newest first (?page=N)
  b/NAME/N                       post N with its replies (a reply's number
                                 shows its thread)
  b/NAME/N/part/I                attachment part I (RFC 5987 file name)
  b/NAME/write                   GET the form (?reply=N), POST a post or reply
                                 (multipart: subject, body, parent, files)
  b/NAME/N/edit                  GET the form, POST the change (keep_I=1 keeps
                                 attachment I; new files are added)
  b/NAME/N/delete                POST: delete the post (a top post with replies
                                 only by a moderator)

Seed §14: an account sees a board whose group number is 0 or its own
C{boardgroup}, or that its C{boards} field names; other boards answer 403.
Authors edit and delete their own posts; the administrator's own account
(env.cfg ADMINID) and a middle administrator on the boards of its group
number moderate (L{zwms.store.boards.is_moderator}).  Attachments of a post
together stay under the board's own limit and MAXMAILSIZE.
"""

from klein import Klein

from zwms import i18n
from zwms.errors import InvalidValue
from zwms.store.boardinfo import can_change, can_see, can_write, check_name, is_moderator
from zwms.store.boards import BoardStore, NoSuchBoard, NoSuchPost
from zwms.web.console import Redirect, Refused, query_args, to_int
from zwms.web.webmail.mailbox import content_disposition
from zwms.web.webmail.state import page

FLASHES = ("added", "saved", "deleted")


def _post_number(text):
    """A post number of a form or query (0 = none; L{to_int} never gives 0)."""
    try:
        return max(0, int(str(text or "0").strip()))
    except ValueError:
        return 0


class BoardsApp:
    """The boards, at /mail/boards."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
        self.store = BoardStore(webmail.services.home, now=webmail.now)

    # -- helpers ---------------------------------------------------------------

    def _t(self, request, session, text):
        """C{text} in the session's language (messages of error pages)."""
        return i18n.translations(self.webmail.language(request, session)).gettext(text)

    def _url(self, session, *parts, done=""):
        url = "/mail/boards/%s/%s" % (self.webmail.rand(session), "/".join(
            str(p) for p in parts))
        return url + ("?done=" + done if done else "")

    async def _call(self, request, session, f, *args, **kwargs):
        """Run a store method in a thread; a missing board or post is a 404."""
        try:
            return await self.webmail.run(f, *args, **kwargs)
        except NoSuchBoard:
            raise Refused(404, self._t(request, session, "No such board."))
        except NoSuchPost:
            raise Refused(404, self._t(request, session, "No such post."))

    async def _board(self, request, session, name):
        """(board, account) when the account sees the board; else 400/404/403."""
        try:
            name = check_name(name)
        except InvalidValue:
            raise Refused(400, self._t(request, session, "Invalid board name."))
        board = await self._call(request, session, self.store.get, name)
        account = self.webmail.services.accounts.get(session.login)
        if not can_see(board, account):
            self.webmail.log("webmail board refused: %s may not see %s"
                             % (session.login, name), request)
            raise Refused(403, self._t(request, session, "You may not see this board."))
        return board, account

    def _adminid(self):
        return str(self.webmail.services.settings["ADMINID"] or "")

    async def _render(self, request, session, template, status=200, **values):
        wm = self.webmail
        request.setResponseCode(status)
        nav = await wm.nav(session)
        done = query_args(request).get("done", "")
        values.setdefault("flash", done if done in FLASHES else "")
        return wm.render(request, session, template, **dict(nav, **values))

    def _limit(self, board):
        """The most attachment bytes one post may carry."""
        limits = [x * 1024 for x in (self.webmail.services.settings["MAXMAILSIZE"],
                                     board.maxattach) if x]
        return min(limits) if limits else 0

    def _attachments(self, request, session, board, files, kept=0):
        """The uploaded files as store attachments, checked against the limit."""
        out = [(filename, "" if ctype == "application/octet-stream" else ctype, data)
               for _field, filename, ctype, data in files]
        limit = self._limit(board)
        if limit and kept + sum(len(d) for _, _, d in out) > limit:
            raise InvalidValue(self._t(request, session,
                                       "The attachments are larger than this board allows "
                                       "(%(kb)d KB).") % {"kb": limit // 1024})
        return out

    def _author_name(self, account):
        return str(account.name or "")

    # -- reading ---------------------------------------------------------------

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def boards(self, request, session):
        account = self.webmail.services.accounts.get(session.login)
        boards = await self.webmail.run(self.store.visible, account)
        rows = []
        for board in boards:
            rows.append((board, await self.webmail.run(self.store.stats, board.name)))
        return await self._render(request, session, "boards.html", rows=rows)

    @app.route("/<rand>/b/<name>/", methods=["GET"])
    @page()
    async def board(self, request, session, name):
        board, account = await self._board(request, session, name)
        result = await self._call(request, session, self.store.page, board.name,
                                  to_int(query_args(request).get("page"), 1))
        return await self._render(request, session, "board.html", board=board, result=result,
                                  may_write=can_write(board, account, self._adminid()))

    @app.route("/<rand>/b/<name>/<int:number>", methods=["GET"])
    @page()
    async def read(self, request, session, name, number):
        board, account = await self._board(request, session, name)
        top = await self._call(request, session, self.store.post, board.name, number)
        if top.info.parent:
            raise Redirect(self._url(session, "b", board.name, top.info.parent)
                           + "#p%d" % number)
        replies = []
        for info in await self._call(request, session, self.store.replies, board.name, number):
            replies.append(await self._call(request, session, self.store.post, board.name,
                                            info.number))
        adminid = self._adminid()
        mine = {p.info.number for p in [top] + replies
                if can_change(board, p.info, account, adminid)}
        return await self._render(
            request, session, "boardpost.html", board=board, top=top, replies=replies,
            mine=mine, moderator=is_moderator(board, account, adminid),
            may_write=can_write(board, account, adminid))

    @app.route("/<rand>/b/<name>/<int:number>/part/<int:index>", methods=["GET"])
    @page()
    async def part(self, request, session, name, number, index):
        board, _account = await self._board(request, session, name)
        _ctype, filename, body = await self._call(request, session, self.store.attachment,
                                                  board.name, number, index)
        request.setHeader(b"Content-Type", b"application/octet-stream")
        request.setHeader(b"Content-Disposition", content_disposition("attachment", filename))
        request.setHeader(b"Content-Security-Policy", b"sandbox; default-src 'none'")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"private, no-store")
        return body

    # -- writing ---------------------------------------------------------------

    async def _writable(self, request, session, name):
        board, account = await self._board(request, session, name)
        if not can_write(board, account, self._adminid()):
            raise Refused(403, self._t(request, session,
                                       "Only the administrators write on this board."))
        return board, account

    @app.route("/<rand>/b/<name>/write", methods=["GET"])
    @page()
    async def write_form(self, request, session, name):
        board, _account = await self._writable(request, session, name)
        parent, subject = _post_number(query_args(request).get("reply")), ""
        if parent:
            info = await self._call(request, session, self.store.info, board.name, parent)
            parent = info.parent or info.number
            subject = info.subject if info.subject.lower().startswith("re:") \
                else "Re: " + info.subject
        return await self._render(request, session, "boardwrite.html", board=board,
                                  parent=parent, subject=subject, body="", post=None,
                                  error="", limit=self._limit(board))

    @app.route("/<rand>/b/<name>/write", methods=["POST"])
    @page("POST", upload=True)
    async def write(self, request, session, name, values, files):
        wm = self.webmail
        board, account = await self._writable(request, session, name)
        parent = _post_number(values.get("parent"))
        try:
            attachments = self._attachments(request, session, board, files)
            info = await self._call(request, session, self.store.add, board.name, account.id,
                                    self._author_name(account), values.get("subject", ""),
                                    values.get("body", ""), attachments, parent=parent,
                                    domain=wm.services.settings["DOMAIN"])
        except InvalidValue as e:
            return await self._render(request, session, "boardwrite.html", status=400,
                                      board=board, parent=parent,
                                      subject=values.get("subject", ""),
                                      body=values.get("body", ""), post=None,
                                      error=str(e), limit=self._limit(board))
        wm.log("webmail board post: %s on %s, %d" % (account.id, board.name, info.number),
               request)
        raise Redirect(self._url(session, "b", board.name, info.parent or info.number,
                                 done="added") + "#p%d" % info.number)

    async def _changeable(self, request, session, name, number):
        board, account = await self._board(request, session, name)
        post = await self._call(request, session, self.store.post, board.name, number)
        if not can_change(board, post.info, account, self._adminid()):
            self.webmail.log("webmail board refused: %s may not change post %d of %s"
                             % (account.id, number, board.name), request)
            raise Refused(403, self._t(request, session, "This post is not yours."))
        return board, account, post

    @app.route("/<rand>/b/<name>/<int:number>/edit", methods=["GET"])
    @page()
    async def edit_form(self, request, session, name, number):
        board, _account, post = await self._changeable(request, session, name, number)
        return await self._render(request, session, "boardwrite.html", board=board,
                                  parent=post.info.parent, subject=post.info.subject,
                                  body=post.body, post=post, error="",
                                  limit=self._limit(board))

    @app.route("/<rand>/b/<name>/<int:number>/edit", methods=["POST"])
    @page("POST", upload=True)
    async def edit(self, request, session, name, number, values, files):
        wm = self.webmail
        board, account, post = await self._changeable(request, session, name, number)
        keep = [a.index for a in post.attachments if values.get("keep_%d" % a.index)]
        kept = sum(a.size for a in post.attachments if a.index in keep)
        try:
            attachments = self._attachments(request, session, board, files, kept)
            info = await self._call(request, session, self.store.edit, board.name, number,
                                    values.get("subject", ""), values.get("body", ""),
                                    keep=keep, attachments=attachments,
                                    domain=wm.services.settings["DOMAIN"])
        except InvalidValue as e:
            return await self._render(request, session, "boardwrite.html", status=400,
                                      board=board, parent=post.info.parent,
                                      subject=values.get("subject", ""),
                                      body=values.get("body", ""), post=post, error=str(e),
                                      limit=self._limit(board))
        wm.log("webmail board edit: %s on %s, %d" % (account.id, board.name, number), request)
        raise Redirect(self._url(session, "b", board.name, info.parent or info.number,
                                 done="saved") + "#p%d" % number)

    @app.route("/<rand>/b/<name>/<int:number>/delete", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, name, number, values):
        wm = self.webmail
        board, account, post = await self._changeable(request, session, name, number)
        if (not post.info.parent and post.info.replies
                and not is_moderator(board, account, self._adminid())):
            raise Refused(409, self._t(request, session, "This post has replies; "
                                       "it cannot be deleted."))
        await self._call(request, session, self.store.delete_post, board.name, number)
        wm.log("webmail board delete: %s on %s, %d" % (account.id, board.name, number),
               request)
        if post.info.parent:
            raise Redirect(self._url(session, "b", board.name, post.info.parent,
                                     done="deleted"))
        raise Redirect(self._url(session, "b", board.name, "", done="deleted"))
