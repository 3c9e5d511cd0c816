# -*- test-case-name: tests.test_web_admin2_groups -*-
"""
The groups page (SPEC A5, seed §8), at /admin/groups: the tree of
data/group, the selected group's members, one page of all accounts with
"set group" / "set upper group" buttons, create / rename / move / delete
of the selected group, and cut / paste / release of members with a
clipboard kept in the admin's session.

The selected group travels as ?g=PATH (GET) or the field g (POST); a path
with a bad name is refused (400), never mangled into another.
"""

from urllib.parse import quote

from klein import Klein

from zwms.account import check_id
from zwms.admin import groupops
from zwms.errors import InvalidValue
from zwms.store.groups import NoSuchGroup
from zwms.web.console import Redirect, Refused, flash, form, form_list, page, query_args, to_int

#: The most accounts on the clipboard.
MAX_CLIP = 5000


def _group(text):
    try:
        from zwms.store.groups import join_path, split_path
        return join_path(split_path(text or ""))
    except InvalidValue as e:
        raise Refused(400, str(e))


def _ids(request):
    try:
        ids = [check_id(i) for i in form_list(request, "id")]
    except InvalidValue as e:
        raise Refused(400, str(e))
    if not ids:
        raise Refused(400, "Select at least one account.")
    return ids


def _back(group, done):
    return "/admin/groups/?g=%s&done=%s" % (quote(group, safe="/"), done)


class GroupsApp:
    """The groups page, mounted at /admin/groups."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    async def _page(self, request, session, group, errors=None):
        c = self.console
        args = query_args(request)
        query = args.get("q", "")[:64]
        try:
            result = await c.op(request, session, groupops.group_page, group,
                                page=to_int(args.get("page"), 1), query=query)
        except NoSuchGroup as e:
            raise Refused(404, str(e))
        return c.render(request, session, "groups.html", result=result, query=query,
                        clip=session.data.get("groupclip", []), errors=errors or {},
                        flash=flash(request))

    @app.route("/", methods=["GET"])
    @page()
    async def groups(self, request, session):
        return await self._page(request, session, _group(query_args(request).get("g", "")))

    async def _try(self, request, session, group, f, *args):
        """Run an operation; a refused value is shown on the page (400)."""
        try:
            return await self.console.op(request, session, f, *args)
        except (InvalidValue, NoSuchGroup) as e:
            request.setResponseCode(400)
            raise _Shown(await self._page(request, session, group, {"form": str(e)}))

    @app.route("/create", methods=["POST"])
    @page("POST")
    async def create(self, request, session):
        values = form(request)
        group = _group(values.get("g"))
        try:
            new = await self._try(request, session, group, groupops.group_create, group,
                                  values.get("name", ""))
        except _Shown as s:
            return s.body
        raise Redirect(_back(new, "created"))

    @app.route("/rename", methods=["POST"])
    @page("POST")
    async def rename(self, request, session):
        values = form(request)
        group = _group(values.get("g"))
        parent = values.get("parent")
        try:
            new = await self._try(request, session, group, groupops.group_rename, group,
                                  values.get("name", ""),
                                  None if parent in (None, "-") else _group(parent))
        except _Shown as s:
            return s.body
        raise Redirect(_back(new, "saved"))

    @app.route("/delete", methods=["POST"])
    @page("POST")
    async def delete(self, request, session):
        group = _group(form(request).get("g"))
        try:
            await self._try(request, session, group, groupops.group_delete, group)
        except _Shown as s:
            return s.body
        parent = group.rsplit("/", 1)[0] if "/" in group else ""
        raise Redirect(_back(parent, "deleted"))

    @app.route("/join", methods=["POST"])
    @page("POST")
    async def join(self, request, session):
        group = _group(form(request).get("g"))
        try:
            await self._try(request, session, group, groupops.group_join, group, _ids(request))
        except _Shown as s:
            return s.body
        raise Redirect(_back(group, "saved"))

    @app.route("/upper", methods=["POST"])
    @page("POST")
    async def upper(self, request, session):
        group = _group(form(request).get("g"))
        try:
            for aid in _ids(request):
                await self._try(request, session, group, groupops.group_set_upper, aid, group)
        except _Shown as s:
            return s.body
        raise Redirect(_back(group, "saved"))

    @app.route("/release", methods=["POST"])
    @page("POST")
    async def release(self, request, session):
        group = _group(form(request).get("g"))
        ids = _ids(request)
        await self.console.op(request, session, groupops.group_release, ids)
        await self._set_clip(session, [i for i in session.data.get("groupclip", [])
                                       if i not in ids])
        raise Redirect(_back(group, "saved"))

    # -- the clipboard ---------------------------------------------------------

    async def _set_clip(self, session, ids):
        session.data["groupclip"] = ids[:MAX_CLIP]
        await self.console.run(self.console.sessions.save, session)

    @app.route("/cut", methods=["POST"])
    @page("POST")
    async def cut(self, request, session):
        group = _group(form(request).get("g"))
        clip = session.data.get("groupclip", [])
        await self._set_clip(session, clip + [i for i in _ids(request) if i not in clip])
        raise Redirect(_back(group, "saved"))

    @app.route("/paste", methods=["POST"])
    @page("POST")
    async def paste(self, request, session):
        group = _group(form(request).get("g"))
        clip = session.data.get("groupclip", [])
        if not clip:
            raise Refused(400, "The clipboard is empty.")
        try:
            await self._try(request, session, group, groupops.group_join, group, clip)
        except _Shown as s:
            return s.body
        await self._set_clip(session, [])
        raise Redirect(_back(group, "saved"))

    @app.route("/clear", methods=["POST"])
    @page("POST")
    async def clear(self, request, session):
        group = _group(form(request).get("g"))
        await self._set_clip(session, [])
        raise Redirect(_back(group, "saved"))


class _Shown(Exception):
    """A page already rendered (an error shown on the form)."""

    def __init__(self, body):
        Exception.__init__(self, "shown")
        self.body = body
