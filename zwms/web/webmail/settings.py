# -*- test-case-name: tests.test_webmail_compose -*-
"""
/mail/settings/RAND/...: the user's own settings (SPEC W4, minimal part)
and logout.

  (GET)        the form: name, signature, language, time zone; password
               change; the user's mailbox zips
  save         POST: name (account field), signature, language and time
               zone (L{zwms.store.userprefs})
  password     POST: the current password, then the new one twice
  zip          POST: the mailbox zipped (seed §26) by
               L{zwms.admin.ops.zip_mailbox} with by="user", into
               ZIPDIR/user/ID-YYYYmmdd-HHMMSS.zip
  zipfile/Z    GET: one of the user's own zips, as a download
  zipdel/Z     POST: remove one of them
  logout       POST: the session ends (its file and cookie go)

Zips are kept after download, as §26 says (zip/user holds what users
zipped; the administrator's file viewer sees them); the user removes
them here.  Only names ID-<stamp>[-N].zip of the session's own ID are
served or removed, so no name can reach another file.
"""

import os
import re

from klein import Klein

from zwms import i18n
from zwms.errors import InvalidValue
from zwms.store import userprefs
from zwms.web.console import Redirect, Refused, query_args
from zwms.web.webmail.state import page


#: Zips up to this size are read in a thread and sent in one piece.
SMALL_ZIP = 8 * 1024 * 1024


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def zip_name_re(login):
    """The names of an account's own zips (archive.zip_mailbox's naming)."""
    return re.compile(r"^%s-\d{8}-\d{6}(-\d{1,3})?\.zip\Z" % re.escape(login))


class SettingsApp:
    """The settings pages, at /mail/settings."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    def _url(self, session):
        return "/mail/settings/%s/" % self.webmail.rand(session)

    def _zip_folder(self):
        from zwms.admin import archive
        return archive.zip_dir(self.webmail.user_context(None, "-"), "user")

    def _zips(self, login):
        """[(name, size)] of the user's own zips, newest first (blocking)."""
        name_re = zip_name_re(login)
        folder = self._zip_folder()
        try:
            entries = [(e.name, e.stat().st_size) for e in os.scandir(folder)
                       if name_re.match(e.name) and e.is_file(follow_symlinks=False)]
        except FileNotFoundError:
            entries = []
        return sorted(entries, reverse=True)

    def _zip_path(self, login, name):
        if not zip_name_re(login).match(name):
            raise Refused(404, "No such file.")
        path = os.path.join(self._zip_folder(), name)
        if not os.path.isfile(path) or os.path.islink(path):
            raise Refused(404, "No such file.")
        return path

    async def _page(self, request, session, errors=None, status=200, flash=""):
        wm = self.webmail
        prefs = await wm.run(userprefs.load, wm.services.home, session.login)
        account = wm.services.accounts.get(session.login)
        zips = await wm.run(self._zips, session.login)
        request.setResponseCode(status)
        return wm.render(request, session, "settings.html", prefs=prefs,
                         fullname=account.name if account else "", errors=errors or {},
                         flash=flash, zips=zips, zones=userprefs.zones(),
                         **(await wm.nav(session)))

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def show(self, request, session):
        done = query_args(request).get("done", "")
        return await self._page(request, session, flash=done if done in (
            "saved", "password", "zip", "removed") else "")

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
        tz = values.get("tz", "").strip() or userprefs.DEFAULT_TZ
        try:
            userprefs.check_tz(tz)
        except InvalidValue as e:
            errors["tz"] = str(e)
        if not errors.get("tz"):
            try:
                await wm.run(userprefs.save, wm.services.home, session.login,
                             signature=values.get("signature", "").replace("\r\n", "\n"),
                             lang=lang, tz=tz)
            except InvalidValue as e:
                errors["signature"] = str(e)
        if errors:
            return await self._page(request, session, errors, 400)
        session.data["lang"] = lang
        session.data["tz"] = tz
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

    @app.route("/<rand>/zip", methods=["POST"])
    @page("POST")
    async def zip(self, request, session, values):
        wm = self.webmail
        from zwms.admin import ops
        ctx = wm.user_context(request, "webmail %s" % session.login)
        path, count = await wm.run(ops.zip_mailbox, ctx, session.login, "user")
        wm.log("webmail zip: %s, %d messages, %s" % (session.login, count,
                                                    os.path.basename(path)), request)
        raise Redirect(self._url(session) + "?done=zip")

    @app.route("/<rand>/zipfile/<zipname>", methods=["GET"])
    @page()
    async def zipfile(self, request, session, zipname):
        from twisted.web.static import File

        from zwms.web.webmail.mailbox import content_disposition
        path = self._zip_path(session.login, zipname)
        request.setHeader(b"Content-Disposition", content_disposition("attachment", zipname))
        request.setHeader(b"Cache-Control", b"private, no-store")
        size = await self.webmail.run(os.path.getsize, path)
        if size <= SMALL_ZIP:
            request.setHeader(b"Content-Type", b"application/zip")
            return await self.webmail.run(_read, path)
        # static.File streams a large zip with a producer (the client's pace):
        # the reactor never holds it whole.
        return File(path, defaultType="application/zip")

    @app.route("/<rand>/zipdel/<zipname>", methods=["POST"])
    @page("POST")
    async def zipdel(self, request, session, zipname, values):
        wm = self.webmail
        path = self._zip_path(session.login, zipname)
        await wm.run(os.unlink, path)
        wm.log("webmail zip removed: %s %s" % (session.login, zipname), request)
        raise Redirect(self._url(session) + "?done=removed")

    @app.route("/<rand>/logout", methods=["POST"])
    @page("POST")
    async def logout(self, request, session, values):
        wm = self.webmail
        await wm.end_session(request, session)
        wm.log("webmail logout: %s" % session.login, request)
        raise Redirect("/mail/")
