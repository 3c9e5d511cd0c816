# -*- test-case-name: tests.test_webmail_session -*-
"""
What every webmail page shares: the services, the user session store, the
login guard, the user skin, the three session checks of seed §18, CSRF, and
the one place where errors become pages.

Sessions (SPEC W1, seed §18, §35) — what was chosen:
  - A session lives server-side (L{zwms.store.websessions}, folder
    data/mailsessions/) and expires after 30 idle minutes.
  - Cookie session (account field C{cookiesession}): the session key is in
    the C{zwms_mail} cookie (HttpOnly, SameSite=Strict, Secure on TLS).
  - Random session (C{randsession}, and env.cfg RANDSESSION on): a second
    random value sits in every URL path, C{/mail/box/RAND/...} (seed §35:
    "the random number after zwms in the webmail URL"); a request whose
    path carries another value is refused.  With the cookie session off the
    session key IS that random value (the URL is then the only secret).
    With both off the cookie is used anyway: an ID or an IP alone never
    logs anyone in (SPEC W6); the path then holds "-".
  - IP session (C{ipsession}): the login IP is kept; a request from another
    IP is refused, and a later login of the same account ends the earlier
    session ("the last login wins"; remembered in memory: after a restart
    the earlier session lives until it idles out or the user logs out).
  - The checks are read from the account at login.
  - CSRF: every form carries the session's own token (distinct from both
    secrets); the login form a double-submit cookie token, as /admin.
"""

import datetime
import functools
import hmac
import re

from twisted.python import log

from zwms import i18n
from zwms import logs as logchannels
from zwms.account import FOLDERS
from zwms.errors import InvalidValue, NoSuchMessage, ZWMSError
from zwms.store import userprefs
from zwms.store.rules import RulesStore
from zwms.store.websessions import SessionStore
from zwms.web.console import (LANG_COOKIE, FormGuard, Redirect, Refused, client_ip, form,
                              thread_runner)
from zwms.web.guard import LoginGuard
from zwms.web.templates import PageResponses
from zwms.web.userskin import DEFAULT_SKIN, UserSkinTemplates

MAIL_COOKIE = b"zwms_mail"
#: The default user skin (seed §19); env.cfg SKIN chooses the one in use.
USER_SKIN = DEFAULT_SKIN
#: The path segment when the random session is off.
NO_RAND = "-"
#: A Host header that may name a per-host login page (seed §19): a DNS
#: name with at least one dot, nothing else (no slash, no "..", no port).
HOST_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+"
                     r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
#: Sign-ups allowed from one IP per hour (issue 6).
SIGNUPS_PER_HOUR = 5


def host_page(request):
    """
    The per-host login template name of this request ("mail.custom.co.kr.html"
    for Host: mail.custom.co.kr[:port]), or None when the Host is not a
    plain DNS name.  Only the name is checked here; L{Webmail.login_template}
    uses it when the skin has that file.
    """
    host = (request.getHeader(b"host") or b"").decode("ascii", "replace").strip().lower()
    if host.startswith("["):
        return None
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    host = host.rstrip(".")
    if not HOST_RE.match(host) or ".." in host:
        return None
    return host + ".html"


class NoSession(Exception):
    """No usable session: the reason goes to the WebMail log, the user to login."""


class Webmail(PageResponses, FormGuard):
    """
    The shared state of the webmail apps.

    @param services: the L{zwms.services.Services}.
    @param run: C{run(f, *args) -> Deferred} for blocking work.
    """

    def __init__(self, services, reactor, run=None, skins=None):
        self.services = services
        self.reactor = reactor
        self.run = run or thread_runner(reactor)
        self.now = services.clock.seconds
        self.sessions = SessionStore(services.home.path("data", "mailsessions"), now=self.now)
        self.guard = LoginGuard(self.now)
        self.templates = UserSkinTemplates(skins, services)
        self.rules = getattr(services, "rules", None) or RulesStore(services.home)
        # Sign-ups counted per IP with the login guard's counter (read-only reuse).
        self.signup_guard = LoginGuard(self.now, max_failures=SIGNUPS_PER_HOUR,
                                       window=3600, lockout=3600)
        #: account -> token of its latest IP-bound login ("the last login wins").
        self.latest = {}

    def log(self, text, request):
        self.services.logs.write(logchannels.WEBMAIL, text, client_ip(request))

    # -- cookies and CSRF --------------------------------------------------------

    # -- the three session checks (seed §18) ---------------------------------------

    async def session(self, request, rand):
        """
        The session of this request, checked.  @raise NoSession: why not.
        """
        session, via_cookie = None, False
        cookie = request.getCookie(MAIL_COOKIE)
        if cookie:
            session = self.sessions.get(cookie.decode("ascii", "replace"))
            via_cookie = session is not None
        if session is None and rand != NO_RAND:
            session = self.sessions.get(rand)
        if session is None or session.role != "user":
            raise NoSession("no session")
        data = session.data
        if data.get("cookie") and not via_cookie:
            raise NoSession("cookie session missing")
        if data.get("rand") and not hmac.compare_digest(rand.encode(), data["rand"].encode()):
            raise NoSession("random session mismatch")
        if data.get("ip"):
            if client_ip(request) != data["ip"]:
                raise NoSession("IP session: another IP (%s)" % data["ip"])
            latest = self.latest.get(session.login)
            if latest is not None and latest != session.token:
                raise NoSession("IP session: logged in again elsewhere")
        if self.sessions.touch(session):
            await self.run(self.sessions.save, session)
        return session

    async def start_session(self, request, account):
        """Create the session of a good login; set its cookie.  @return: it."""
        rand_on = bool(account.randsession and self.services.settings["RANDSESSION"])
        cookie_on = bool(account.cookiesession or not rand_on)
        ip = client_ip(request)
        prefs = await self.run(userprefs.load, self.services.home, account.id)
        data = {"ip": ip if account.ipsession else "", "cookie": cookie_on,
                "lang": i18n.choose(prefs.get("lang") or self.language(request, None)),
                "tz": prefs.get("tz") or userprefs.DEFAULT_TZ}
        session = await self.run(self.sessions.create, account.id, "user", data)
        if rand_on:
            if cookie_on:
                import secrets
                session.data["rand"] = secrets.token_urlsafe(24)
            else:
                session.data["rand"] = session.token
            await self.run(self.sessions.save, session)
        if cookie_on:
            self.set_cookie(request, MAIL_COOKIE, session.token.encode("ascii"))
        if account.ipsession:
            earlier = self.latest.get(account.id)
            self.latest[account.id] = session.token
            if earlier is not None and earlier != session.token:
                await self.run(self.sessions.delete, earlier)
        return session

    async def end_session(self, request, session):
        await self.run(self.sessions.delete, session.token)
        if self.latest.get(session.login) == session.token:
            del self.latest[session.login]
        self.set_cookie(request, MAIL_COOKIE, b"", max_age=0)

    @staticmethod
    def rand(session):
        """The path segment of a session's pages (/mail/box/RAND/...)."""
        return session.data.get("rand") or NO_RAND

    # -- pages ------------------------------------------------------------------

    def language(self, request, session):
        if session is not None and session.data.get("lang"):
            return i18n.choose(session.data["lang"])
        cookie = request.getCookie(LANG_COOKIE)
        return i18n.choose(cookie.decode("ascii", "replace") if cookie else "")

    def login_template(self, request):
        """
        The login page: the skin's per-host page (seed §19,
        C{mail.custom.co.kr.html}) when the Host names one, else
        C{loginuser.html}.
        """
        name = host_page(request)
        if name and self.templates.has(name):
            return name
        return "loginuser.html"

    async def nav(self, session):
        """
        What the side bar of every session page needs: folder counts, own
        folders, and whether the account may use the bulk-send window (§21).
        """
        mail = self.services.mail
        counts = await self.run(mail.counts, session.login)
        folders = await self.run(mail.folders, session.login)
        try:
            account = self.services.accounts.get(session.login)
        except ZWMSError:
            account = None
        bulk = bool(getattr(account, "bulksend", False))
        return {"counts": counts, "user_folders": [f for f in folders if f not in FOLDERS],
                "bulk_allowed": bulk}

    def user_context(self, request, actor):
        """
        An admin-operations context acting for a webmail user or sign-up
        (L{zwms.admin.ops}).  Its C{deliver} blocks a worker thread until
        the store answers; in the reactor thread, or with no reactor
        running (the tests' inline runner), only a store that answers at
        once can be waited for.
        """
        from twisted.internet.threads import blockingCallFromThread
        from twisted.python.threadable import isInIOThread

        from zwms.admin import ops
        services, reactor = self.services, self.reactor

        def deliver(deliveries):
            if not isInIOThread() and getattr(reactor, "running", False):
                return blockingCallFromThread(reactor, services.mail.deliver, deliveries)
            results = []
            services.mail.deliver(deliveries).addBoth(results.append)
            if not results:
                raise ops.OperationFailed("the mail store did not answer at once")
            if hasattr(results[0], "raiseException"):
                results[0].raiseException()
            return results[0]

        return ops.AdminContext(home=services.home, settings=services.settings,
                                accounts=services.accounts, directory=services.directory,
                                mail=services.mail, logs=services.logs, deliver=deliver,
                                actor=actor, peer=client_ip(request) if request is not None else None)

    def render(self, request, session, template, **values):
        """A page of the user skin, in the session's language."""
        lang = self.language(request, session)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        values.setdefault("flash", "")
        values.setdefault("errors", {})
        values.setdefault("counts", {})
        values.setdefault("user_folders", [])
        return self.templates.render(
            template, lang, session=session, lang=lang,
            csrf=session.csrf if session else self.login_token(request),
            rand=self.rand(session) if session else NO_RAND,
            domain=self.services.settings["DOMAIN"],
            languages=[(code, i18n.LANGUAGE_NAMES[code]) for code in i18n.LANGUAGES],
            when=local_time(session.data.get("tz") if session else None),
            **values)



def local_time(tz_name):
    """
    C{when(value, fmt)} for the templates: a datetime (naive ones are UTC)
    or seconds, shown in the user's time zone (issue 6; Asia/Seoul by
    default).
    """
    tz = userprefs.tzinfo(tz_name or userprefs.DEFAULT_TZ)

    def when(value, fmt="%Y-%m-%d %H:%M"):
        if value is None or value == "":
            return ""
        if isinstance(value, (int, float)):
            value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        elif value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        try:
            return value.astimezone(tz).strftime(fmt)
        except (OverflowError, ValueError, OSError):
            return ""
    return when


async def upload_form(wm, request):
    """
    A multipart/form-data POST as (fields, files), parsed in a thread
    (Twisted's request.args lose the file names).
    """
    from zwms.mime.compose import parse_upload
    ctype = request.getHeader(b"content-type") or b""
    if not ctype.lower().startswith(b"multipart/form-data"):
        return form(request), []
    content = request.content

    def read_and_parse():
        # A large body sits in a temporary file: reading it is disk work too.
        content.seek(0)
        return parse_upload(content.read(), ctype)

    try:
        return await wm.run(read_and_parse)
    except InvalidValue as e:
        raise Refused(400, str(e))


def page(method="GET", upload=False):
    """
    Decorate a session route C{f(self, request, session, **kwargs)}: the
    three session checks, CSRF on POST (the form is passed as C{values},
    an upload's files as C{files}), and every error mapped to a page
    (never a traceback).
    """
    def decorate(f):
        @functools.wraps(f)
        async def route(self, request, rand, **kwargs):
            wm = self.webmail
            session = None
            try:
                try:
                    session = await wm.session(request, rand)
                except NoSession as e:
                    wm.log("webmail session refused: %s" % e, request)
                    if method == "POST":
                        raise Refused(403, "Your session has ended. Log in again.")
                    return wm.redirect(request, "/mail/?expired=1")
                if method == "POST":
                    if upload:
                        values, kwargs["files"] = await upload_form(wm, request)
                    else:
                        values = form(request)
                    wm.check_csrf(request, session, values)
                    kwargs["values"] = values
                return await f(self, request, session, **kwargs)
            except Redirect as r:
                return wm.redirect(request, r.url)
            except Refused as e:
                return wm.error_page(request, session, e.status, e.message)
            except NoSuchMessage:
                return wm.error_page(request, session, 404, "This message is gone.")
            except (InvalidValue, ZWMSError) as e:
                return wm.error_page(request, session, 400, str(e))
            except Exception:
                log.err(None, "webmail page %s" % (request.path,))
                wm.services.logs.write(logchannels.SYSTEMERROR,
                                       "Webmail error on %s (see the server log)"
                                       % request.path.decode("ascii", "replace"),
                                       client_ip(request))
                return wm.error_page(request, session, 500,
                                     "The server could not do this. The error was logged.")
        route.webmail_method = method
        return route
    return decorate
