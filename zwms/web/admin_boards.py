# -*- test-case-name: tests.test_web_admin_boards -*-
"""
/admin/boards/...: board management (SPEC A6; seed §14, §25, §26).

  (GET)                         the boards, ?view=brief (names and titles)
                                or ?view=detailed (every setting and counts),
                                and the new-board form
  create                        POST name, title, group, description, write,
                                maxattach
  b/NAME                        GET the board's info form and its threads
                                (?page=N), for moderation
  b/NAME/edit                   POST the info form
  b/NAME/delete                 POST: the board and all its posts
  b/NAME/backup                 POST: board.json into backup/board/NAME/
  b/NAME/zip                    POST: the posts into ZIPDIR/root/
  b/NAME/post                   POST subject, body: a text post by the
                                administrator (ADMINID's account, else the
                                console login)
  b/NAME/post/N                 GET post N with its replies (moderation)
  b/NAME/post/N/delete          POST: delete any post (a top post with its
                                replies)

Every operation is one of L{zwms.admin.boardops}, run in a thread through
the console (logged to WebMail).  A bad board name answers 400, never
mangled into another; a board that does not exist 404.
"""

import time
from dataclasses import asdict

from klein import Klein

from zwms import i18n
from zwms.admin import boardops
from zwms.errors import InvalidValue
from zwms.store.boardinfo import WRITE_MODES, check_name
from zwms.store.boards import BoardExists, NoSuchBoard, NoSuchPost
from zwms.web.console import Redirect, Refused, flash, form, page, query_args, to_int

VIEWS = ("brief", "detailed")
#: The board form's fields and their values on an empty form.
EMPTY_FORM = {"name": "", "title": "", "group": "0", "write": "all", "maxattach": "0",
              "description": ""}
#: done=… words of this page's own notes (the console's flash words cover the rest).
DONE = ("board_backup", "board_zip")


def _stamp(seconds):
    """A post's date on the server's clock, for the moderation lists."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else ""


def _form_values(base, posted=None):
    """Every field of the board form: C{base}'s values, then what was posted."""
    values = {k: str(base.get(k, v)) for k, v in EMPTY_FORM.items()}
    values.update({k: v for k, v in (posted or {}).items() if k in EMPTY_FORM})
    return values


def _name(text):
    try:
        return check_name(text)
    except InvalidValue:
        raise Refused(400, "Invalid board name.")


class BoardsAdminApp:
    """The board management pages, mounted at /admin/boards."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    async def _op(self, request, session, f, *args):
        """Run a board operation C{f(ctx, *args)}; a missing board or post is a 404."""
        return await self._run(self.console.op, request, session, f, *args)

    async def _read(self, request, session, f, *args):
        """Run a board store reader C{f(*args)} in a thread, as L{_op}."""
        return await self._run(self.console.run, f, *args)

    @staticmethod
    async def _run(runner, *args):
        try:
            return await runner(*args)
        except NoSuchBoard:
            raise Refused(404, "No such board.")
        except NoSuchPost:
            raise Refused(404, "No such post.")

    def _render(self, request, session, template, status=200, **values):
        request.setResponseCode(status)
        done = query_args(request).get("done", "")
        return self.console.render(request, session, template, flash=flash(request),
                                   done=done if done in DONE else "", modes=WRITE_MODES,
                                   stamp=_stamp, **values)

    def _message(self, request, session, error):
        """A refused value's message in the page's language."""
        return i18n.translations(self.console.language(request, session)).gettext(str(error))

    # -- the list ----------------------------------------------------------------

    async def _list(self, request, session, status=200, errors=None, values=None):
        view = query_args(request).get("view", "brief")
        view = view if view in VIEWS else "brief"
        rows = await self._op(request, session, boardops.board_list, view == "detailed")
        return self._render(request, session, "boards.html", status=status, rows=rows,
                            view=view, errors=errors or {}, values=_form_values({}, values))

    @app.route("/", methods=["GET"])
    @page()
    async def boards(self, request, session):
        return await self._list(request, session)

    @app.route("/create", methods=["POST"])
    @page("POST")
    async def create(self, request, session):
        values = form(request)
        try:
            board = await self._op(request, session, boardops.board_create, values)
        except (InvalidValue, BoardExists) as e:
            return await self._list(request, session, 400,
                                    {"form": self._message(request, session, e)}, values)
        raise Redirect("/admin/boards/b/%s?done=created" % board.name)

    # -- one board ---------------------------------------------------------------

    async def _board_page(self, request, session, name, status=200, errors=None,
                          values=None):
        board = await self._op(request, session, boardops.board_get, name)
        result = await self._op(request, session, boardops.post_page, name,
                                to_int(query_args(request).get("page"), 1))
        return self._render(request, session, "board.html", status=status, board=board,
                            result=result, errors=errors or {},
                            values=_form_values(asdict(board), values))

    @app.route("/b/<name>", methods=["GET"])
    @page()
    async def board(self, request, session, name):
        return await self._board_page(request, session, _name(name))

    @app.route("/b/<name>/edit", methods=["POST"])
    @page("POST")
    async def edit(self, request, session, name):
        name = _name(name)
        values = form(request)
        try:
            await self._op(request, session, boardops.board_edit, name, values)
        except InvalidValue as e:
            return await self._board_page(request, session, name, 400,
                                          {"form": self._message(request, session, e)}, values)
        raise Redirect("/admin/boards/b/%s?done=saved" % name)

    @app.route("/b/<name>/delete", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, name):
        await self._op(request, session, boardops.board_delete, _name(name))
        raise Redirect("/admin/boards/?done=deleted")

    @app.route("/b/<name>/backup", methods=["POST"])
    @page("POST")
    async def backup(self, request, session, name):
        name = _name(name)
        await self._op(request, session, boardops.board_backup, name)
        raise Redirect("/admin/boards/b/%s?done=board_backup" % name)

    @app.route("/b/<name>/zip", methods=["POST"])
    @page("POST")
    async def zip(self, request, session, name):
        name = _name(name)
        await self._op(request, session, boardops.board_zip, name)
        raise Redirect("/admin/boards/b/%s?done=board_zip" % name)

    # -- moderation --------------------------------------------------------------

    @app.route("/b/<name>/post/<int:number>", methods=["GET"])
    @page()
    async def post(self, request, session, name, number):
        name = _name(name)
        store = boardops.store(self.console.context(request, session))
        board = await self._read(request, session, store.get, name)
        top = await self._read(request, session, store.post, name, number)
        replies = []
        if not top.info.parent:
            for info in await self._read(request, session, store.replies, name, number):
                replies.append(await self._read(request, session, store.post, name,
                                                info.number))
        return self._render(request, session, "boardpost.html", board=board, top=top,
                            replies=replies)

    @app.route("/b/<name>/post", methods=["POST"])
    @page("POST")
    async def post_add(self, request, session, name):
        name = _name(name)
        values = form(request)
        try:
            info = await self._op(request, session, boardops.post_add, name, session.login,
                                  values.get("subject", ""), values.get("body", ""))
        except InvalidValue as e:
            return await self._board_page(request, session, name, 400,
                                          {"form": self._message(request, session, e)})
        raise Redirect("/admin/boards/b/%s/post/%d?done=created" % (name, info.number))

    @app.route("/b/<name>/post/<int:number>/delete", methods=["POST"])
    @page("POST")
    async def post_delete(self, request, session, name, number):
        name = _name(name)
        store = boardops.store(self.console.context(request, session))
        info = await self._read(request, session, store.info, name, number)
        await self._op(request, session, boardops.post_delete, name, number)
        if info.parent:
            raise Redirect("/admin/boards/b/%s/post/%d?done=deleted" % (name, info.parent))
        raise Redirect("/admin/boards/b/%s?done=deleted" % name)
