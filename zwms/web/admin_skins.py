# -*- test-case-name: tests.test_web_admin_skins -*-
"""
/admin/skins/...: the webmail skin chooser (SPEC A6, seed §13, §19).

The page lists the user skins of the skins folder (a folder with a
loginuser.html; the admin skin C{common} is not offered), shows each one's
C{preview_NAME.gif|png|svg} when there is one, and stores the choice in
env.cfg C{SKIN} (live: the next webmail page uses it;
L{zwms.web.userskin}).

Routes:
  - GET  /admin/skins/                the list and the chooser form
  - GET  /admin/skins/preview/NAME    a skin's preview image (NAME checked:
                                      only C{preview_NAME.EXT} of the skins
                                      folder is ever read)
  - POST /admin/skins/choose          skin=NAME (CSRF)
"""

import os

from klein import Klein

from zwms.admin import ops
from zwms.web.console import Redirect, Refused, flash, form, page
from zwms.web.userskin import DEFAULT_SKIN, is_user_skin, list_skins, preview_of


class SkinsApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    @property
    def root(self):
        """The skins folder: the one holding the admin skin of this console."""
        return os.path.dirname(self.console.templates.folder)

    @app.route("/", methods=["GET"])
    @page()
    async def skins(self, request, session):
        c = self.console
        skins = await c.run(list_skins, self.root)
        current = str(c.services.settings["SKIN"] or DEFAULT_SKIN)
        in_use = current if any(name == current for name, _ in skins) else DEFAULT_SKIN
        return c.render(request, session, "skins.html", skins=skins, current=current,
                        in_use=in_use, flash=flash(request))

    @app.route("/preview/<name>", methods=["GET"])
    @page()
    async def preview(self, request, session, name):
        found = preview_of(self.root, name)
        if found is None:
            raise Refused(404, "This skin has no preview image.")
        file_name, ctype = found
        data = await self.console.run(_read, os.path.join(self.root, file_name))
        request.setHeader(b"Content-Type", ctype)
        request.setHeader(b"Cache-Control", b"private, max-age=300")
        return data

    @app.route("/choose", methods=["POST"])
    @page("POST")
    async def choose(self, request, session):
        c = self.console
        name = form(request).get("skin", "").strip()
        ok = await c.run(is_user_skin, self.root, name)
        if not ok:
            raise Refused(400, "There is no such webmail skin.")
        await c.op(request, session, ops.config_set, "SKIN", name)
        raise Redirect("/admin/skins/?done=saved")


def _read(path):
    with open(path, "rb") as f:
        return f.read()
