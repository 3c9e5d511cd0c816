# -*- test-case-name: tests.test_webmail_compose -*-
"""
/mail/settings/RAND/...: the user's own settings (SPEC W4, minimal part)
and logout.

  (GET)        the form: name, signature, language; password change
  save         POST: name (account field), signature and language
               (L{zwms.store.userprefs})
  password     POST: the current password, then the new one twice
  logout       POST: the session ends (its file and cookie go)
"""

from klein import Klein

from zwms import i18n
from zwms.account import FOLDERS
from zwms.errors import InvalidValue
from zwms.store import userprefs
from zwms.web.console import Redirect, query_args
from zwms.web.webmail.state import page


class SettingsApp:
    """The settings pages, at /mail/settings."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    def _url(self, session):
        return "/mail/settings/%s/" % self.webmail.rand(session)

    async def _page(self, request, session, errors=None, status=200, flash=""):
        wm = self.webmail
        prefs = await wm.run(userprefs.load, wm.services.home, session.login)
        account = wm.services.accounts.get(session.login)
        counts = await wm.run(wm.services.mail.counts, session.login)
        request.setResponseCode(status)
        return wm.render(request, session, "settings.html", prefs=prefs,
                         fullname=account.name if account else "", errors=errors or {},
                         flash=flash, counts=counts, folders=FOLDERS)

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def show(self, request, session):
        done = query_args(request).get("done", "")
        return await self._page(request, session, flash=done if done in ("saved", "password")
                                else "")

    @app.route("/<rand>/save", methods=["POST"])
    @page("POST")
    async def save(self, request, session, values):
        wm = self.webmail
        errors = {}
        name = values.get("name", "").strip()
        try:
            await wm.run(wm.services.accounts.set, session.login, "name", name)
        except InvalidValue as e:
            errors["name"] = str(e)
        lang = i18n.choose(values.get("lang"))
        try:
            await wm.run(userprefs.save, wm.services.home, session.login,
                         signature=values.get("signature", "").replace("\r\n", "\n"),
                         lang=lang)
        except InvalidValue as e:
            errors["signature"] = str(e)
        if errors:
            return await self._page(request, session, errors, 400)
        session.data["lang"] = lang
        await wm.run(wm.sessions.save, session)
        raise Redirect(self._url(session) + "?done=saved")

    @app.route("/<rand>/password", methods=["POST"])
    @page("POST")
    async def password(self, request, session, values):
        wm = self.webmail
        current, new, again = (values.get("current", ""), values.get("password", ""),
                               values.get("password2", ""))
        errors = {}
        good = await wm.run(wm.services.accounts.check_password, session.login, current)
        if not good:
            errors["current"] = "The current password is wrong."
        elif new != again:
            errors["password2"] = "The two passwords differ."
        elif len(new) < 6:
            errors["password"] = "Use at least 6 characters."
        else:
            try:
                await wm.run(wm.services.accounts.set, session.login, "password", new)
            except InvalidValue as e:
                errors["password"] = str(e)
        if errors:
            wm.log("webmail password change refused: %s" % session.login, request)
            return await self._page(request, session, errors, 400)
        wm.log("webmail password changed: %s" % session.login, request)
        raise Redirect(self._url(session) + "?done=password")

    @app.route("/<rand>/logout", methods=["POST"])
    @page("POST")
    async def logout(self, request, session, values):
        wm = self.webmail
        await wm.end_session(request, session)
        wm.log("webmail logout: %s" % session.login, request)
        raise Redirect("/mail/")
