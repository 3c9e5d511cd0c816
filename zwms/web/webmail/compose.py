# -*- test-case-name: tests.test_webmail_compose -*-
"""
/mail/compose/RAND/...: writing and sending (SPEC W2).

  new?mode=reply|replyall|forward&folder=F&name=NAME   the form (To/Cc/Bcc,
                      subject, plain text body with the signature,
                      attachments); reply-all copies the original's To and
                      Cc, less the user's own addresses
  new?mode=forward&as=attachment&folder=F&name=NAME   forward as attachment:
                      the original goes whole (its stored bytes) as a
                      message/rfc822 part named SUBJECT.eml (RFC 2231)
  new?mode=draft&name=NAME   a saved draft reopened (its attachments kept,
                      its HTML too)
  save               POST multipart/form-data: the form as a draft in
                      Drafts (Bcc kept there); the draft it was reopened
                      from is replaced
  send               POST multipart/form-data: build the message
                      (L{zwms.mime.compose}), check the submission rules
                      and limits, hand it to the routing service as the
                      logged-in account (relay rules, lists, queue), with a
                      copy in Sent

Plain text or simple HTML: the page has a plain textarea (it works
without JavaScript); js/compose.js adds a format switch and a small
editor (bold, italic, underline, list, link, quote) whose HTML it puts in
the hidden field html_body, with format=html, on submit.  The server
keeps only the compose allow-list of that HTML
(L{zwms.web.sanitize.clean_compose}) and sends multipart/alternative with
a text/plain part made from it (L{zwms.mime.htmltext}).  Replies and
forwards of an HTML mail start from its text (its text/plain part, else
its HTML as text): the user may switch to HTML from there.

The To, Cc and Bcc fields name the address book's completion endpoint
(data-complete, for js/complete.js of the address book); without that
script or endpoint they are plain fields.

The rules are those of an authenticated submission (seed §16, SPEC S6):
remote recipients need a relay grant (L{zwms.smtp.relay.RelayRules}); the
account's recipient limit, message size limit (and MAXMAILSIZE) and daily
count/size limits apply.  A refusal keeps the form filled and says why
in the user's language (the size refusal names the size and the limit).
Uploads are parsed in a thread (L{zwms.web.webmail.state.upload_form}),
the message is built in a thread: a large upload does not hold the
reactor.
"""

import email.utils

from klein import Klein
from twisted.internet import defer

from zwms import i18n
from zwms.account import Delivery
from zwms.errors import InvalidValue
from zwms.mime import compose as mimecompose
from zwms.mime import parse as mimeparse
from zwms.mime.htmltext import html_to_text
from zwms.routing import lists as mlists
from zwms.smtp.relay import RelayRules
from zwms.store import userprefs
from zwms.web.console import Redirect, client_ip, query_args
from zwms.web.sanitize import clean_compose
from zwms.web.webmail.mailbox import check_box, load
from zwms.web.webmail.state import page


#: The form's fields (what a refused form shows again).
FIELDS = ("to", "cc", "bcc", "subject", "body", "in_reply_to", "references", "fwd_folder",
          "fwd_name", "fwd_as", "draft", "format", "html_body")


class SendRefused(Exception):
    """
    The message cannot go: the reason is shown above the kept form, in
    the user's language (C{message} is a catalog msgid, C{values} its
    %(name)s values).
    """

    def __init__(self, message, **values):
        Exception.__init__(self, message % values if values else message)
        self.message = message
        self.values = values

    def text(self, gettext):
        """The reason, translated."""
        found = gettext(self.message)
        return found % self.values if self.values else found


def human_size(size):
    """A size for the size refusal: "900 KB" below a megabyte, else "12.5 MB"."""
    if size < 1024 * 1024:
        return "%d KB" % max(1, (size + 1023) // 1024)
    return "%.1f MB" % (size / (1024.0 * 1024))


def too_large(size, limit):
    """The refusal of a message over the limit, naming both."""
    return SendRefused("The message is too large: %(size)s, the limit is %(limit)s. "
                       "Remove or shrink attachments.", size=human_size(size),
                       limit=human_size(limit))


def addresses(text):
    """The addresses of a To/Cc/Bcc field.  @raise SendRefused: a bad one."""
    try:
        return mimecompose.address_list(text)
    except InvalidValue as e:
        if getattr(e, "address", None) is not None:
            raise SendRefused("Not an e-mail address: %(address)s", address=e.address)
        raise SendRefused("Too many recipients: at most %(count)d.",
                          count=mimecompose.MAX_RECIPIENTS)


def bodies(keep):
    """
    (text, html or None) of a submitted form: the editor's HTML cleaned
    and its text when the form says format=html, else the textarea.
    Blocking on large HTML: run it in a thread.
    """
    if keep.get("format") == "html" and str(keep.get("html_body") or "").strip():
        html = clean_compose(keep["html_body"])
        if html_to_text(html).strip():
            return html_to_text(html), html
        # Nothing left once cleaned (only script, say): the textarea's text.
    return keep.get("body", ""), None


def attachments_of(mail, account_id, folder, name):
    """[(file name, content type, bytes)] of a stored message's attachments (a thread)."""
    data, parsed = load(mail, account_id, folder, name)
    out = []
    for a in parsed.attachments:
        ctype, filename, body = mimeparse.part_of(data, a.index)
        out.append((filename, ctype, body))
    return out


def make_message(keep, sender, name, to, cc, attachments, domain, now, bcc=()):
    """The message bytes of a submitted form (blocking: a thread)."""
    text, html = bodies(keep)
    return mimecompose.build(sender, name, to, cc, keep["subject"], text, attachments, domain,
                             keep["in_reply_to"], keep["references"], now, bcc, html=html)


def _when(summary):
    return summary.date.strftime("%Y-%m-%d %H:%M") if summary.date else ""


def own_addresses(account, settings):
    """The addresses of an account (reply-all leaves them out)."""
    domains = [settings["DOMAIN"]] + str(settings["MULTIDOMAINS"] or "").replace(
        ",", " ").split()
    out = {"%s@%s" % (account.id, d.lower()) for d in domains if d}
    if account.address:
        out.add(account.address.lower())
    return out


def reopen_draft(data, parsed):
    """The form values of a saved draft."""
    s = parsed.summary
    return {"to": ", ".join(mimecompose.header_addresses(data, "To")),
            "cc": ", ".join(mimecompose.header_addresses(data, "Cc")),
            "bcc": ", ".join(mimecompose.header_addresses(data, "Bcc")),
            "subject": s.subject, "body": parsed.text or html_to_text(parsed.html),
            "in_reply_to": mimecompose.header_value(data, "In-Reply-To"),
            "references": mimecompose.header_value(data, "References"),
            "format": "html" if parsed.html else "plain",
            "html_body": clean_compose(parsed.html) if parsed.html else ""}


def draft_for(mode, data, parsed, signature):
    """
    The form values of a reply or forward of one message (mode "reply",
    "forward" or "attach": forward as attachment).  An HTML-only message
    is quoted as text.
    """
    s = parsed.summary
    body = parsed.text or html_to_text(parsed.html)
    sig = ("\n\n-- \n" + signature) if signature else ""
    if mode == "attach":
        return {"to": "", "cc": "", "subject": mimecompose.reply_subject(s.subject, "Fwd"),
                "body": sig, "in_reply_to": "", "references": "", "fwd_as": "attachment",
                "fwd_file": mimecompose.eml_filename(s.subject)}
    if mode == "forward":
        head = "\n".join("%s: %s" % kv for kv in (("From", s.sender_address and "%s <%s>" % (
            s.sender, s.sender_address) or s.sender), ("Date", _when(s)), ("Subject", s.subject),
            ("To", s.to)))
        return {"to": "", "cc": "", "subject": mimecompose.reply_subject(s.subject, "Fwd"),
                "body": sig + "\n\n---------- Forwarded message ----------\n" + head +
                "\n\n" + body, "in_reply_to": "", "references": ""}
    return {"to": mimecompose.sender_of(s), "cc": "",
            "subject": mimecompose.reply_subject(s.subject),
            "body": sig + mimecompose.quote(body, s.sender or s.sender_address, _when(s)),
            "in_reply_to": s.message_id, "references": s.references}


class ComposeApp:
    """Writing and sending, at /mail/compose."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    def _limit(self, account):
        """The most bytes one message of this account may have (0: no limit)."""
        limit = int(self.webmail.services.settings["MAXMAILSIZE"] or 0) * 1024
        sendsize = getattr(account, "sendsize", 0) or 0
        if sendsize and (not limit or sendsize < limit):
            limit = sendsize
        return limit

    def _form(self, request, session, values, error="", status=200):
        wm = self.webmail
        request.setResponseCode(status)
        if isinstance(error, SendRefused):
            error = error.text(i18n.translations(wm.language(request, session)).gettext)
        try:
            limit = self._limit(wm.services.accounts.get(session.login))
        except Exception:
            limit = int(wm.services.settings["MAXMAILSIZE"] or 0) * 1024
        values = dict(values)
        for key in FIELDS:
            values.setdefault(key, "")
        values["format"] = "html" if values["format"] == "html" else "plain"
        if values["html_body"]:
            # A refused form shows the HTML again: only what may be sent.
            values["html_body"] = clean_compose(values["html_body"])
        return wm.render(request, session, "compose.html", draft=values, error=error,
                         max_size=limit)

    @app.route("/<rand>/new", methods=["GET"])
    @page()
    async def new(self, request, session):
        wm = self.webmail
        args = query_args(request)
        prefs = await wm.run(userprefs.load, wm.services.home, session.login)
        mode = args.get("mode", "")
        values = {"to": args.get("to", "")[:1000], "cc": "", "bcc": "", "subject": "",
                  "body": ("\n\n-- \n" + prefs["signature"]) if prefs["signature"] else "",
                  "in_reply_to": "", "references": "", "fwd_folder": "", "fwd_name": "",
                  "draft": ""}
        if mode in ("reply", "replyall", "forward"):
            folder = await check_box(wm, session, args.get("folder", ""))
            name = args.get("name", "")
            data, parsed = await wm.run(load, wm.services.mail, session.login, folder, name)
            kind = {"replyall": "reply", "forward": "attach" if args.get("as") == "attachment"
                    else "forward"}.get(mode, mode)
            values.update(draft_for(kind, data, parsed, prefs["signature"]))
            if mode == "replyall":
                account = wm.services.accounts.get(session.login)
                skip = own_addresses(account, wm.services.settings) | {values["to"].lower()}
                values["cc"] = ", ".join(
                    a for a in mimecompose.header_addresses(data, "To", "Cc") if a not in skip)
            if mode == "forward":
                # The other way of forwarding is one link away.
                values.update(orig_folder=folder, orig_name=name)
                if kind == "attach" or parsed.attachments:
                    values.update(fwd_folder=folder, fwd_name=name)
        elif mode == "draft":
            name = args.get("name", "")
            data, parsed = await wm.run(load, wm.services.mail, session.login, "Drafts", name)
            values.update(reopen_draft(data, parsed), draft=name)
            if parsed.attachments:
                values.update(fwd_folder="Drafts", fwd_name=name)
        return self._form(request, session, values)

    def _kept(self, values):
        return {k: values.get(k, "") for k in FIELDS}

    async def _attachments(self, session, keep, files):
        """
        The uploaded files, then the original message (forward as
        attachment) or the attachments of the forwarded message or
        reopened draft.
        """
        wm = self.webmail
        attachments = [(name, ctype, data) for _field, name, ctype, data in files]
        if keep["fwd_folder"] and keep["fwd_name"]:
            folder = await check_box(wm, session, keep["fwd_folder"])
            if keep["fwd_as"] == "attachment":
                data = await wm.run(wm.services.mail.read, session.login, folder,
                                    keep["fwd_name"])
                subject = mimeparse.summary(data).subject
                attachments.append((mimecompose.eml_filename(subject), "message/rfc822", data))
                return attachments
            attachments += await wm.run(attachments_of, wm.services.mail, session.login,
                                        folder, keep["fwd_name"])
        return attachments

    async def _drop_draft(self, session, keep):
        """Remove the draft the form was reopened from (after a send or a new save)."""
        if keep["draft"]:
            await defer.maybeDeferred(self.webmail.services.mail.delete, session.login,
                                      "Drafts", [keep["draft"]])

    @app.route("/<rand>/save", methods=["POST"])
    @page("POST", upload=True)
    async def save(self, request, session, values, files):
        wm = self.webmail
        services = wm.services
        keep = self._kept(values)
        try:
            to, cc, bcc = [addresses(keep[k]) for k in ("to", "cc", "bcc")]
            account = services.accounts.get(session.login)
            domain = services.settings["DOMAIN"]
            sender = account.address or "%s@%s" % (account.id, domain)
            attachments = await self._attachments(session, keep, files)
            message = await wm.run(make_message, keep, sender, account.name, to, cc,
                                   attachments, domain, wm.now(), bcc)
            limit = int(services.settings["MAXMAILSIZE"] or 0) * 1024
            if limit and len(message) > limit:
                raise too_large(len(message), limit)
        except SendRefused as e:
            return self._form(request, session, keep, error=e, status=400)
        names = await defer.maybeDeferred(services.mail.deliver,
                                          [Delivery(account.id, message, "Drafts")])
        await self._drop_draft(session, keep)
        wm.log("webmail draft saved: %s %s" % (session.login, names[0]), request)
        raise Redirect("/mail/box/%s/folder/Drafts?done=saved" % wm.rand(session))

    @app.route("/<rand>/send", methods=["POST"])
    @page("POST", upload=True)
    async def send(self, request, session, values, files):
        wm = self.webmail
        keep = self._kept(values)
        try:
            result = await self._send(request, session, keep, files)
        except SendRefused as e:
            return self._form(request, session, keep, error=e, status=400)
        except (InvalidValue, mlists.ListError) as e:
            return self._form(request, session, keep, error=str(e), status=400)
        await self._drop_draft(session, keep)
        wm.log("webmail sent: %s to %d recipient(s), %d bytes, queued %d"
               % (session.login, result[0], result[1], result[2]), request)
        raise Redirect("/mail/box/%s/folder/Sent?done=sent" % wm.rand(session))

    async def _send(self, request, session, keep, files):
        wm = self.webmail
        services = wm.services
        account = services.accounts.get(session.login)
        if account is None or account.locked:
            raise SendRefused("This account may not send mail.")
        # (NAME) mailing lists (seed §21) may stand in To; the router resolves them.
        lists, to_text = mlists.split_lists(keep["to"])
        lists = ["(%s)" % n for n in dict.fromkeys(lists)]
        to, cc, bcc = addresses(to_text), addresses(keep["cc"]), addresses(keep["bcc"])
        rcpts = list(dict.fromkeys(a.lower() for a in to + cc + bcc)) + lists
        if not rcpts:
            raise SendRefused("Name at least one recipient.")
        if account.rcptlimit and len(rcpts) > account.rcptlimit:
            raise SendRefused("Too many recipients: this account may name %(count)d at most.",
                              count=account.rcptlimit)
        attachments = await self._attachments(session, keep, files)
        domain = services.settings["DOMAIN"]
        sender = account.address or "%s@%s" % (account.id, domain)
        message = await wm.run(make_message, keep, sender, account.name, to + lists, cc,
                               attachments, domain, wm.now())
        received = ("Received: from webmail ([%s]) by %s (zWMS webmail) for <%s>;\r\n\t%s\r\n"
                    % (client_ip(request), domain, session.login,
                       email.utils.formatdate(wm.now()))).encode("ascii", "replace")
        data = received + message
        limit = self._limit(account)
        if limit and len(data) > limit:
            raise too_large(len(data), limit)
        router = services.router
        if account.daycount or account.daysize:
            count, size = await router.threads(router.counter.get, account.id)
            if account.daycount and count >= account.daycount:
                raise SendRefused("The daily limit of messages of this account is reached.")
            if account.daysize and size + len(data) > account.daysize:
                raise SendRefused("The daily size limit of this account is reached.")
        targets = []
        for address in rcpts:
            targets.append(await router.target(address))
        leaves = any(t.remote or t.mailing for t in targets)
        if any(t.remote for t in targets):
            # As an authenticated submission (RELAYAUTH and the account's relay
            # flag); the browser's IP is no SMTP peer, so RELAYIPS is not asked.
            grant = await RelayRules(services).decide("", account.id)
            if grant is None:
                raise SendRefused("This account may not send mail outside the server.")
            if not router.can_send_out():
                raise SendRefused("This server does not send mail outside.")
        result = await router.route(sender, targets, data, origin="webmail %s"
                                    % client_ip(request), auth_account=account.id,
                                    sent_copy=True,
                                    count=bool(account.daycount or account.daysize))
        if not leaves:
            # Nothing left the server, so the router kept no Sent copy.
            local = b"Return-Path: <" + sender.encode("ascii", "replace") + b">\r\n" + data
            await defer.maybeDeferred(services.mail.deliver,
                                      [Delivery(account.id, local, "Sent")])
        return len(rcpts), len(data), len(result.queued)
