# -*- test-case-name: tests.test_webmail_compose -*-
"""
/mail/compose/RAND/...: writing and sending (SPEC W2).

  new?mode=reply|replyall|forward&folder=F&name=NAME   the form (To/Cc/Bcc,
                      subject, plain text body with the signature,
                      attachments); reply-all copies the original's To and
                      Cc, less the user's own addresses
  new?mode=draft&name=NAME   a saved draft reopened (its attachments kept)
  save               POST multipart/form-data: the form as a draft in
                      Drafts (Bcc kept there); the draft it was reopened
                      from is replaced
  send               POST multipart/form-data: build the message
                      (L{zwms.mime.compose}), check the submission rules
                      and limits, hand it to the routing service as the
                      logged-in account (relay rules, lists, queue), with a
                      copy in Sent

The rules are those of an authenticated submission (seed §16, SPEC S6):
remote recipients need a relay grant (L{zwms.smtp.relay.RelayRules}); the
account's recipient limit, message size limit (and MAXMAILSIZE) and daily
count/size limits apply.
"""

import email.utils

from klein import Klein
from twisted.internet import defer

from zwms.account import Delivery
from zwms.errors import InvalidValue
from zwms.mime import compose as mimecompose
from zwms.mime import parse as mimeparse
from zwms.routing import lists as mlists
from zwms.smtp.relay import RelayRules
from zwms.store import userprefs
from zwms.web.console import Redirect, client_ip, query_args
from zwms.web.webmail.mailbox import check_box, load
from zwms.web.webmail.state import page


class SendRefused(Exception):
    """The message cannot go: the reason is shown above the kept form."""


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
            "subject": s.subject, "body": parsed.text or "",
            "in_reply_to": mimecompose.header_value(data, "In-Reply-To"),
            "references": mimecompose.header_value(data, "References")}


def draft_for(mode, data, parsed, signature):
    """The form values of a reply or forward of one message."""
    s = parsed.summary
    body = parsed.text or ""
    if not body and parsed.html:
        import re
        body = re.sub(r"<[^>]+>", "", parsed.html)
    sig = ("\n\n-- \n" + signature) if signature else ""
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

    def _form(self, request, session, values, error="", status=200):
        wm = self.webmail
        request.setResponseCode(status)
        limit = int(wm.services.settings["MAXMAILSIZE"]) * 1024
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
            values.update(draft_for("reply" if mode == "replyall" else mode, data, parsed,
                                    prefs["signature"]))
            if mode == "replyall":
                account = wm.services.accounts.get(session.login)
                skip = own_addresses(account, wm.services.settings) | {values["to"].lower()}
                values["cc"] = ", ".join(
                    a for a in mimecompose.header_addresses(data, "To", "Cc") if a not in skip)
            if mode == "forward" and parsed.attachments:
                values.update(fwd_folder=folder, fwd_name=name)
        elif mode == "draft":
            name = args.get("name", "")
            data, parsed = await wm.run(load, wm.services.mail, session.login, "Drafts", name)
            values.update(reopen_draft(data, parsed), draft=name)
            if parsed.attachments:
                values.update(fwd_folder="Drafts", fwd_name=name)
        return self._form(request, session, values)

    def _kept(self, values):
        return {k: values.get(k, "") for k in ("to", "cc", "bcc", "subject", "body",
                                               "in_reply_to", "references", "fwd_folder",
                                               "fwd_name", "draft")}

    async def _attachments(self, session, keep, files):
        """The uploaded files, then those of the forwarded message or reopened draft."""
        wm = self.webmail
        attachments = [(name, ctype, data) for _field, name, ctype, data in files]
        if keep["fwd_folder"] and keep["fwd_name"]:
            folder = await check_box(wm, session, keep["fwd_folder"])
            data, parsed = await wm.run(load, wm.services.mail, session.login, folder,
                                        keep["fwd_name"])
            for a in parsed.attachments:
                ctype, name, body = mimeparse.part_of(data, a.index)
                attachments.append((name, ctype if ctype != "message/rfc822" else "", body))
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
            to, cc, bcc = (mimecompose.address_list(keep[k]) for k in ("to", "cc", "bcc"))
        except InvalidValue as e:
            return self._form(request, session, keep, error=str(e), status=400)
        account = services.accounts.get(session.login)
        domain = services.settings["DOMAIN"]
        sender = account.address or "%s@%s" % (account.id, domain)
        attachments = await self._attachments(session, keep, files)
        message = await wm.run(mimecompose.build, sender, account.name, to, cc,
                               keep["subject"], keep["body"], attachments, domain,
                               keep["in_reply_to"], keep["references"], wm.now(), bcc)
        limit = int(services.settings["MAXMAILSIZE"]) * 1024
        if limit and len(message) > limit:
            return self._form(request, session, keep, status=400, error=(
                "The message is too large (%d KB; at most %d KB). Remove or shrink "
                "attachments." % (len(message) // 1024, limit // 1024)))
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
        except (SendRefused, InvalidValue, mlists.ListError) as e:
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
        to = mimecompose.address_list(keep["to"])
        cc = mimecompose.address_list(keep["cc"])
        bcc = mimecompose.address_list(keep["bcc"])
        rcpts = list(dict.fromkeys(a.lower() for a in to + cc + bcc))
        if not rcpts:
            raise SendRefused("Name at least one recipient.")
        if account.rcptlimit and len(rcpts) > account.rcptlimit:
            raise SendRefused("Too many recipients: this account may name %d at most."
                              % account.rcptlimit)
        attachments = await self._attachments(session, keep, files)
        domain = services.settings["DOMAIN"]
        sender = account.address or "%s@%s" % (account.id, domain)
        message = await wm.run(mimecompose.build, sender, account.name, to, cc,
                               keep["subject"], keep["body"], attachments, domain,
                               keep["in_reply_to"], keep["references"], wm.now())
        received = ("Received: from webmail ([%s]) by %s (zWMS webmail) for <%s>;\r\n\t%s\r\n"
                    % (client_ip(request), domain, session.login,
                       email.utils.formatdate(wm.now()))).encode("ascii", "replace")
        data = received + message
        limit = int(services.settings["MAXMAILSIZE"]) * 1024
        if account.sendsize and (not limit or account.sendsize < limit):
            limit = account.sendsize
        if limit and len(data) > limit:
            raise SendRefused("The message is too large (%d KB; at most %d KB). "
                              "Remove or shrink attachments." % (len(data) // 1024,
                                                                 limit // 1024))
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
