# -*- test-case-name: tests.test_webmail_contacts -*-
"""
/mail/contacts/RAND/...: the address book (SPEC W3, seed §28) over
L{zwms.store.addressbook.AddressBook}.

  (GET)  ?q=TEXT&group=G    the list (search, group filter), the groups,
                            the import form and the export links
  new                       GET the form, POST add (name, addresses, phone,
                            memo, groups[] and new_group)
  edit/ID                   GET the form, POST save
  delete/ID                 POST: one contact
  selected                  POST id[] and action=write|delete|addgroup|
                            removegroup (with group): "write" answers a 303
                            to /mail/compose/RAND/new?to=... (the compose
                            page's own "to" argument, at most 1000
                            characters)
  group/add                 POST name
  group/rename              POST old, new
  group/delete              POST name (the contacts stay)
  import                    POST multipart: file (an Outlook CSV: UTF-8
                            with or without BOM, UTF-16, EUC-KR), group;
                            answers the report page (added, duplicates,
                            each skipped line); the uploaded file is
                            removed after the import (§28)
  export.csv, export.vcf    GET ?group=G: downloads
  complete?q=PREFIX         GET: JSON list of "Name <addr>" (at most 10) for
                            compose completion (js/complete.js); 403 JSON
                            without a session

Store errors (English, with values) are shown through L{user_message},
which maps them to catalog messages.
"""

import json
import re
from urllib.parse import quote, urlencode

from klein import Klein

from zwms import i18n
from zwms.errors import InvalidValue
from zwms.i18n import N_
from zwms.store.addressbook import AddressBook
from zwms.web.console import Redirect, Refused, form_list, query_args
from zwms.web.webmail.state import NoSession, page

#: Compose takes at most this many characters of "to" (compose.py).
COMPOSE_TO_MAX = 1000
COMPLETE_LIMIT = 10
FLASHES = ("saved", "added", "deleted", "renamed", "created", "grouped")

#: Store messages (regex over str(InvalidValue)) -> catalog message; the
#: named groups become its values.
_MESSAGES = (
    (r"^the name is too long \(most (?P<n>\d+) characters\)$",
     N_("The name is too long (at most %(n)s characters).")),
    (r"^the phone number is too long \(most (?P<n>\d+) characters\)$",
     N_("The phone number is too long (at most %(n)s characters).")),
    (r"^a group name is too long \(most (?P<n>\d+) characters\)$",
     N_("A group name is too long (at most %(n)s characters).")),
    (r"^the memo is too long \(most (?P<n>\d+) characters\)$",
     N_("The memo is too long (at most %(n)s characters).")),
    (r"^not an e-mail address: '?(?P<value>.*?)'?$", N_("Not an e-mail address: %(value)s")),
    (r"^a contact needs an e-mail address$", N_("A contact needs an e-mail address.")),
    (r"^at most (?P<n>\d+) addresses per contact$", N_("At most %(n)s addresses per contact.")),
    (r"^the address book file is damaged", N_("Your address book file is damaged; "
                                             "ask the administrator to repair it.")),
    (r"^the address book is full \((?P<n>\d+) contacts\)$",
     N_("The address book is full (%(n)s contacts).")),
    (r"^a group needs a name$", N_("A group needs a name.")),
    # The reasons of skipped import lines (ImportReport.skipped).
    (r"^no valid e-mail address: (?P<value>.*)$", N_("No valid e-mail address: %(value)s")),
    (r"^the address book is full$", N_("The address book is full.")),
    (r"^the CSV file is too large \(most (?P<n>\d+) bytes\)$",
     N_("The CSV file is too large (at most %(n)s bytes).")),
    (r"^no e-mail address found in the file \((?P<n>\d+) lines skipped\)$",
     N_("No e-mail address was found in the file (%(n)s lines skipped). "
        "Export the name and e-mail address fields from Outlook, separated by commas.")),
    (r"^the file is neither UTF-8 nor EUC-KR text$",
     N_("The file is neither UTF-8 nor EUC-KR text.")),
    (r"^the file is not a text \(CSV\) file$", N_("The file is not a text (CSV) file.")),
    # The calendar's (zwms.store.calendar, usercal).
    (r"^a date looks like 2024-05-05, got '?(?P<value>.*?)'?$",
     N_("Not a date: %(value)s. A date looks like 2026-05-05.")),
    (r"^no such date: '?(?P<value>.*?)'?$", N_("No such date: %(value)s")),
    (r"^no such month: (?P<value>.*)$", N_("No such month: %(value)s")),
    (r"^the memo may not contain NUL characters$",
     N_("The memo may not contain NUL characters.")),
    (r"^the memo is longer than (?P<n>\d+) characters$",
     N_("The memo is longer than %(n)s characters.")),
)


def user_message(lang, error):
    """A store error (an L{InvalidValue} or its text) in the page's language."""
    text = str(error)
    tr = i18n.translations(lang)
    for pattern, msgid in _MESSAGES:
        m = re.match(pattern, text)
        if m:
            return tr.gettext(msgid) % m.groupdict()
    return tr.gettext(N_("The value was refused: %(detail)s")) % {"detail": text}


def say(wm, request, session, msgid, **values):
    """One catalog message in the page's language."""
    text = i18n.translations(wm.language(request, session)).gettext(msgid)
    return text % values if values else text


def mailbox(name, address):
    """C{Name <addr>}, the name quoted when it holds a character special in headers."""
    if not name or name == address.split("@")[0]:
        return address
    if re.search(r'[,;:<>@()\[\]"\\.]', name):
        name = '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')
    return "%s <%s>" % (name, address)


def compose_to(contacts):
    """
    The compose page's "to" value for some contacts (their main address):
    with names when it fits, else bare addresses, else None (too long).
    """
    for named in (True, False):
        text = ", ".join(mailbox(c.name, c.address) if named else c.address
                         for c in contacts if c.address)
        if len(text) <= COMPOSE_TO_MAX:
            return text
    return None


def _ids(request):
    """The checked contact numbers; None when one is not a number."""
    try:
        return [int(i) for i in form_list(request, "id")]
    except ValueError:
        return None


class ContactsApp:
    """The address book pages, at /mail/contacts."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
        self.book = AddressBook(webmail.services.home)

    def _url(self, session, path="", done="", **args):
        if done:
            args["done"] = done
        query = ("?" + urlencode(args)) if args else ""
        return "/mail/contacts/%s/%s%s" % (self.webmail.rand(session), path, query)

    def _lang(self, request, session):
        return self.webmail.language(request, session)

    async def _list(self, request, session, error="", status=200, flash="", report=None):
        wm = self.webmail
        request.setResponseCode(status)
        args = query_args(request)
        q, group = args.get("q", "").strip()[:200], args.get("group", "")
        groups = await wm.run(self.book.groups, session.login)
        if group not in groups:
            group = ""
        if q:
            contacts = await wm.run(self.book.search, session.login, q, group or None)
        else:
            contacts = await wm.run(self.book.contacts, session.login, group or None)
        nav = await wm.nav(session)
        return wm.render(request, session, "contacts.html", contacts=contacts, groups=groups,
                         q=q, group=group, error=error, flash=flash, report=report,
                         export_query=("?" + urlencode({"group": group})) if group else "",
                         **nav)

    async def _form(self, request, session, contact, error="", status=200):
        wm = self.webmail
        request.setResponseCode(status)
        groups = await wm.run(self.book.groups, session.login)
        nav = await wm.nav(session)
        return wm.render(request, session, "contacts_form.html", contact=contact,
                         groups=groups, error=error, **nav)

    def _done(self, session, what, **args):
        raise Redirect(self._url(session, done=what, **args))

    # -- the list ------------------------------------------------------------

    @app.route("/<rand>", methods=["GET"])
    @page()
    async def bare(self, request, session):
        raise Redirect(self._url(session))

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def show(self, request, session):
        done = query_args(request).get("done", "")
        return await self._list(request, session, flash=done if done in FLASHES else "")

    # -- one contact -----------------------------------------------------------

    @staticmethod
    def _values(request, values):
        """The contact fields of a form (groups: the checked ones, plus new_group's, by comma)."""
        groups = form_list(request, "groups")
        groups += [g.strip() for g in values.get("new_group", "").split(",") if g.strip()]
        return {"name": values.get("name", ""), "addresses": values.get("addresses", ""),
                "phone": values.get("phone", ""), "memo": values.get("memo", ""),
                "groups": groups}

    @app.route("/<rand>/new", methods=["GET"])
    @page()
    async def new_form(self, request, session):
        return await self._form(request, session, {
            "id": None, "name": "", "addresses": "", "phone": "", "memo": "",
            "groups": [query_args(request).get("group", "")]})

    @app.route("/<rand>/new", methods=["POST"])
    @page("POST")
    async def new(self, request, session, values):
        wm = self.webmail
        fields = self._values(request, values)
        try:
            contact = await wm.run(self.book.add, session.login, **fields)
        except InvalidValue as e:
            fields["id"] = None
            return await self._form(request, session, fields, status=400,
                                    error=user_message(self._lang(request, session), e))
        wm.log("webmail contact added: %s #%d" % (session.login, contact.id), request)
        self._done(session, "added")

    async def _get(self, request, session, contact_id):
        wm = self.webmail
        try:
            return await wm.run(self.book.get, session.login, contact_id)
        except KeyError:
            raise Refused(404, say(wm, request, session, N_("No such contact.")))

    @app.route("/<rand>/edit/<int:contact_id>", methods=["GET"])
    @page()
    async def edit_form(self, request, session, contact_id):
        c = await self._get(request, session, contact_id)
        return await self._form(request, session, {
            "id": c.id, "name": c.name, "addresses": ", ".join(c.addresses), "phone": c.phone,
            "memo": c.memo, "groups": c.groups})

    @app.route("/<rand>/edit/<int:contact_id>", methods=["POST"])
    @page("POST")
    async def edit(self, request, session, contact_id, values):
        wm = self.webmail
        fields = self._values(request, values)
        try:
            await wm.run(self.book.edit, session.login, contact_id, **fields)
        except KeyError:
            raise Refused(404, say(wm, request, session, N_("No such contact.")))
        except InvalidValue as e:
            fields["id"] = contact_id
            return await self._form(request, session, fields, status=400,
                                    error=user_message(self._lang(request, session), e))
        wm.log("webmail contact changed: %s #%d" % (session.login, contact_id), request)
        self._done(session, "saved")

    @app.route("/<rand>/delete/<int:contact_id>", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, contact_id, values):
        wm = self.webmail
        if not await wm.run(self.book.delete, session.login, [contact_id]):
            raise Refused(404, say(wm, request, session, N_("No such contact.")))
        wm.log("webmail contact deleted: %s #%d" % (session.login, contact_id), request)
        self._done(session, "deleted")

    # -- several contacts ------------------------------------------------------

    @app.route("/<rand>/selected", methods=["POST"])
    @page("POST")
    async def selected(self, request, session, values):
        wm = self.webmail
        ids = _ids(request)
        action = values.get("action", "")
        if ids is None:
            raise Refused(400, say(wm, request, session, N_("Bad contact number.")))
        if not ids:
            return await self._list(request, session, status=400, error=say(
                wm, request, session, N_("Choose one or more contacts first.")))
        if action == "write":
            contacts = [c for c in await wm.run(self.book.contacts, session.login)
                        if c.id in set(ids)]
            to = compose_to(contacts)
            if to is None:
                return await self._list(request, session, status=400, error=say(
                    wm, request, session,
                    N_("Too many recipients for one message: choose fewer contacts.")))
            raise Redirect("/mail/compose/%s/new?to=%s" % (wm.rand(session),
                                                          quote(to, safe="@")))
        if action == "delete":
            count = await wm.run(self.book.delete, session.login, ids)
            wm.log("webmail contacts deleted: %s %d" % (session.login, count), request)
            self._done(session, "deleted")
        if action in ("addgroup", "removegroup"):
            group = values.get("group", "")
            try:
                if not group.strip():
                    raise InvalidValue("a group needs a name")
                await wm.run(self.book.set_groups, session.login, ids, group,
                             action == "addgroup")
            except InvalidValue as e:
                return await self._list(request, session, status=400,
                                        error=user_message(self._lang(request, session), e))
            self._done(session, "grouped")
        raise Refused(400, say(wm, request, session, N_("Unknown action.")))

    # -- groups ---------------------------------------------------------------

    @app.route("/<rand>/group/<any(add, rename, delete):op>", methods=["POST"])
    @page("POST")
    async def group(self, request, session, op, values):
        wm = self.webmail
        book = self.book
        try:
            if op == "add":
                await wm.run(book.add_group, session.login, values.get("name", ""))
            elif op == "rename":
                old = values.get("old", "")
                if old not in await wm.run(book.groups, session.login):
                    raise Refused(404, say(wm, request, session, N_("No such group.")))
                await wm.run(book.rename_group, session.login, old, values.get("new", ""))
            else:
                await wm.run(book.delete_group, session.login, values.get("name", ""))
        except InvalidValue as e:
            return await self._list(request, session, status=400,
                                    error=user_message(self._lang(request, session), e))
        wm.log("webmail contact group %s: %s" % (op, session.login), request)
        self._done(session, {"add": "created", "rename": "renamed", "delete": "deleted"}[op])

    # -- import and export -------------------------------------------------------

    @app.route("/<rand>/import", methods=["POST"])
    @page("POST", upload=True)
    async def import_csv(self, request, session, values, files):
        wm = self.webmail
        upload = [f for f in files if f[0] == "file"]
        if not upload or not upload[0][3]:
            return await self._list(request, session, status=400, error=say(
                wm, request, session, N_("Choose a CSV file to import.")))
        _, filename, _, data = upload[0]
        try:
            report = await wm.run(self.book.import_upload, session.login, data,
                                  values.get("group", "").strip() or None)
        except InvalidValue as e:
            wm.log("webmail contacts import refused: %s (%s)" % (session.login, e), request)
            return await self._list(request, session, status=400,
                                    error=user_message(self._lang(request, session), e))
        wm.log("webmail contacts imported: %s %d added, %d duplicates, %d skipped (%s)"
               % (session.login, report.added, report.duplicates, len(report.skipped),
                  report.encoding), request)
        lang = self._lang(request, session)
        report.skipped = [(line, user_message(lang, reason)) for line, reason in report.skipped]
        return await self._list(request, session, report=report)

    def _download(self, request, data, ctype, filename):
        request.setHeader(b"Content-Type", ctype)
        request.setHeader(b"Content-Disposition",
                          b'attachment; filename="%s"' % filename.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return data

    @app.route("/<rand>/export.<any(csv, vcf):kind>", methods=["GET"])
    @page()
    async def export(self, request, session, kind):
        wm = self.webmail
        group = query_args(request).get("group", "") or None
        if kind == "csv":
            data = await wm.run(self.book.export_csv, session.login, group)
            return self._download(request, data, b"text/csv; charset=utf-8", "contacts.csv")
        data = await wm.run(self.book.export_vcard, session.login, group)
        return self._download(request, data, b"text/vcard; charset=utf-8", "contacts.vcf")

    # -- completion -----------------------------------------------------------

    @app.route("/<rand>/complete", methods=["GET"])
    async def complete(self, request, rand):
        wm = self.webmail
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        try:
            session = await wm.session(request, rand)
        except NoSession:
            request.setResponseCode(403)
            return b'{"error": "no session"}'
        prefix = query_args(request).get("q", "")[:100]
        try:
            pairs = await wm.run(self.book.complete, session.login, prefix, COMPLETE_LIMIT)
        except InvalidValue:
            pairs = []
        return json.dumps([mailbox(n, a) for n, a in pairs],
                          ensure_ascii=False).encode("utf-8")
