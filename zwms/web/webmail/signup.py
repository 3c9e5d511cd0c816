# -*- test-case-name: tests.test_webmail_signup -*-
"""
Sign-up (SPEC W1; zwms.cfg NEWACC): the form at /mail/signup and its POST.
See L{zwms.web.webmail.app} for the rules; the account is made by
L{zwms.admin.ops.user_add} (the welcome message, the WebMail log line).
"""

from zwms.account import check_id
from zwms.errors import AccountExists, InvalidValue, LicenseOver
from zwms.web.console import Refused, client_ip, form

#: Shortest password a sign-up may choose (as the settings page).
MIN_PASSWORD = 6
MAX_NAME = 100


def _render(wm, request, status=200, errors=None, values=None, closed=False):
    request.setResponseCode(status)
    return wm.render(request, None, "signup.html", errors=errors or {},
                     values=values or {"id": "", "name": ""}, closed=closed)


def signup_form(wm, request):
    """GET /mail/signup: the form, or the page saying sign-up is off."""
    if not wm.services.settings["NEWACC"]:
        return _render(wm, request, 403, closed=True)
    return _render(wm, request)


def check_signup(values):
    """(id, password, name) of the form, checked; raise InvalidValue with a field."""
    errors = {}
    aid = values.get("id", "").strip().lower()
    try:
        aid = check_id(aid)
    except InvalidValue:
        errors["id"] = ("Use 1 to 64 lower-case letters, digits, dots, dashes or "
                        "underscores, starting with a letter or digit.")
    password, again = values.get("password", ""), values.get("password2", "")
    if len(password) < MIN_PASSWORD:
        errors["password"] = "Use at least 6 characters."
    elif password != again:
        errors["password2"] = "The two passwords differ."
    name = " ".join(values.get("name", "").split())
    if len(name) > MAX_NAME:
        errors["name"] = "The name is too long."
    return aid, password, name, errors


async def signup_post(wm, request):
    """POST /mail/signup: create the account, then off to the login page."""
    if not wm.services.settings["NEWACC"]:
        return _render(wm, request, 403, closed=True)
    try:
        values = form(request)
        wm.check_csrf(request, None, values)
    except Refused as e:
        return wm.error_page(request, None, e.status, e.message)
    keep = {"id": values.get("id", "")[:64], "name": values.get("name", "")[:MAX_NAME]}
    ip = client_ip(request)
    # Both of the guard's keys (ip:…, login:…) are made per IP here.
    key = "signup@" + ip
    if wm.signup_guard.locked(ip, key):
        wm.log("webmail sign-up refused (too many from this IP)", request)
        return _render(wm, request, 429, {"form": "Too many sign-ups from your address: "
                                                  "try again in an hour."}, keep)
    aid, password, name, errors = check_signup(values)
    if errors:
        return _render(wm, request, 400, errors, keep)
    # Each attempt that reaches the account store counts against the IP.
    wm.signup_guard.failed(ip, key)
    from zwms.admin import ops
    ctx = wm.user_context(request, "webmail sign-up")
    try:
        await wm.run(ops.user_add, ctx, aid, password, name or None)
    except AccountExists:
        return _render(wm, request, 409, {"id": "This ID is taken: choose another."}, keep)
    except LicenseOver:
        wm.log("webmail sign-up refused (MAXACCOUNTS): %s" % aid, request)
        return _render(wm, request, 403, {"form": "No more accounts can be made on this "
                                                  "server. Ask the administrator."}, keep)
    except InvalidValue as e:
        return _render(wm, request, 400, {"form": str(e)}, keep)
    wm.log("webmail sign-up: %s" % aid, request)
    return wm.redirect(request, "/mail/?done=signup")
