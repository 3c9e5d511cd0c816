# -*- test-case-name: tests.test_webmail_folders -*-
"""
/mail/folders/RAND/...: the user's own folders and actions on several
messages at once (SPEC W2).

  (GET)             the folders with their counts; create, rename, delete
  create            POST name: a new empty folder (names as
                    L{zwms.store.mailstore.check_user_folder})
  rename/F          POST name: F gets the new name (its messages follow)
  delete/F          POST: F's messages go to Trash, then F goes
  empty/F           POST: every message of Trash or Spam is deleted
  bulk/F            POST action=move|delete|read|unread, name=… (several),
                    target=FOLDER: the selected messages of the list page;
                    delete moves them to Trash (from Trash: gone)

The five standard folders can be neither renamed nor deleted.
"""

from urllib.parse import quote

from klein import Klein
from twisted.internet import defer

from zwms.account import FOLDERS
from zwms.errors import InvalidValue
from zwms.web.console import Redirect, Refused, form_list, query_args
from zwms.web.webmail.mailbox import check_box
from zwms.web.webmail.state import page

#: Most messages one bulk action takes (a list page holds at most 500).
MAX_SELECTED = 1000
#: Folders "empty" applies to.
EMPTIABLE = ("Trash", "Spam")


class FoldersApp:
    """Folder management and bulk actions, at /mail/folders."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    def _url(self, session, *parts):
        return "/mail/folders/%s/%s" % (self.webmail.rand(session),
                                        "/".join(quote(str(p), safe="") for p in parts))

    def _box(self, session, folder):
        return "/mail/box/%s/folder/%s" % (self.webmail.rand(session), quote(folder, safe=""))

    async def _page(self, request, session, error="", status=200, flash=""):
        wm = self.webmail
        request.setResponseCode(status)
        nav = await wm.nav(session)
        return wm.render(request, session, "folders.html", error=error, flash=flash,
                         standard=FOLDERS, **nav)

    async def _own(self, session, folder):
        """A user folder of this account (not a standard one); else 404/400."""
        if folder in FOLDERS:
            raise Refused(400, "The standard folders cannot be renamed or deleted.")
        return await check_box(self.webmail, session, folder)

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def show(self, request, session):
        done = query_args(request).get("done", "")
        return await self._page(request, session, flash=done if done in (
            "created", "renamed", "deleted") else "")

    @app.route("/<rand>/create", methods=["POST"])
    @page("POST")
    async def create(self, request, session, values):
        wm = self.webmail
        name = values.get("name", "").strip()
        try:
            await defer.maybeDeferred(wm.services.mail.create_folder, session.login, name)
        except InvalidValue as e:
            return await self._page(request, session, error=str(e), status=400)
        wm.log("webmail folder created: %s %s" % (session.login, name), request)
        raise Redirect(self._url(session) + "?done=created")

    @app.route("/<rand>/rename/<folder>", methods=["POST"])
    @page("POST")
    async def rename(self, request, session, folder, values):
        wm = self.webmail
        await self._own(session, folder)
        new = values.get("name", "").strip()
        try:
            await defer.maybeDeferred(wm.services.mail.rename_folder, session.login, folder,
                                      new)
        except InvalidValue as e:
            return await self._page(request, session, error=str(e), status=400)
        wm.log("webmail folder renamed: %s %s -> %s" % (session.login, folder, new), request)
        raise Redirect(self._url(session) + "?done=renamed")

    @app.route("/<rand>/delete/<folder>", methods=["POST"])
    @page("POST")
    async def delete(self, request, session, folder, values):
        wm = self.webmail
        mail = wm.services.mail
        await self._own(session, folder)
        infos = await wm.run(mail.messages, session.login, folder)
        if infos:
            await defer.maybeDeferred(mail.move, session.login, folder,
                                      [i.name for i in infos], "Trash")
        await defer.maybeDeferred(mail.delete_folder, session.login, folder)
        wm.log("webmail folder deleted: %s %s (%d messages to Trash)"
               % (session.login, folder, len(infos)), request)
        raise Redirect(self._url(session) + "?done=deleted")

    @app.route("/<rand>/empty/<folder>", methods=["POST"])
    @page("POST")
    async def empty(self, request, session, folder, values):
        wm = self.webmail
        mail = wm.services.mail
        if folder not in EMPTIABLE:
            raise Refused(400, "Only Trash and Spam can be emptied.")
        infos = await wm.run(mail.messages, session.login, folder)
        if infos:
            await defer.maybeDeferred(mail.delete, session.login, folder,
                                      [i.name for i in infos])
        wm.log("webmail emptied %s: %s, %d messages" % (folder, session.login, len(infos)),
               request)
        raise Redirect(self._box(session, folder) + "?done=emptied")

    @app.route("/<rand>/bulk/<folder>", methods=["POST"])
    @page("POST")
    async def bulk(self, request, session, folder, values):
        wm = self.webmail
        mail = wm.services.mail
        await check_box(wm, session, folder)
        names = list(dict.fromkeys(form_list(request, "name")))
        if not names:
            raise Refused(400, "Select at least one message.")
        if len(names) > MAX_SELECTED:
            raise Refused(400, "Select at most %d messages at once." % MAX_SELECTED)
        action = values.get("action", "")
        login = session.login
        if action == "move":
            target = await check_box(wm, session, values.get("target", ""))
            count = await defer.maybeDeferred(mail.move, login, folder, names, target)
            done = "moved"
        elif action == "delete":
            if folder == "Trash":
                count = await defer.maybeDeferred(mail.delete, login, folder, names)
            else:
                count = await defer.maybeDeferred(mail.move, login, folder, names, "Trash")
            done = "deleted"
        elif action in ("read", "unread"):
            await defer.maybeDeferred(mail.mark_seen, login, folder, names, action == "read")
            count, done = len(names), "marked"
        else:
            raise Refused(400, "Choose what to do with the selected messages.")
        wm.log("webmail %s: %s/%s %d message(s)%s" % (
            action, login, folder, count or 0,
            " to " + values.get("target", "") if action == "move" else ""), request)
        raise Redirect(self._box(session, folder) + "?done=" + done)
