# -*- test-case-name: tests.test_webmail_settings -*-
"""
/mail/filters/RAND/...: how the user's mail is received (SPEC W4, P6;
seed §16, §32): forwarding, receive mode and POP3 share (account fields),
sorting rules, allowed/refused addresses and IPs and the spam filter
(L{zwms.store.rules.RulesStore}, the store the receive policy reads).

  (GET)                 the page
  options               POST forward, forwardmode, receivemode, pop3share
  sort/add              POST field=sender|subject, pattern, folder ("" = delete)
  sort/remove/I         POST: sorting rule number I (0-based)
  list/KIND/add         POST value; KIND allow_addresses|deny_addresses|
                        allow_ips|deny_ips
  list/KIND/remove      POST value
  spam/add              POST field, pattern (what "block" registers, by hand)
  spam/remove           POST field, pattern
"""

from klein import Klein

from zwms.errors import InvalidValue
from zwms.store import rules as rulestore
from zwms.web.console import Redirect, Refused, query_args
from zwms.web.webmail.compose import own_addresses
from zwms.web.webmail.state import page

RECEIVE_MODES = ("all", "domain", "allow", "addressbook")
FLASHES = ("saved", "added", "removed")


class FiltersApp:
    """The receive settings, at /mail/filters."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    def _url(self, session, done=""):
        return "/mail/filters/%s/%s" % (self.webmail.rand(session),
                                        "?done=" + done if done else "")

    async def _page(self, request, session, error="", status=200, flash=""):
        wm = self.webmail
        request.setResponseCode(status)
        account = wm.services.accounts.get(session.login)
        try:
            rules = await wm.run(wm.rules.get, session.login)
            broken = False
        except rulestore.CorruptRules:
            rules, broken = rulestore.EMPTY, True
        nav = await wm.nav(session)
        return wm.render(request, session, "filters.html", account=account, rules=rules,
                         broken=broken, error=error, flash=flash, modes=RECEIVE_MODES,
                         lists=rulestore.LISTS, sort_folders=[
                             f for f in ("Inbox", "Spam") + tuple(nav["user_folders"])],
                         **nav)

    async def _change(self, request, session, f, *args):
        """Run one rules-store change; a bad value becomes the page's error."""
        wm = self.webmail
        try:
            await wm.run(f, session.login, *args)
        except InvalidValue as e:
            return await self._page(request, session, error=str(e), status=400)
        return None

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def show(self, request, session):
        done = query_args(request).get("done", "")
        return await self._page(request, session, flash=done if done in FLASHES else "")

    @app.route("/<rand>/options", methods=["POST"])
    @page("POST")
    async def options(self, request, session, values):
        wm = self.webmail
        account = wm.services.accounts.get(session.login)
        forward = values.get("forward", "").strip().lower()
        mode = values.get("forwardmode", "notice")
        receive = values.get("receivemode", "all")
        try:
            if forward and forward in own_addresses(account, wm.services.settings):
                raise InvalidValue("Mail cannot be forwarded to this account's own address.")
            if mode not in ("notice", "copy"):
                raise InvalidValue("Choose notice or copy.")
            if receive not in RECEIVE_MODES:
                raise InvalidValue("Unknown receive mode.")
            changes = (("forward", forward), ("forwardmode", mode), ("receivemode", receive),
                       ("pop3share", "1" if values.get("pop3share") else "0"))
            for key, value in changes:
                await wm.run(wm.services.accounts.set, session.login, key, value)
        except InvalidValue as e:
            return await self._page(request, session, error=str(e), status=400)
        wm.log("webmail receive options: %s forward %s (%s), receivemode %s" % (
            session.login, forward or "-", mode, receive), request)
        raise Redirect(self._url(session, "saved"))

    @app.route("/<rand>/sort/add", methods=["POST"])
    @page("POST")
    async def sort_add(self, request, session, values):
        folder = values.get("folder", "")
        if folder and folder not in await self.webmail.run(self.webmail.services.mail.folders,
                                                          session.login):
            raise Refused(400, "No such folder.")
        error = await self._change(request, session, self.webmail.rules.add_sort_rule,
                                   values.get("field", ""), values.get("pattern", ""),
                                   folder or None)
        return error or self._done(request, session, "added")

    @app.route("/<rand>/sort/remove/<int:index>", methods=["POST"])
    @page("POST")
    async def sort_remove(self, request, session, index, values):
        error = await self._change(request, session, self.webmail.rules.remove_sort_rule,
                                   index)
        return error or self._done(request, session, "removed")

    @app.route("/<rand>/list/<kind>/<any(add, remove):op>", methods=["POST"])
    @page("POST")
    async def list_change(self, request, session, kind, op, values):
        if kind not in rulestore.LISTS:
            raise Refused(404, "No such list.")
        rules = self.webmail.rules
        error = await self._change(request, session, rules.add if op == "add" else rules.remove,
                                   kind, values.get("value", ""))
        return error or self._done(request, session, "added" if op == "add" else "removed")

    @app.route("/<rand>/spam/<any(add, remove):op>", methods=["POST"])
    @page("POST")
    async def spam_change(self, request, session, op, values):
        field, pattern = values.get("field", ""), values.get("pattern", "")
        rules = self.webmail.rules
        if op == "add":
            if field not in rulestore.FIELDS:
                raise Refused(400, "Choose sender or subject.")
            args = (pattern, "") if field == "sender" else ("", pattern)
            error = await self._change(request, session, rules.block, *args)
        else:
            error = await self._change(request, session, rules.unblock, field, pattern)
        return error or self._done(request, session, "added" if op == "add" else "removed")

    def _done(self, request, session, what):
        self.webmail.log("webmail rules %s: %s %s" % (what, session.login,
                                                      request.path.decode("ascii", "replace")
                                                      .rsplit("/", 2)[-2]), request)
        raise Redirect(self._url(session, what))
