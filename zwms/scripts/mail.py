# -*- test-case-name: tests.test_sendmail -*-
"""
zwms-mail: a drop-in for /bin/mail sending (SPEC §0; seed §33).

    zwms-mail [--home DIR] [-s SUBJECT] [-c CC] [-b BCC] [-r FROM] [-E] RECIPIENT ...

The body is read from standard input up to its end.  The message is built
as RFC 5322 with email.message.EmailMessage (Date, Message-ID, From, To,
Cc, Subject; non-ASCII text in UTF-8, headers RFC 2047-encoded) and handed
off like zwms-sendmail's (zwms.scripts.handoff).  Bcc addresses are only
on the envelope.  -E sends nothing when the body is empty.  Exit status as
zwms-sendmail's.
"""

import sys
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from zwms.scripts import handoff
from zwms.scripts.handoff import EX_OK, EX_USAGE, HandoffError

PROG = "zwms-mail"

USAGE = ("usage: %s [--home DIR] [-s SUBJECT] [-c CC] [-b BCC] [-r FROM] [-E] "
         "RECIPIENT ..." % (PROG,))

#: mailx flags with no argument that change nothing when sending from a
#: script: -n (no mail.rc), -N (no header summary), -v (verbose),
#: -i (ignore interrupts), -d (debug), -I, -~ (tilde escapes).
_QUIET_FLAGS = set("nNvidI~")

#: Options that take a value: subject, Cc, Bcc, From.
_VALUE_FLAGS = set("scbr")


class Options:
    """The parsed command line."""

    def __init__(self):
        self.home = None
        self.subject = None
        self.cc = []
        self.bcc = []
        self.sender = None
        self.skip_empty = False
        self.recipients = []


def parse_args(argv):
    """
    Parse mail's command line (options may come between recipients; "--"
    ends them; -c and -b may be given more than once).

    @raise HandoffError: EX_USAGE
    """
    opts = Options()
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            opts.recipients.extend(args[i:])
            break
        if arg == "--home" or arg.startswith("--home="):
            if arg == "--home":
                if i >= len(args):
                    raise HandoffError("--home needs a folder\n" + USAGE, EX_USAGE)
                opts.home, i = args[i], i + 1
            else:
                opts.home = arg[7:]
            if not opts.home:
                raise HandoffError("--home needs a folder\n" + USAGE, EX_USAGE)
            continue
        if arg.startswith("--") or arg == "-":
            raise HandoffError("unknown option %s\n%s" % (arg, USAGE), EX_USAGE)
        if not arg.startswith("-"):
            opts.recipients.append(arg)
            continue
        flags = arg[1:]
        while flags:
            flag, flags = flags[0], flags[1:]
            if flag in _VALUE_FLAGS:
                if flags:
                    text, flags = flags, ""
                elif i < len(args):
                    text, i = args[i], i + 1
                else:
                    raise HandoffError("option -%s needs a value\n%s" % (flag, USAGE),
                                       EX_USAGE)
                text = handoff.decode_arg(text)
                if flag == "s":
                    opts.subject = text
                elif flag == "c":
                    opts.cc.append(text)
                elif flag == "b":
                    opts.bcc.append(text)
                else:
                    opts.sender = text
            elif flag == "E":
                opts.skip_empty = True
            elif flag not in _QUIET_FLAGS:
                raise HandoffError("unknown option -%s\n%s" % (flag, USAGE), EX_USAGE)
    return opts


def parse_from(text, domain):
    """
    The -r value: "addr", "Name <addr>" or a bare user name (gets @DOMAIN).

    @return: a L{email.headerregistry.Address}.
    """
    try:
        found = handoff.parse_mailboxes(text, domain)
    except HandoffError as e:
        raise HandoffError("bad sender %r: %s" % (text, e), EX_USAGE)
    if len(found) != 1:
        raise HandoffError("bad sender %r: give one address" % (text,), EX_USAGE)
    name, addr = found[0]
    local, _, dom = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=dom)


def _addresses(texts, domain):
    out = []
    for text in texts:
        out.extend(handoff.parse_addresses(text, domain))
    return handoff.unique(out)


def build(opts, body, domain, now=None):
    """
    Build the message.

    @param body: the body bytes as read (any charset; UTF-8 expected).
    @return: (sender, recipients, message bytes with CRLF line endings).
    @raise HandoffError
    """
    to = _addresses([handoff.decode_arg(a) for a in opts.recipients], domain)
    cc = _addresses(opts.cc, domain)
    bcc = _addresses(opts.bcc, domain)
    recipients = handoff.unique(to + cc + bcc)
    if not recipients:
        raise HandoffError("no recipients given\n" + USAGE, EX_USAGE)
    if opts.sender is not None:
        from_address = parse_from(opts.sender, domain)
    else:
        user, _, dom = handoff.default_sender(domain).rpartition("@")
        from_address = Address(username=user, domain=dom)
    if opts.subject is not None and any(c in opts.subject for c in "\r\n"):
        # A subject cannot hold a line break; mailx folds it into one line.
        opts.subject = " ".join(opts.subject.split())
    text = handoff.decode_text(body)
    if text and not text.endswith("\n"):
        text += "\n"
    msg = EmailMessage()
    msg["From"] = from_address
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if opts.subject is not None:
        msg["Subject"] = opts.subject
    msg["Date"] = formatdate(now, localtime=True)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    return from_address.addr_spec, recipients, msg.as_bytes(policy=SMTP_POLICY)


def run(argv, stdin):
    """The command without the error wrapper: raises HandoffError."""
    opts = parse_args(argv)
    home = handoff.find_home(opts.home)
    settings = handoff.load_settings(home)
    body = handoff.read_stdin(stdin)
    if opts.skip_empty and not body.strip():
        return EX_OK
    sender, recipients, message = build(opts, body, settings["DOMAIN"])
    handoff.handoff(home, sender, recipients, message, settings=settings)
    return EX_OK


def main(argv=None, stdin=None):
    """Entry point of zwms-mail; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    return handoff.guarded(PROG, run, argv, stdin)


if __name__ == "__main__":
    sys.exit(main())
