# -*- test-case-name: tests.test_siteapi -*-
"""
/zwms/site: site integration by signed links (SPEC W6, seed §35).

A company web site logs its members into the webmail, out of it, signs
them up, updates and removes them.  Every request is a link signed by the
site with the secret it shares with this server (env.cfg SITESECRET,
L{zwms.siteauth}): an account ID alone never does anything.

Routes (GET or POST; the fields are the query string or the form body):

  /zwms/site/login     start a real webmail session (the login of
                       L{zwms.web.webmail.state.Webmail.start_session}) and
                       go into the mailbox
  /zwms/site/logout    end every webmail session of the account
  /zwms/site/signup    create the account (L{zwms.admin.ops.user_add};
                       fields password, name, address); NEWACC does not
                       apply (it is for anonymous visitors), MAXACCOUNTS does
  /zwms/site/update    change name, password or address (L{ops.user_set})
  /zwms/site/remove    delete the account (L{ops.user_del}) and its sessions
  /zwms/site, /zwms/site/
                       the same, the action taken from the signed field
                       (routed by L{zwms.web.site.RootApp})
  /zwms/site/open      no link: the mailbox of this browser's webmail
                       session, else the login page (the site's "webmail"
                       link after a hidden-iframe login)

The path's action must be the signed one.  A password is accepted only in
a POST body, never in a URL (URLs end up in logs and in the site's page
source).  Each answer is a small page in the user's language, its status
code says what happened (200 done; 400 malformed; 403 bad signature,
expired, replayed, account locked; 404 feature off or no such account;
409 ID or address taken; 500 the server failed, logged) and the header C{X-ZWMS-Site-Result} names the
outcome in one word ("ok", or the reason of a refusal: off, malformed,
bad-signature, expired, too-long, replayed, password-in-url, no-account,
account-locked, exists, license, invalid, failed), for a site that calls from its
server.  Every refusal
writes a WebMail log line.  While SITESECRET is empty the feature is off:
404 with a page that says so.

The iframe flow of §35.  The site's pages may call these links from a
hidden C{<iframe>} (the one-line code at the end of each member page):

  - signup, update, remove and logout need no cookie and work from any
    site;
  - login from a hidden iframe sets the webmail's session cookie only when
    the site and the mail server are the same site for the browser (same
    registrable domain and scheme: www.company.co.kr and
    mail.company.co.kr): browsers refuse SameSite cookies set in a
    cross-site frame.  The site's "webmail" link is then /zwms/site/open,
    which goes to the mailbox of that session.  A login answered into a
    frame (Sec-Fetch-Dest: iframe, or next=stay) shows a small page and
    does not navigate.  From any other site, use the login link itself as
    the "webmail" link (top-level): it answers a page that moves on to the
    mailbox with a Refresh, not a redirect, because a redirect that
    continues a navigation started on another site does not carry the
    SameSite=Strict cookie, and the mailbox would ask for a login again.

So that the iframe flow can show its answer, the pages of this path (and
only they) allow framing by any site (C{frame-ancestors *}, no
X-Frame-Options): they carry no button or form that could be clickjacked.
The mailbox itself stays unframeable.
"""

import re
from urllib.parse import parse_qsl, urlsplit

from klein import Klein
from twisted.python import log

from zwms import logs as logchannels
from zwms.account import check_id
from zwms.errors import AccountExists, InvalidValue, LicenseOver, NoSuchAccount
from zwms.siteauth import ACTIONS, MALFORMED, OFF, SiteAuth, SiteAuthError
from zwms.web.console import Refused, client_ip, form
from zwms.web.webmail.signup import MAX_NAME, MIN_PASSWORD
from zwms.web.webmail.state import MAIL_COOKIE, NoSession

#: The CSP of the answers of this path: the site's one, framing allowed.
SITE_CSP = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors *")
#: Where a login goes (the signed C{next} field); "stay" shows the small page only.
NEXT = {"": "box/%s/folder/Inbox", "inbox": "box/%s/folder/Inbox",
        "compose": "compose/%s/new", "settings": "settings/%s/", "stay": None}
#: Status codes of the refusals of L{zwms.siteauth}.
STATUS = {OFF: 404, MALFORMED: 400}
#: Fields update may change, in the order applied.
UPDATABLE = ("name", "address", "password")


def _loggable(text):
    """An ID as it may appear in a log line (no control characters, short)."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "?", str(text or ""))[:64] or "-"


class SiteApp:
    """
    The site-integration endpoint, at /zwms/site.

    @param webmail: the L{zwms.web.webmail.state.Webmail} whose sessions a
        login starts.
    """

    app = Klein()

    def __init__(self, services, reactor, webmail, run=None):
        self.services = services
        self.reactor = reactor
        self.webmail = webmail
        self.run = run or webmail.run
        self.auth = SiteAuth(services.home, services.settings, clock=services.clock.seconds)

    # -- routes ------------------------------------------------------------------

    @app.route("/open", methods=["GET"])
    async def open_mailbox(self, request):
        """
        The site's "webmail" link after a hidden-iframe login: this browser's
        session (its cookie, with every check of the session) goes to its
        mailbox, whose random URL segment the site cannot know; anyone else
        to the login page.  It starts nothing: no link, no login.
        """
        wm = self.webmail
        cookie = request.getCookie(MAIL_COOKIE)
        found = wm.sessions.get(cookie.decode("ascii", "replace")) if cookie else None
        if found is not None and found.role == "user":
            try:
                session = await wm.session(request, wm.rand(found))
                return wm.redirect(request, "/mail/box/%s/folder/Inbox" % wm.rand(session))
            except NoSession as e:
                wm.log("webmail session refused: %s" % e, request)
        return wm.redirect(request, "/mail/")

    @app.route("/<action>", methods=["GET", "POST"])
    async def one_action(self, request, action):
        return await self.handle(request, action)

    async def handle(self, request, path_action):
        """Check the link, then do its action; every outcome is a page."""
        if path_action is not None and path_action not in ACTIONS:
            return self.answer(request, 404, "not-found")
        try:
            params = form(request)
        except Refused:
            return self.refuse(request, 400, MALFORMED, "not UTF-8", {})
        action = params.get("action", "").strip().lower()
        if path_action is not None and action != path_action:
            return self.refuse(request, 400, MALFORMED,
                               "the signed action is not the one of the path", params)
        query = dict(parse_qsl(urlsplit(request.uri.decode("ascii", "replace")).query))
        if "password" in query:
            return self.refuse(request, 400, "password-in-url", "a password in the URL", params)
        if action == "login" and params.get("next", "") not in NEXT:
            return self.refuse(request, 400, MALFORMED, "unknown next", params)
        try:
            link = await self.run(self.auth.verify, params)
        except SiteAuthError as e:
            return self.refuse(request, STATUS.get(e.reason, 403), e.reason, str(e), params)
        try:
            return await getattr(self, "do_" + link.action)(request, link)
        except NoSuchAccount:
            return self.refuse(request, 404, "no-account", "no such account", params)
        except AccountExists as e:
            return self.refuse(request, 409, "exists", str(e), params)
        except LicenseOver:
            return self.refuse(request, 403, "license", "MAXACCOUNTS reached", params)
        except InvalidValue as e:
            return self.refuse(request, 400, "invalid", str(e), params, detail=str(e))
        except Exception as e:
            # Never a traceback to the site: the page says it failed, the
            # logs say why.
            log.err(None, "site link %s" % (link.action,))
            self.services.logs.write(logchannels.SYSTEMERROR,
                                     "Site link %s for %s failed (see the server log)"
                                     % (link.action, link.account_id), client_ip(request))
            return self.refuse(request, 500, "failed", type(e).__name__, params)

    # -- the actions ---------------------------------------------------------------

    async def do_login(self, request, link):
        wm = self.webmail
        account = await self.run(self._account, link.account_id)
        if account.locked or not account.active:
            return self.refuse(request, 403, "account-locked", "account locked or inactive",
                               {"action": "login", "id": link.account_id})
        session = await wm.start_session(request, account)
        wm.log("webmail login (site link): %s" % account.id, request)
        target = NEXT[link.fields.get("next", "")]
        framed = (target is None or
                  (request.getHeader(b"sec-fetch-dest") or b"").lower() == b"iframe")
        url = "/mail/" + (target or NEXT[""]) % wm.rand(session)
        if not framed:
            # Not a 303: see the module docstring (SameSite=Strict after a
            # navigation another site started).
            request.setHeader(b"Refresh", ("0; url=%s" % url).encode("ascii"))
        return self.answer(request, 200, "login", url=url, refresh="" if framed else url)

    async def do_logout(self, request, link):
        wm = self.webmail
        ended = await self.run(wm.sessions.delete_login, link.account_id, "user")
        wm.latest.pop(link.account_id, None)
        if request.getCookie(MAIL_COOKIE):
            wm.set_cookie(request, MAIL_COOKIE, b"", max_age=0)
        wm.log("webmail logout (site link): %s, %d session(s) ended"
               % (link.account_id, ended), request)
        return self.answer(request, 200, "logout")

    async def do_signup(self, request, link):
        wm = self.webmail
        from zwms.admin import ops
        password = link.fields.get("password", "")
        name = " ".join(link.fields.get("name", "").split())
        self._check_values(password, name, need_password=True)
        ctx = wm.user_context(request, "site link")
        await self.run(ops.user_add, ctx, link.account_id, password, name or None,
                       link.fields.get("address", "").strip() or None)
        wm.log("webmail sign-up (site link): %s" % link.account_id, request)
        return self.answer(request, 200, "signup")

    async def do_update(self, request, link):
        wm = self.webmail
        from zwms.admin import ops
        changes = {k: link.fields[k] for k in UPDATABLE if k in link.fields}
        if "name" in changes:
            changes["name"] = " ".join(changes["name"].split())
        if not changes:
            raise InvalidValue("an update link names at least one of name, address, password")
        self._check_values(changes.get("password"), changes.get("name", ""),
                           need_password=False)
        await self.run(self._account, link.account_id)
        ctx = wm.user_context(request, "site link")
        for key in UPDATABLE:
            if key in changes:
                await self.run(ops.user_set, ctx, link.account_id, key, changes[key])
        wm.log("webmail update (site link): %s (%s)" % (link.account_id, ", ".join(
            k for k in UPDATABLE if k in changes)), request)
        return self.answer(request, 200, "update")

    async def do_remove(self, request, link):
        wm = self.webmail
        from zwms.admin import ops
        ctx = wm.user_context(request, "site link")
        await self.run(ops.user_del, ctx, link.account_id)
        ended = await self.run(wm.sessions.delete_login, link.account_id, "user")
        wm.latest.pop(link.account_id, None)
        wm.log("webmail remove (site link): %s, %d session(s) ended"
               % (link.account_id, ended), request)
        return self.answer(request, 200, "remove")

    # -- helpers -------------------------------------------------------------------

    def _account(self, account_id):
        """The account (blocking: a thread).  @raise NoSuchAccount."""
        account = self.services.accounts.get(check_id(account_id))
        if account is None:
            raise NoSuchAccount("no account %r" % (account_id,))
        return account

    @staticmethod
    def _check_values(password, name, need_password):
        if need_password or password is not None:
            if len(password or "") < MIN_PASSWORD:
                raise InvalidValue("the password needs at least %d characters" % MIN_PASSWORD)
        if len(name or "") > MAX_NAME:
            raise InvalidValue("the name is longer than %d characters" % MAX_NAME)

    def refuse(self, request, status, result, why, params, detail=""):
        """A refusal: its WebMail log line and its page."""
        self.webmail.log("site link refused (%s): %s %s: %s" % (
            result, _loggable(params.get("action")), _loggable(params.get("id")), why),
            request)
        return self.answer(request, status, result, detail=detail)

    def answer(self, request, status, result, url="", refresh="", detail=""):
        """The small page of an outcome, frameable by the site (module docstring)."""
        wm = self.webmail
        request.setResponseCode(status)
        request.setHeader(b"Content-Security-Policy", SITE_CSP)
        request.responseHeaders.removeHeader(b"X-Frame-Options")
        request.setHeader(b"X-ZWMS-Site-Result", b"ok" if status == 200 else result.encode("ascii"))
        return wm.render(request, None, "site.html", result=result, status=status,
                         url=url, refresh=refresh, detail=detail)
