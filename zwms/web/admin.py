# -*- test-case-name: tests.test_web_admin -*-
"""
The /admin console (SPEC A1-A3, seed §1-§3): login and logout, the
language choice, system info with the six logs, and the admin info page.
The user pages (L{zwms.web.users}) and the settings pages
(L{zwms.web.config_pages}) are Klein apps of their own, mounted here.

A middle administrator (SPEC A7, seed §24) logs in on the same form with
its own account ID and password: its session has the role
L{zwms.admin.midadmin.ROLE}, it lands on its user list, and every page not
marked for it answers 403 (L{zwms.web.console.page}).
"""


from klein import Klein

from zwms import i18n
from zwms import logs as logchannels
from zwms.admin import consoleops, midadmin, ops
from zwms.errors import InvalidValue
from zwms.web.console import (LANG_COOKIE, SESSION_COOKIE, Refused, client_ip, flash as _flash,
                              form, page, query_args as _query, to_int as _int)
from zwms.web.admin_boards import BoardsAdminApp
from zwms.web.admin_calendar import CalendarApp
from zwms.web.admin_files import FilesApp
from zwms.web.admin_groups import GroupsApp
from zwms.web.admin_midadmin import MidadminApp
from zwms.web.admin_skins import SkinsApp
from zwms.web.admin_system import SystemControlApp
from zwms.web.config_pages import ConfigApp
from zwms.web.users import UsersApp
from zwms.web.templates import skin_file

#: Log lines per page on the log viewer.
LOG_PERPAGE = 100


class AdminApp:
    """The console's root app, at /admin."""

    app = Klein()

    def __init__(self, console):
        self.console = console
        self.users = UsersApp(console)
        self.config = ConfigApp(console)
        self.control = SystemControlApp(console)
        self.groups = GroupsApp(console)
        self.files = FilesApp(console)
        self.calendar = CalendarApp(console)
        self.boards = BoardsAdminApp(console)
        self.skins = SkinsApp(console)
        self.midadmin = MidadminApp(console)
        # The menu shows the file viewer only while DFV=1 (seed §10, §11).
        for lang in i18n.LANGUAGES:
            console.templates.environment(lang).globals["dfv_on"] = \
                lambda: bool(console.services.settings["DFV"])

    # -- mounted apps and files ------------------------------------------------

    @app.route("/control", branch=True)
    def control_branch(self, request):
        return self.control.app.resource()

    @app.route("/groups", branch=True)
    def groups_branch(self, request):
        return self.groups.app.resource()

    @app.route("/groups/", methods=["GET"])
    def groups_page(self, request):
        return self.groups.groups(request)

    @app.route("/files", branch=True)
    def files_branch(self, request):
        return self.files.app.resource()

    @app.route("/files/", methods=["GET"])
    @page()
    async def files_page(self, request, session):
        return await self.files.files(request, session)

    @app.route("/calendar", branch=True)
    def calendar_branch(self, request):
        return self.calendar.app.resource()

    @app.route("/calendar/", methods=["GET"])
    @page()
    async def calendar_page(self, request, session):
        return await self.calendar.month(request, session)

    @app.route("/boards", branch=True)
    def boards_branch(self, request):
        return self.boards.app.resource()

    @app.route("/boards/", methods=["GET"])
    def boards_page(self, request):
        return self.boards.boards(request)

    @app.route("/skins", branch=True)
    def skins_branch(self, request):
        return self.skins.app.resource()

    @app.route("/skins/", methods=["GET"])
    def skins_page(self, request):
        return self.skins.skins(request)

    @app.route("/midadmin", branch=True)
    def midadmin_branch(self, request):
        return self.midadmin.app.resource()

    @app.route("/midadmin/", methods=["GET"])
    def midadmin_page(self, request):
        return self.midadmin.brand_page(request)

    @app.route("/product", methods=["GET"])
    @page()
    async def product(self, request, session):
        return await self.control.product(request, session)

    @app.route("/users", branch=True)
    def users_branch(self, request):
        return self.users.app.resource()

    @app.route("/config", branch=True)
    def config_branch(self, request):
        return self.config.app.resource()

    @app.route("/users/", methods=["GET"])
    def users_list(self, request):
        return self.users.user_list(request)

    @app.route("/<any(css, images):folder>/<name>", methods=["GET", "HEAD"])
    def static(self, request, folder, name):
        """A file of the skin's css/ or images/ folder; nothing else."""
        return skin_file(request, self.console.templates.folder, folder, name)

    # -- login (A1, §1) ------------------------------------------------------

    @staticmethod
    def home_page(session):
        """Where a session starts: system info, or a middle admin's user list."""
        if session is None:
            return "/admin/login"
        return "/admin/users/" if session.role == midadmin.ROLE else "/admin/system"

    @app.route("/", methods=["GET"])
    async def index(self, request):
        session = await self.console.session(request)
        return self.console.redirect(request, self.home_page(session))

    @app.route("/login", methods=["GET"])
    async def login_form(self, request):
        c = self.console
        session = await c.session(request)
        if session is not None:
            return c.redirect(request, self.home_page(session))
        return c.render(request, None, "login.html", login="", message="")

    @app.route("/login", methods=["POST"])
    async def login(self, request):
        c = self.console
        try:
            c.check_csrf(request, None)
            values = form(request)
        except Refused as e:
            return c.error_page(request, None, e.status, e.message)
        login = values.get("login", "").strip()[:100]
        password = values.get("password", "")
        ip = client_ip(request)
        if c.guard.locked(ip, login):
            request.setResponseCode(429)
            c.services.logs.write(logchannels.WEBMAIL,
                                  "admin login refused (locked out): %s" % login, ip)
            return c.render(request, None, "login.html", login=login, message="locked")
        good = await c.run(ops.check_admin_password, c.services.home, login, password)
        role, scope = "root", None
        if not good:
            # A middle administrator (SPEC A7, §24) logs in with its own ID.
            scope = await c.run(midadmin.check_login, c.services.accounts, login, password)
            if scope is not None:
                good, role, login = True, midadmin.ROLE, scope.login
        if not good:
            c.services.logs.write(logchannels.WEBMAIL, "admin login failed: %s" % login, ip)
            for key in c.guard.failed(ip, login):
                c.services.logs.write(logchannels.WEBMAIL, "admin login locked for %d minutes "
                                      "after %d failures: %s" % (c.guard.lockout // 60,
                                                                 c.guard.max_failures, key), ip)
            request.setResponseCode(403)
            return c.render(request, None, "login.html", login=login, message="failed")
        c.guard.succeeded(ip, login)
        lang = c.language(request, None)
        session = await c.run(c.sessions.create, login, role, {"lang": lang})
        c.set_cookie(request, SESSION_COOKIE, session.token.encode("ascii"))
        if scope is not None:
            c.services.logs.write(logchannels.WEBMAIL, "admin login: %s (middle admin of "
                                  "board group %d)" % (login, scope.group), ip)
            return c.redirect(request, "/admin/users/")
        c.services.logs.write(logchannels.WEBMAIL, "admin login: %s" % login, ip)
        try:
            # §25: the admin info and virtual addresses, at each login.
            await c.op(request, session, consoleops.backup_admin)
        except Exception as e:
            c.services.logs.write(logchannels.SYSTEMERROR,
                                  "admin login backup failed: %s" % (e,), ip)
        return c.redirect(request, "/admin/system")

    @app.route("/logout", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def logout(self, request, session):
        c = self.console
        await c.run(c.sessions.delete, session.token)
        c.set_cookie(request, SESSION_COOKIE, b"", max_age=0)
        c.services.logs.write(logchannels.WEBMAIL, "admin logout: %s" % session.login,
                              client_ip(request))
        return c.redirect(request, "/admin/login")

    @app.route("/lang", methods=["POST"])
    async def set_language(self, request):
        """The language chooser: a session setting, and a cookie for the login page."""
        c = self.console
        session = await c.session(request)
        try:
            c.check_csrf(request, session)
            values = form(request)
        except Refused as e:
            return c.error_page(request, session, e.status, e.message)
        lang = i18n.choose(values.get("lang"))
        c.set_cookie(request, LANG_COOKIE, lang.encode("ascii"), max_age=365 * 24 * 3600)
        if session is not None:
            session.data["lang"] = lang
            await c.run(c.sessions.save, session)
        back = values.get("back", "")
        if not back.startswith("/admin") or "//" in back or "\\" in back:
            back = "/admin/"
        return c.redirect(request, back)

    # -- system info (A2, §2) ------------------------------------------------

    @app.route("/system", methods=["GET"])
    @page()
    async def system(self, request, session):
        c = self.console
        facts = await c.op(request, session, consoleops.system_info)
        facts["uptime"] = int(c.now() - c.started)
        return c.render(request, session, "system.html", facts=facts,
                        channels=logchannels.CHANNELS, flash=_flash(request))

    @app.route("/logs/<channel>", methods=["GET"])
    @page()
    async def log_view(self, request, session, channel):
        c = self.console
        args = _query(request)
        query, date = args.get("q", "")[:200], args.get("date", "")[:10]
        errors = {}
        try:
            result = await c.op(request, session, consoleops.log_read, channel,
                                page=_int(args.get("page"), 1), perpage=LOG_PERPAGE,
                                query=query, date=date)
        except InvalidValue as e:
            if channel not in logchannels.CHANNELS:
                raise Refused(404, str(e))
            errors["date"] = str(e)
            result = await c.op(request, session, consoleops.log_read, channel,
                                perpage=LOG_PERPAGE, query=query)
        return c.render(request, session, "logs.html", log=result, query=query, date=date,
                        channels=logchannels.CHANNELS, errors=errors)

    @app.route("/logs/delete", methods=["POST"])
    @page("POST")
    async def log_delete(self, request, session):
        c = self.console
        await c.op(request, session, consoleops.log_delete)
        return c.redirect(request, "/admin/system?done=logs")

    # -- admin info (A3, §3) -------------------------------------------------

    @app.route("/admininfo", methods=["GET"])
    @page()
    async def admininfo(self, request, session):
        c = self.console
        return c.render(request, session, "admininfo.html",
                        login=ops.admin_login(c.services.home), flash=_flash(request))

    @app.route("/admininfo", methods=["POST"])
    @page("POST")
    async def admininfo_save(self, request, session):
        c = self.console
        values = form(request)
        login = values.get("login", "").strip()
        password, again = values.get("password", ""), values.get("password2", "")
        errors = {}
        if password != again:
            errors["password2"] = "The two passwords differ."
        else:
            try:
                await c.op(request, session, ops.admin_passwd, password, login)
            except InvalidValue as e:
                errors["password"] = str(e)
        if errors:
            request.setResponseCode(400)
            return c.render(request, session, "admininfo.html", login=login, errors=errors)
        session.login = login
        await c.run(c.sessions.save, session)
        return c.redirect(request, "/admin/admininfo?done=saved")

