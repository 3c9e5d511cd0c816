# -*- test-case-name: tests.test_web_admin -*-
"""
What every page of the /admin console shares: the services, the session
store, the login guard, the templates, running blocking operations in a
thread, the CSRF check, and the one place where errors become pages.

Sessions and CSRF are a small explicit implementation rather than Klein's
C{Requirer}/C{SessionProcurer}: Klein ships only a memory session store,
its CSRF token is the session id itself (shown in every form), and its
cookie has no SameSite attribute.  Here the cookie token and the CSRF token
are two random values, sessions live in data/sessions/ (L{zwms.store.
websessions}), and the cookie is HttpOnly, SameSite=Strict and Secure on TLS.

Before login there is no session: the login form is protected by a
double-submit token (a SameSite=Strict cookie whose value the form repeats).
"""

import functools
import hmac
import secrets
from urllib.parse import quote

from twisted.python import log

from zwms import i18n
from zwms import logs as logchannels
from zwms.admin import midadmin, ops
from zwms.admin.consoleops import FormErrors
from zwms.errors import InvalidValue, NoSuchAccount, NoSuchAlias, ZWMSError
from zwms.store.websessions import SessionStore
from zwms.web.guard import LoginGuard
from zwms.web.templates import PageResponses, Templates

SESSION_COOKIE = b"zwms_admin"
#: What a middle administrator sees on a page of the root administrator.
MIDADMIN_REFUSED = i18n.N_("This page is for the administrator only.")
LOGIN_COOKIE = b"zwms_login"
LANG_COOKIE = b"zwms_lang"
CSRF_FIELD = "csrf"
#: Largest form value accepted (bytes); the notice and spam list fit.
MAX_FIELD = 256 * 1024


class Refused(Exception):
    """A request refused with an HTTP status and a message for the page."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


class Redirect(Exception):
    """Answer with a 303 to C{url} (raised from deep inside a page)."""

    def __init__(self, url):
        Exception.__init__(self, url)
        self.url = url


def thread_runner(reactor):
    """Run a blocking callable in the reactor's thread pool (a Deferred)."""
    from twisted.internet.threads import deferToThreadPool

    def run(f, *args, **kwargs):
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args, **kwargs)
    return run


def form(request):
    """
    The request's form fields as {name: text} (first value), decoded as
    UTF-8.  @raise Refused: 400 on bytes that are not UTF-8 or too long.
    """
    out = {}
    for name, values in (request.args or {}).items():
        try:
            key = name.decode("utf-8")
            out[key] = values[0].decode("utf-8") if values else ""
        except UnicodeDecodeError:
            raise Refused(400, "the form was not sent as UTF-8")
        if len(values[0] if values else b"") > MAX_FIELD:
            raise Refused(400, "a form field is too long")
    return out


def form_list(request, name):
    """Every value of one field (checkboxes), decoded."""
    try:
        return [v.decode("utf-8") for v in (request.args or {}).get(name.encode(), [])]
    except UnicodeDecodeError:
        raise Refused(400, "the form was not sent as UTF-8")


def client_ip(request):
    """The peer address (no proxy headers are trusted)."""
    peer = request.getClientAddress()
    return getattr(peer, "host", None) or "unknown"


class FormGuard:
    """
    Cookies and CSRF shared by the console and the webmail: HttpOnly,
    SameSite=Strict cookies (Secure over TLS), a double-submit token before
    login, the session's token after.
    """

    def set_cookie(self, request, name, value, max_age=None, path=b"/"):
        request.addCookie(name, value, path=path, httpOnly=True, sameSite="strict",
                          secure=request.isSecure(),
                          max_age=None if max_age is None else str(max_age))

    def login_token(self, request):
        """The pre-login double-submit token (set as a cookie when missing)."""
        token = request.getCookie(LOGIN_COOKIE)
        if token and 20 <= len(token) <= 100:
            return token.decode("ascii", "replace")
        value = secrets.token_urlsafe(24)
        self.set_cookie(request, LOGIN_COOKIE, value.encode("ascii"))
        return value

    def check_csrf(self, request, session, values=None):
        """
        Every POST carries the CSRF field: the session's token, or before
        login the login cookie's.  @raise Refused: 403.
        """
        sent = (values if values is not None else form(request)).get(CSRF_FIELD, "")
        if session is not None:
            expected = session.csrf
        else:
            cookie = request.getCookie(LOGIN_COOKIE)
            expected = cookie.decode("ascii", "replace") if cookie else ""
        if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Refused(403, "This form has expired or was not sent by this site. "
                               "Reload the page and try again.")


class Console(PageResponses, FormGuard):
    """
    The shared state of the console apps.

    @param services: the L{zwms.services.Services}.
    @param reactor: for threads and mail delivery from operations.
    @param run: C{run(f, *args) -> Deferred}, how blocking operations run
        (a thread pool; tests may run them inline).
    """

    def __init__(self, services, reactor, run=None, skins=None):
        self.services = services
        self.reactor = reactor
        self.run = run or thread_runner(reactor)
        now = services.clock.seconds
        self.now = now
        self.sessions = SessionStore(services.home.path("data", "sessions"), now=now)
        self.guard = LoginGuard(now)
        self.templates = Templates(skins)
        self.started = now()

    # -- operations --------------------------------------------------------

    def context(self, request, session):
        """An AdminContext acting as the logged-in admin, from the client IP."""
        role = "midadmin" if session is not None and session.role == midadmin.ROLE else "admin"
        actor = "%s %s" % (role, session.login if session else "-")
        return ops.context_from_services(self.services, self.reactor, actor,
                                         peer=client_ip(request))

    def op(self, request, session, f, *args, **kwargs):
        """Run C{f(ctx, *args)} in a thread; a Deferred of its result."""
        ctx = self.context(request, session)
        return self.run(f, ctx, *args, **kwargs)

    # -- sessions ------------------------------------------------------------

    async def session(self, request):
        """The live session of the request's cookie, or None (touched)."""
        token = request.getCookie(SESSION_COOKIE)
        if not token:
            return None
        session = self.sessions.get(token.decode("ascii", "replace"))
        if session is None:
            return None
        if self.sessions.touch(session):
            await self.run(self.sessions.save, session)
        return session

    # -- language and pages --------------------------------------------------

    def language(self, request, session):
        """The session's language, else the cookie's, else Korean."""
        if session is not None and session.data.get("lang"):
            return i18n.choose(session.data["lang"])
        cookie = request.getCookie(LANG_COOKIE)
        return i18n.choose(cookie.decode("ascii", "replace") if cookie else "")

    def translate(self, request, session, text):
        """C{text} in the page's language (a msgid of the catalogs, else as is)."""
        return i18n.translations(self.language(request, session)).gettext(str(text))

    def render(self, request, session, name, **values):
        """A page of the admin skin, in the session's language."""
        lang = self.language(request, session)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        values.setdefault("flash", "")
        values.setdefault("errors", {})
        return self.templates.render(
            name, lang, session=session,
            csrf=session.csrf if session else self.login_token(request),
            default_password=ops.admin_password_is_default(self.services.home),
            languages=[(code, i18n.LANGUAGE_NAMES[code]) for code in i18n.LANGUAGES],
            lang=lang, path=request.path.decode("utf-8", "replace"), **values)



def quote_id(text):
    """An ID or address in a URL path."""
    return quote(str(text), safe="@")


def upload_csrf(request):
    """The CSRF field of a multipart upload (the file fields are bytes, not text)."""
    values = (request.args or {}).get(CSRF_FIELD.encode(), [b""])
    return {CSRF_FIELD: values[0].decode("ascii", "replace") if values else ""}


def page(method="GET", midadmin_ok=False, upload=False):
    """
    Decorate a console route: resolve the session, require a login, check
    the CSRF token on POST, and map every error to a page — the one place
    where exceptions become answers (never a traceback to the client).

    Middle administrators (session role L{midadmin.ROLE}, SPEC A7) reach
    only the routes marked C{midadmin_ok}; every other page answers 403.
    Their scope is read from their account at each request and set as
    C{session.scope} (None for the root administrator).  An C{upload}
    route (multipart) has only its CSRF field decoded here.

    The route is called as C{await f(self, request, session, **kwargs)}.
    """
    def decorate(f):
        @functools.wraps(f)
        async def route(self, request, **kwargs):
            console = self.console
            session = None
            try:
                session = await console.session(request)
                if session is None:
                    if method == "POST":
                        raise Refused(403, "Your session has expired. Log in again.")
                    return console.redirect(request, "/admin/login")
                session.scope = None
                if session.role == midadmin.ROLE:
                    if not midadmin_ok:
                        raise Refused(403, MIDADMIN_REFUSED)
                    session.scope = midadmin.scope_of(console.services.accounts,
                                                      session.login)
                elif session.role != "root":
                    raise Refused(403, MIDADMIN_REFUSED)
                if method == "POST":
                    console.check_csrf(request, session,
                                       upload_csrf(request) if upload else None)
                return await f(self, request, session, **kwargs)
            except Redirect as r:
                return console.redirect(request, r.url)
            except Refused as e:
                return console.error_page(request, session, e.status,
                                          console.translate(request, session, e.message))
            except midadmin.OutOfScope as e:
                return console.error_page(request, session, 403,
                                          console.translate(request, session, str(e)))
            except (NoSuchAccount, NoSuchAlias) as e:
                return console.error_page(request, session, 404, str(e))
            except (FormErrors, InvalidValue, ops.OperationFailed, ZWMSError) as e:
                return console.error_page(request, session, 400, str(e))
            except Exception:
                log.err(None, "admin console page %s" % (request.path,))
                console.services.logs.write(
                    logchannels.SYSTEMERROR, "Admin console error on %s (see the server log)"
                    % request.path.decode("ascii", "replace"), client_ip(request))
                return console.error_page(request, session, 500,
                                          "The server could not do this. The error was logged.")
        route.console_method = method
        return route
    return decorate


def query_args(request):
    """The query string's fields as {name: text} (undecodable bytes replaced)."""
    return {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace")
            for k, v in (request.args or {}).items() if v}


def to_int(text, default):
    try:
        return max(1, int(str(text)))
    except (TypeError, ValueError):
        return default


def flash(request):
    """The done=… note of a redirect after a form (a fixed word, never echoed text)."""
    done = query_args(request).get("done", "")
    return done if done in ("saved", "created", "deleted", "logs", "backup", "zip", "zipmid",
                            "import", "bulk") else ""
