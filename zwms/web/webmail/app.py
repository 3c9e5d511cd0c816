# -*- test-case-name: tests.test_webmail_session -*-
"""
/mail: the webmail login (SPEC W1, seed §18), sign-up (NEWACC) and the
user skin's files; the session pages are mounted below it (/mail/box,
/mail/folders, /mail/compose, /mail/filters, /mail/settings), each path
starting with the session's random segment.

The login page is the skin's per-host page when the Host header names one
(seed §19: Host mail.custom.co.kr → skins/wow_coolwind/mail.custom.co.kr.html,
rendered with the values of loginuser.html), else loginuser.html.

Sign-up (/mail/signup, SPEC W1): offered only while zwms.cfg NEWACC=1 (a
clear page says so otherwise); the form has the login form's CSRF token;
the ID and password are checked (the password twice, 6 characters at
least); at most SIGNUPS_PER_HOUR attempts per IP per hour; MAXACCOUNTS is
kept by the account store (LicenseOver); the account is made by
L{zwms.admin.ops.user_add}, which sends the welcome message.
"""


from klein import Klein

from zwms.admin import consoleops
from zwms.web.console import Refused, client_ip, form, query_args
from zwms.web.webmail.boards import BoardsApp
from zwms.web.webmail.bulk import BulkApp
from zwms.web.webmail.calendar_pages import CalendarApp
from zwms.web.webmail.compose import ComposeApp
from zwms.web.webmail.contacts import ContactsApp
from zwms.web.webmail.filters import FiltersApp
from zwms.web.webmail.folders import FoldersApp
from zwms.web.webmail.help import HelpApp
from zwms.web.webmail.mailbox import MailboxApp
from zwms.web.webmail.settings import SettingsApp
from zwms.web.webmail.signup import signup_form, signup_post
from zwms.web.webmail.state import NoSession, Webmail
from zwms.web.webmail.webfolder_pages import WebFolderApp
from zwms.web.templates import skin_file



class _Ctx:
    """The little an operation of L{consoleops} reads (the home)."""

    def __init__(self, home):
        self.home = home


class WebmailApp:
    """The webmail root, at /mail."""

    app = Klein()

    def __init__(self, services, reactor, run=None, skins=None):
        self.webmail = Webmail(services, reactor, run=run, skins=skins)
        self.mailbox = MailboxApp(self.webmail)
        self.compose = ComposeApp(self.webmail)
        self.settings = SettingsApp(self.webmail)
        self.folders = FoldersApp(self.webmail)
        self.filters = FiltersApp(self.webmail)
        self.contacts = ContactsApp(self.webmail)
        self.calendar = CalendarApp(self.webmail)
        self.webfolder = WebFolderApp(self.webmail)
        self.boards = BoardsApp(self.webmail)
        self.bulk = BulkApp(self.webmail)
        self.help = HelpApp(self.webmail)

    @app.route("/box", branch=True)
    def box_branch(self, request):
        return self.mailbox.app.resource()

    @app.route("/compose", branch=True)
    def compose_branch(self, request):
        return self.compose.app.resource()

    @app.route("/settings", branch=True)
    def settings_branch(self, request):
        return self.settings.app.resource()

    @app.route("/folders", branch=True)
    def folders_branch(self, request):
        return self.folders.app.resource()

    @app.route("/filters", branch=True)
    def filters_branch(self, request):
        return self.filters.app.resource()

    @app.route("/contacts", branch=True)
    def contacts_branch(self, request):
        return self.contacts.app.resource()

    @app.route("/calendar", branch=True)
    def calendar_branch(self, request):
        return self.calendar.app.resource()

    @app.route("/webfolder", branch=True)
    def webfolder_branch(self, request):
        return self.webfolder.app.resource()

    @app.route("/boards", branch=True)
    def boards_branch(self, request):
        return self.boards.app.resource()

    @app.route("/bulk", branch=True)
    def bulk_branch(self, request):
        return self.bulk.app.resource()

    @app.route("/help", branch=True)
    def help_branch(self, request):
        return self.help.app.resource()

    @app.route("/signup", methods=["GET"])
    def signup_form(self, request):
        return signup_form(self.webmail, request)

    @app.route("/signup", methods=["POST"])
    async def signup(self, request):
        return await signup_post(self.webmail, request)

    @app.route("/<any(css, images, js):folder>/<name>", methods=["GET", "HEAD"])
    def static(self, request, folder, name):
        """A file of the user skin's css/, images/ or js/ folder; nothing else."""
        return skin_file(request, self.webmail.templates.file_folder(folder, name), folder, name)

    # -- login (W1, §18) -------------------------------------------------------

    @app.route("/", methods=["GET"])
    async def login_form(self, request):
        wm = self.webmail
        try:
            session = await wm.session(request, "-")
            return wm.redirect(request, "/mail/box/%s/folder/Inbox" % wm.rand(session))
        except NoSession:
            pass
        args = query_args(request)
        message = "expired" if args.get("expired") == "1" else (
            "signed_up" if args.get("done") == "signup" else "")
        return wm.render(request, None, wm.login_template(request), login="",
                         message=message, newacc=bool(wm.services.settings["NEWACC"]))

    async def _account_of(self, login):
        """The account an ID or one of its addresses names, or None."""
        services = self.webmail.services
        if "@" in login:
            from twisted.internet import defer
            res = await defer.maybeDeferred(services.directory.resolve, login)
            if res.kind != "local" or len(res.accounts) != 1:
                return None
            login = res.accounts[0]
        try:
            from zwms.account import check_id
            return services.accounts.get(check_id(login))
        except Exception:
            return None

    @app.route("/login", methods=["POST"])
    async def login(self, request):
        wm = self.webmail
        try:
            values = form(request)
            wm.check_csrf(request, None, values)
        except Refused as e:
            return wm.error_page(request, None, e.status, e.message)
        login = values.get("login", "").strip()[:254]
        password = values.get("password", "")
        ip = client_ip(request)
        if wm.guard.locked(ip, login):
            request.setResponseCode(429)
            wm.log("webmail login refused (locked out): %s" % login, request)
            return wm.render(request, None, wm.login_template(request), login=login,
                             message="locked", newacc=bool(wm.services.settings["NEWACC"]))
        account = await self._account_of(login)
        good = False
        if account is not None and password:
            good = await wm.run(wm.services.accounts.check_password, account.id, password)
        if not good or account.locked or not account.active:
            wm.log("webmail login failed: %s" % login, request)
            for key in wm.guard.failed(ip, login):
                wm.log("webmail login locked for %d minutes after %d failures: %s"
                       % (wm.guard.lockout // 60, wm.guard.max_failures, key), request)
            request.setResponseCode(403)
            return wm.render(request, None, wm.login_template(request), login=login,
                             message="locked_account" if good else "failed",
                             newacc=bool(wm.services.settings["NEWACC"]))
        wm.guard.succeeded(ip, login)
        session = await wm.start_session(request, account)
        wm.log("webmail login: %s" % account.id, request)
        notice = await wm.run(consoleops.notice_get, _Ctx(wm.services.home))
        where = "notice" if notice.strip() else "folder/Inbox"
        return wm.redirect(request, "/mail/box/%s/%s" % (wm.rand(session), where))
