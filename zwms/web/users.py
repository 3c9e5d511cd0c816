# -*- test-case-name: tests.test_web_users -*-
"""
The user list (SPEC A4, seed §7) and the account windows (§16, §17), at
/admin/users: brief and detailed views with PERPAGE paging and ID search,
create, the account window (every field of ACCOUNT_FIELDS; a blank password
keeps the old one), delete (EMLDEL), backup / zip / import per account, and
the bulk window over the selected accounts.  Middle admins are shown in bold.

A middle administrator (SPEC A7, seed §24; C{session.scope} set) gets the
same pages over its board group only: every route hands the scope to
L{zwms.admin.midadmin}, which checks each ID and value (a foreign or
unknown ID is a 403), and the forms leave out the fields only the root
administrator sets.

Account IDs in URLs are checked with L{zwms.account.check_id}: an ID with
odd characters is refused (400), never mangled into another.
"""

from klein import Klein

from zwms.account import ACCOUNT_FIELDS, check_id, format_value
from zwms.admin import consoleops, midadmin, ops
from zwms.admin.consoleops import FormErrors
from zwms.errors import AccountExists, InvalidValue, LicenseOver
from zwms.web.console import (Redirect, Refused, flash, form, form_list, page, query_args,
                              quote_id, to_int)

#: Bulk selections larger than this are refused (one form, one request).
MAX_BULK = 5000


def field_kind(f):
    """How the form shows a field: bool (checkbox), choice (select) or text."""
    if isinstance(f.default, bool):
        return "bool"
    choices = getattr(f.parse, "__closure__", None)
    if choices and isinstance(choices[0].cell_contents, tuple):
        return "choice"
    return "text"


def field_choices(f):
    """The choices of a choice field (from its parser)."""
    return list(f.parse.__closure__[0].cell_contents)


def form_fields(fields=ACCOUNT_FIELDS):
    """(Field, kind, choices) for the templates."""
    out = []
    for f in fields:
        kind = field_kind(f)
        out.append((f, kind, field_choices(f) if kind == "choice" else []))
    return out


def account_values(account):
    """{key: text} of an account's fields, as the form shows them."""
    return {f.key: format_value(account.fields.get(f.key, f.default)) for f in ACCOUNT_FIELDS}


def values_from_form(values, fields=ACCOUNT_FIELDS):
    """
    {key: text} from a posted account window: an unchecked checkbox is
    absent from the form and means 0; a text or choice field absent from
    the form is left out (unchanged).
    """
    out = {}
    for f in fields:
        if field_kind(f) == "bool":
            out[f.key] = "1" if values.get(f.key) == "1" else "0"
        elif f.key in values:
            out[f.key] = values[f.key]
    return out


def midadmin_fields(bulk=False):
    """The account fields a middle admin's forms offer (SPEC A7)."""
    skip = set(midadmin.ROOT_FIELDS) | (set(consoleops.NOT_BULK) if bulk else set())
    return [f for f in ACCOUNT_FIELDS if f.key not in skip]


def _fields(session, bulk=False):
    if session.scope is not None:
        return midadmin_fields(bulk)
    return list(consoleops.bulk_fields()) if bulk else list(ACCOUNT_FIELDS)


def _aid(text):
    """A checked account ID from a URL; odd characters are refused (400)."""
    try:
        return check_id(text)
    except InvalidValue as e:
        raise Refused(400, str(e))


class UsersApp:
    """The user pages, mounted at /admin/users."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    # -- the list (§7) ---------------------------------------------------------

    def _errors(self, request, session, errors):
        """Form errors in the page's language (fixed texts are msgids)."""
        c = self.console
        return {k: c.translate(request, session, v) for k, v in (errors or {}).items()}

    async def _list(self, request, session, errors=None, new=None):
        c = self.console
        args = query_args(request)
        view = "detail" if args.get("view") == "detail" else "brief"
        query = args.get("q", "")[:64]
        number = to_int(args.get("page"), 1)
        if session.scope is not None:
            result = await c.op(request, session, midadmin.user_page, session.scope,
                                page=number, query=query)
        else:
            result = await c.op(request, session, consoleops.user_page,
                                page=number, query=query)
        return c.render(request, session, "users.html", result=result, view=view,
                        query=query, new=new or {},
                        errors=self._errors(request, session, errors),
                        scope=session.scope, flash=flash(request))

    @app.route("/", methods=["GET"])
    @page(midadmin_ok=True)
    async def user_list(self, request, session):
        return await self._list(request, session)

    @app.route("/create", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def create(self, request, session):
        c = self.console
        values = form(request)
        new = {k: values.get(k, "").strip() for k in ("id", "name", "address", "capacity")}
        errors = {}
        try:
            aid = check_id(new["id"])
        except InvalidValue as e:
            errors["id"] = str(e)
        if not values.get("password"):
            errors["password"] = "The password may not be empty."
        if not errors:
            try:
                if session.scope is not None:
                    await c.op(request, session, midadmin.user_add, session.scope, aid,
                               values["password"], name=new["name"], address=new["address"],
                               capacity=new["capacity"] or "0")
                else:
                    await c.op(request, session, ops.user_add, aid, values["password"],
                               name=new["name"], address=new["address"] or None)
                raise Redirect("/admin/users/%s?done=created" % quote_id(aid))
            except FormErrors as e:
                errors.update(e.errors)
            except (AccountExists, LicenseOver) as e:
                errors["id"] = str(e)
            except InvalidValue as e:
                errors["form"] = str(e)
        request.setResponseCode(400)
        return await self._list(request, session, errors=errors, new=new)

    # -- the bulk window (§17) ---------------------------------------------------

    @app.route("/bulk", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def bulk_form(self, request, session):
        c = self.console
        ids = self._selected(request)
        if session.scope is not None:
            for aid in ids:
                await c.op(request, session, midadmin.check_account, session.scope, aid,
                           allow_self=False)
        return c.render(request, session, "bulk.html", ids=ids,
                        fields=form_fields(_fields(session, bulk=True)),
                        chosen=[], values={}, done=None, failed=[])

    @app.route("/bulk/apply", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def bulk_apply(self, request, session):
        c = self.console
        ids = self._selected(request)
        fields = _fields(session, bulk=True)
        posted = form(request)
        chosen = [k for k in form_list(request, "apply") if k in {f.key for f in fields}]
        all_values = values_from_form(posted, fields)
        values = {k: all_values.get(k, "") for k in chosen}
        try:
            if session.scope is not None:
                done, failed = await c.op(request, session, midadmin.user_bulk,
                                          session.scope, ids, values)
            else:
                done, failed = await c.op(request, session, consoleops.user_bulk, ids, values)
        except FormErrors as e:
            request.setResponseCode(400)
            return c.render(request, session, "bulk.html", ids=ids, fields=form_fields(fields),
                            chosen=chosen, values=all_values,
                            errors=self._errors(request, session, e.errors), done=None,
                            failed=[])
        return c.render(request, session, "bulk.html", ids=ids, fields=form_fields(fields),
                        chosen=chosen, values=all_values, done=done, failed=failed)

    def _selected(self, request):
        ids = [_aid(i) for i in form_list(request, "id")]
        if not ids:
            raise Refused(400, "Select at least one account.")
        if len(ids) > MAX_BULK:
            raise Refused(400, "Select at most %d accounts at once." % MAX_BULK)
        return sorted(set(ids))

    # -- the account window (§16) ------------------------------------------------

    async def _get(self, request, session, aid):
        """The account of a URL, within a middle admin's scope (403 outside it)."""
        if session.scope is not None:
            return await self.console.op(request, session, midadmin.check_account,
                                         session.scope, aid)
        return await self.console.op(request, session, ops.get_account, aid)

    @app.route("/<aid>", methods=["GET"])
    @page(midadmin_ok=True)
    async def account(self, request, session, aid):
        c = self.console
        account = await self._get(request, session, _aid(aid))
        return c.render(request, session, "user.html", account=account,
                        values=account_values(account), fields=form_fields(_fields(session)),
                        flash=flash(request))

    @app.route("/<aid>", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def account_save(self, request, session, aid):
        c = self.console
        aid = _aid(aid)
        posted = form(request)
        fields = _fields(session)
        values = values_from_form(posted, fields)
        if session.scope is not None:
            # A posted root field is checked (and refused) by the rules, not dropped.
            values.update({k: posted[k] for k in midadmin.ROOT_FIELDS if k in posted})
        try:
            if session.scope is not None:
                await c.op(request, session, midadmin.user_update, session.scope, aid,
                           values, password=posted.get("password", ""))
            else:
                await c.op(request, session, consoleops.user_update, aid, values,
                           password=posted.get("password", ""))
        except FormErrors as e:
            account = await self._get(request, session, aid)
            request.setResponseCode(400)
            shown = account_values(account)
            shown.update(values)
            return c.render(request, session, "user.html", account=account, values=shown,
                            fields=form_fields(fields),
                            errors=self._errors(request, session, e.errors))
        raise Redirect("/admin/users/%s?done=saved" % quote_id(aid))

    @app.route("/<aid>/delete", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def delete(self, request, session, aid):
        if session.scope is not None:
            await self.console.op(request, session, midadmin.user_delete, session.scope,
                                  _aid(aid))
        else:
            await self.console.op(request, session, ops.user_del, _aid(aid))
        raise Redirect("/admin/users/?done=deleted")

    async def _action(self, request, session, aid, action):
        c = self.console
        if session.scope is not None:
            return await c.op(request, session, midadmin.account_action, session.scope,
                              aid, action)
        if action == "zip":
            return await c.op(request, session, ops.zip_mailbox, aid, "root")
        return await c.op(request, session, ops.backup if action == "backup"
                          else ops.import_eml, aid)

    @app.route("/<aid>/backup", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def backup(self, request, session, aid):
        await self._action(request, session, _aid(aid), "backup")
        raise Redirect("/admin/users/%s?done=backup" % quote_id(_aid(aid)))

    @app.route("/<aid>/zip", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def zip(self, request, session, aid):
        await self._action(request, session, _aid(aid), "zip")
        done = "zipmid" if session.scope is not None else "zip"
        raise Redirect("/admin/users/%s?done=%s" % (quote_id(_aid(aid)), done))

    @app.route("/<aid>/import", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def import_mail(self, request, session, aid):
        c = self.console
        result = await self._action(request, session, _aid(aid), "import")
        account = await self._get(request, session, _aid(aid))
        return c.render(request, session, "user.html", account=account,
                        values=account_values(account), fields=form_fields(_fields(session)),
                        imported=result)
