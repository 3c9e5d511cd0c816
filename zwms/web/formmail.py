# -*- test-case-name: tests.test_formmail -*-
"""
/formmail: the anonymous form mail to the administrator (SPEC W5, seed §20).

  /formmail, /formmail/       the form (the user skin's guest frame,
                              commonhead_guest.html / commontail.html)
  /formmail/?form=NAME        a custom form page: the skin's formmail_NAME.html
  /formmail/send?upfn=ID      POST (urlencoded, or multipart/form-data with
                              files): the mail goes out, then 303 to
  /formmail/thanks            the thank-you page

The page: the skin's C{guest_mailwrite.html} when it has one (the name of
the original product's skin), else C{formmail.html}; C{?form=NAME} picks
C{formmail_NAME.html} (NAME: a-z, 0-9, "_", "-"), so that several forms
can live side by side.  Every page gets C{csrf}, C{upfn}, C{max_kb} and
C{action} (the send URL with its upfn); a custom page must post C{csrf}.

The fields: C{name}, C{email}, C{subject}, C{message}; every field whose
name starts with "_" (seed §20: C{<input name='_age'>}) is listed in the
body as "age: value"; every file field (File1, File2, ...) becomes an
attachment.  C{MaxMailSize} (a hidden field, KB) limits the attachments
together, never above the server's own MAXMAILSIZE (zwms.cfg, KB; 0
counts as 10240 here: an anonymous form keeps a limit); the whole message
must fit MAXMAILSIZE too; a form over either gets a 413 page saying the
limit.  Attachments are read from the body (a temp file once large) in a
worker thread, and the reading stops at the limit.

C{upfn} (seed §20: C{action='...?upfn=$GetUpFn();'}): in the original it
named the upload of one form submission.  Here the page makes a fresh one
for each form shown, and it names that submission: a second POST with the
same upfn from the same address within the rate window (a double click, a
reload of the POST) is answered with the thank-you page without sending
again.  It must be 8 to 64 letters, digits, "_" or "-"; a form without it
is accepted (each POST is then a new submission).

Safety:
  - CSRF: a double-submit token (the login form's cookie, L{FormGuard});
    in a multipart body the token must come before the first file.
  - Rate limit: at most L{SENDS_PER_WINDOW} mails per client IP per
    L{WINDOW} seconds; more get a 429 page with Retry-After.
  - The mail goes from our own address: the envelope sender and From are
    the administrator's address; the visitor's e-mail goes into Reply-To
    only when it is one plain address; header values lose CR, LF and NUL
    (they cannot start a header), and the EmailMessage policy refuses any
    that remain.
  - Delivery goes through the routing service (services.router: local
    copy or the outbound queue), as the webmail's compose does.

The administrator's address: env.cfg ADMINID (an account ID, or an
address) — the account's own address, else ADMINID@DOMAIN; without
ADMINID, postmaster@DOMAIN, else the /admin login (root) @DOMAIN, the first
one the directory knows.
"""

import collections
import email.utils
import hmac
import re
import secrets

from klein import Klein
from twisted.python import log

from zwms import i18n
from zwms import logs as logchannels
from zwms.account import check_id, is_address
from zwms.admin import ops
from zwms.errors import InvalidValue, ZWMSError
from zwms.mime import compose as mimecompose
from zwms.routing import lists as mlists
from zwms.web.console import (CSRF_FIELD, LANG_COOKIE, LOGIN_COOKIE, FormGuard, Redirect,
                              Refused, client_ip, form, query_args, thread_runner)
from zwms.web.multipart import is_multipart, iter_parts
from zwms.web.templates import PageResponses
from zwms.web.userskin import UserSkinTemplates

#: Mails one IP may send per window.
SENDS_PER_WINDOW = 5
WINDOW = 10 * 60
#: Field limits (characters of text, count of extra fields).
MAX_NAME, MAX_SUBJECT, MAX_MESSAGE = 100, 200, 64 * 1024
MAX_EXTRA_FIELDS, MAX_EXTRA_VALUE = 50, 4096
#: Most characters of all text fields of one multipart form together.
MAX_TEXT_BYTES = 1024 * 1024
#: The default MaxMailSize of the built-in form (KB).
DEFAULT_MAX_KB = 10240
UPFN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")
FORM_RE = re.compile(r"^[a-z0-9_-]{1,40}\Z")
EXTRA_RE = re.compile(r"^_[A-Za-z0-9_-]{1,63}\Z")
#: IPs remembered at most (the limiter's memory is bounded).
MAX_TRACKED = 100000

TOO_LARGE = i18n.N_("The attachments are too large: at most %(kb)s KB together.")
TOO_MANY = i18n.N_("Too many messages from your address. Try again in %(minutes)s minutes.")


class TooLarge(Exception):
    """The attachments pass the limit (KB)."""

    def __init__(self, kb):
        Exception.__init__(self, kb)
        self.kb = kb


class FormProblem(Exception):
    """A field the visitor must fix: shown above the kept form."""


def clean(text, limit):
    """A header-safe one-line value: CR, LF, NUL and other controls become spaces."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", str(text or "")).strip()[:limit]


def visitor_address(text):
    """
    The visitor's e-mail, "" when none.
    @raise FormProblem: anything but one plain address (no CR/LF, no list).
    """
    text = str(text or "").strip()
    if not text:
        return ""
    if any(c in text for c in "\r\n\x00 \t,;<>\"") or not is_address(text):
        raise FormProblem("Enter a valid e-mail address, or leave it empty.")
    return text


class RateLimiter:
    """At most C{limit} events per key in any C{window} seconds (memory only)."""

    def __init__(self, now, limit=SENDS_PER_WINDOW, window=WINDOW):
        self.now, self.limit, self.window = now, limit, window
        self._events = {}

    def _recent(self, key):
        cutoff = self.now() - self.window
        times = [t for t in self._events.get(key, ()) if t > cutoff]
        if times:
            self._events[key] = times
        else:
            self._events.pop(key, None)
        return times

    def retry_after(self, key):
        """0 when allowed now, else seconds until the next event is allowed."""
        times = self._recent(key)
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window - self.now()) + 1)

    def record(self, key):
        if len(self._events) > MAX_TRACKED:
            self._events.clear()
        self._events.setdefault(key, []).append(self.now())


def read_form(body, content_type, max_bytes, token):
    """
    The fields and files of a multipart form (blocking: a worker thread).

    @param max_bytes: most bytes of all files together.
    @param token: the expected CSRF value; a file before it is refused.
    @return: (fields {name: text}, files [(name, type, bytes)]).
    @raise TooLarge, Refused, InvalidValue.
    """
    body.seek(0)
    fields, files, total, text_bytes = {}, [], 0, 0
    for part in iter_parts(body, content_type):
        if part.filename is None:
            limit = MAX_MESSAGE * 4 if part.name == "message" else MAX_EXTRA_VALUE * 4
            value = part.text(limit)
            text_bytes += len(value)
            if text_bytes > MAX_TEXT_BYTES:
                raise InvalidValue("the form has too much text")
            fields.setdefault(part.name, value)
            continue
        sent = fields.get(CSRF_FIELD, "")
        if not sent or not token or not hmac.compare_digest(sent.encode(), token.encode()):
            raise Refused(403, "This form has expired or was not sent by this site. "
                               "Reload the page and try again.")
        if "MaxMailSize" in fields:
            max_bytes = min(max_bytes, _kb(fields["MaxMailSize"], max_bytes // 1024) * 1024)
        chunks = []
        for chunk in part.chunks():
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(max_bytes // 1024)
            chunks.append(chunk)
        data = b"".join(chunks)
        if part.filename or data:
            name = clean(part.filename.replace("\\", "/").rsplit("/", 1)[-1], 200)
            files.append((name or "attachment", part.content_type, data))
    return fields, files


def _kb(text, default):
    try:
        value = int(str(text).strip())
    except ValueError:
        return default
    return value if value > 0 else default


def guarded(f):
    """Map every error of a route to a page (never a traceback)."""
    async def route(self, request, **kwargs):
        try:
            return await f(self, request, **kwargs)
        except Redirect as r:
            return self.redirect(request, r.url)
        except Refused as e:
            return self._error(request, e.status, e.message)
        except (InvalidValue, ZWMSError) as e:
            return self._error(request, 400, str(e))
        except Exception:
            log.err(None, "form mail %s" % (request.path,))
            self.services.logs.write(logchannels.SYSTEMERROR,
                                     "Form mail error on %s (see the server log)"
                                     % request.path.decode("ascii", "replace"),
                                     client_ip(request))
            return self._error(request, 500,
                               "The server could not do this. The error was logged.")
    route.__name__ = f.__name__
    route.__doc__ = f.__doc__
    return route


class FormMailApp(PageResponses, FormGuard):
    """The anonymous form mail, at /formmail."""

    app = Klein()

    def __init__(self, services, reactor, run=None, skins=None):
        self.services = services
        self.reactor = reactor
        self.run = run or thread_runner(reactor)
        self.skins = skins
        # The webmail's chosen skin (env.cfg SKIN), file by file over the default.
        self.templates = UserSkinTemplates(skins, services)
        self.limiter = RateLimiter(services.clock.seconds)
        #: (ip, upfn) -> time of a recent send: a repeat is not sent again.
        self.recent = collections.OrderedDict()

    # -- pages ------------------------------------------------------------------

    def language(self, request):
        cookie = request.getCookie(LANG_COOKIE)
        return i18n.choose(cookie.decode("ascii", "replace") if cookie else "")

    def render(self, request, session, template, **values):
        """A guest page of the user skin (C{session} is always None here)."""
        lang = self.language(request)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return self.templates.render(
            template, lang, session=None, lang=lang, csrf=self.login_token(request),
            domain=self.services.settings["DOMAIN"], **values)

    def server_max_kb(self):
        return int(self.services.settings["MAXMAILSIZE"]) or DEFAULT_MAX_KB

    def form_template(self, name):
        """The page of C{?form=NAME}, else guest_mailwrite.html, else formmail.html."""
        # has(): the chosen skin's file, or the default skin's.
        if name:
            if not FORM_RE.match(name):
                raise Refused(404, "No such form.")
            custom = "formmail_%s.html" % name
            if name in ("thanks", "error") or not self.templates.has(custom):
                raise Refused(404, "No such form.")
            return custom
        if self.templates.has("guest_mailwrite.html"):
            return "guest_mailwrite.html"
        return "formmail.html"

    def _form(self, request, values=None, error="", status=200, template=None, **extra):
        request.setResponseCode(status)
        upfn = secrets.token_urlsafe(12)
        form_name = (values or {}).get("_form_page", "")
        max_kb = min(DEFAULT_MAX_KB, self.server_max_kb())
        return self.render(request, None, template or self.form_template(""),
                           values=values or {}, error=error, upfn=upfn, max_kb=max_kb,
                           action="/formmail/send?upfn=%s%s" % (
                               upfn, "&form=" + form_name if form_name else ""),
                           **extra)

    def translate(self, request, text, **params):
        """C{text} (a msgid) in the page's language, with its %(name)s values."""
        text = i18n.translations(self.language(request)).gettext(str(text))
        return text % params if params else text

    def _error(self, request, status, message, **params):
        # Translated here and shown escaped: a message never becomes markup.
        request.setResponseCode(status)
        return self.render(request, None, "formmail_error.html", status=status,
                           message=self.translate(request, message, **params))

    @app.route("/", methods=["GET"])
    @guarded
    async def show(self, request):
        name = query_args(request).get("form", "")
        return self._form(request, {"_form_page": name}, template=self.form_template(name))

    @app.route("/thanks", methods=["GET"])
    @guarded
    async def thanks(self, request):
        return self.render(request, None, "formmail_thanks.html")

    @app.route("/send", methods=["POST"])
    @guarded
    async def send(self, request):
        ip = client_ip(request)
        args = query_args(request)
        page = args.get("form", "")
        template = self.form_template(page)
        wait = self.limiter.retry_after(ip)
        if wait:
            request.setHeader(b"Retry-After", b"%d" % wait)
            self.services.logs.write(logchannels.WEBMAIL, "form mail refused (rate limit)", ip)
            return self._error(request, 429, TOO_MANY, minutes=(wait + 59) // 60)
        upfn = args.get("upfn", "")
        if upfn and not UPFN_RE.match(upfn):
            raise Refused(400, "The upload name (upfn) of this form is not valid.")
        cookie = request.getCookie(LOGIN_COOKIE)
        token = cookie.decode("ascii", "replace") if cookie else ""
        server_max = self.server_max_kb() * 1024
        if is_multipart(request):
            try:
                fields, files = await self.run(read_form, request.content,
                                               request.getHeader(b"content-type"),
                                               server_max, token)
            except TooLarge as e:
                return self._error(request, 413, TOO_LARGE, kb=e.kb)
        else:
            fields, files = form(request), []
        self.check_csrf(request, None, fields)
        sent_at = self.recent.get((ip, upfn)) if upfn else None
        if sent_at is not None and self.services.clock.seconds() - sent_at < WINDOW:
            raise Redirect("/formmail/thanks")
        fields["_form_page"] = page
        admin = await self._admin_target()
        try:
            data = self._message(request, admin.address, fields, files)
        except FormProblem as e:
            return self._form(request, _kept(fields), error=self.translate(request, str(e)),
                              status=400, template=template)
        if len(data) > server_max:
            return self._error(request, 413, TOO_LARGE, kb=server_max // 1024)
        # The envelope sender is our own (the administrator's) address.
        await self.services.router.route(admin.address, [admin], data,
                                         origin="formmail %s" % ip)
        self.limiter.record(ip)
        if upfn:
            self.recent[(ip, upfn)] = self.services.clock.seconds()
            while len(self.recent) > 10000:      # oldest first: bounded memory
                self.recent.popitem(last=False)
        self.services.logs.write(logchannels.WEBMAIL, "form mail sent to %s: %d bytes, "
                                 "%d attachment(s)" % (admin.address, len(data), len(files)), ip)
        raise Redirect("/formmail/thanks")

    # -- the message -------------------------------------------------------------

    async def _admin_target(self):
        """The router's L{Target} of the administrator's address."""
        settings = self.services.settings
        domain = settings["DOMAIN"]
        candidates = []
        admin_id = str(settings["ADMINID"] or "").strip()
        if admin_id:
            if "@" in admin_id:
                candidates.append(admin_id)
            else:
                try:
                    account = self.services.accounts.get(check_id(admin_id))
                except (InvalidValue, ZWMSError):
                    account = None
                if account is not None and account.address:
                    candidates.append(account.address)
                candidates.append("%s@%s" % (admin_id, domain))
        candidates.append("postmaster@%s" % domain)
        login = await self.run(ops.admin_login, self.services.home)
        candidates.append("%s@%s" % (login, domain))
        for address in candidates:
            if not is_address(address):
                continue
            try:
                target = await self.services.router.target(address, lists_allowed=False)
            except mlists.ListError:
                continue
            if target.remote and not self.services.router.can_send_out():
                continue
            return target
        raise Refused(503, "The form mail has no administrator address. Ask the "
                           "administrator to set ADMINID on the environment page.")

    def _message(self, request, admin, fields, files):
        """The message of a filled form to C{admin}.  @raise FormProblem."""
        name = clean(fields.get("name", ""), MAX_NAME)
        reply_to = visitor_address(fields.get("email", ""))
        subject = clean(fields.get("subject", ""), MAX_SUBJECT)
        message = str(fields.get("message", "")).replace("\r\n", "\n").replace("\x00", "")
        if not message.strip():
            raise FormProblem("Write a message.")
        if len(message) > MAX_MESSAGE:
            raise FormProblem("The message is too long.")
        extras = [(k[1:], str(v).replace("\r\n", "\n").replace("\x00", "")[:MAX_EXTRA_VALUE])
                  for k, v in fields.items() if k.startswith("_") and k != "_form_page"
                  and EXTRA_RE.match(k)][:MAX_EXTRA_FIELDS]
        ip = client_ip(request)
        domain = self.services.settings["DOMAIN"]
        lines = ["[Form mail from %s]" % ip,
                 "Name: %s" % (name or "-"),
                 "E-mail: %s" % (reply_to or "-")]
        # A value's own line breaks are indented, so it cannot pose as another field.
        lines.extend("%s: %s" % (k, v.replace("\n", "\n    ")) for k, v in extras)
        body = "\n".join(lines) + "\n\n" + message
        # From is our own address (the visitor's would fail SPF/DMARC); the
        # visitor's name is only its display name, the address only Reply-To.
        message = mimecompose.build(admin, "%s via form mail" % name if name else "form mail",
                                    [admin], [], "[Form mail] " + (subject or "(no subject)"),
                                    body, files, domain, now=self.services.clock.seconds())
        head = "Received: from formmail ([%s]) by %s (zWMS form mail);\r\n\t%s\r\n" % (
            ip, domain, email.utils.formatdate(self.services.clock.seconds()))
        if reply_to:
            head += "Reply-To: %s\r\n" % reply_to
        return head.encode("ascii") + message


def _kept(fields):
    """The fields shown again above a refusal (no files)."""
    return {k: v for k, v in fields.items() if k != CSRF_FIELD}

