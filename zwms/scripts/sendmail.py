# -*- test-case-name: tests.test_sendmail -*-
"""
zwms-sendmail: a drop-in for /usr/sbin/sendmail (SPEC §0; seed §34).

    zwms-sendmail [--home DIR] [-t] [-i|-oi] [-f ADDR] [-F NAME] [RECIPIENT ...]

The message is read from standard input.  Without -i (or -oi) a line
holding a single "." ends it.  With -t the recipients are also taken from
the To, Cc and Bcc headers (the Resent- ones when present), and the Bcc
header is removed.  A From header is added when the message has none
(with the -F full name), and Date and Message-ID likewise.  The message is
handed to the running server, or delivered directly when none runs
(zwms.scripts.handoff).  Exit status: 0 sent, 64 usage or bad address,
1 refused for good, 75 try again later, 78 no server home.
"""

import re
import sys
from email.utils import formataddr, formatdate, make_msgid

from zwms.scripts import handoff
from zwms.scripts.handoff import EX_OK, EX_USAGE, HandoffError

PROG = "zwms-sendmail"

USAGE = ("usage: %s [--home DIR] [-t] [-i|-oi] [-f ADDR] [-F NAME] [RECIPIENT ...]"
         % (PROG,))

#: Flags that take no argument and change nothing here; programs pass them
#: out of habit (-v verbose, -U initial submission, -G gateway, -n no
#: aliasing, -m me too, -x sendmail's trace).  -i and -t are handled.
_QUIET_FLAGS = set("vUGnmx")

#: Flags whose argument is read and ignored: -B body type, -N DSN notify,
#: -R DSN return, -V envelope id, -L syslog tag, -h hop count, -O option,
#: -X traffic log, -C configuration file, -q queue run interval.
_ARG_FLAGS = set("BNRVLhOXC")

#: -o options accepted besides -oi: -od (delivery mode), -oe (error mode),
#: -om (me too), -oo (old headers), -oL (log level), -oQ (queue dir), -oA (aliases).
_O_OPTIONS = set("demoLQA")

_HEADER_RE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")


class Options:
    """The parsed command line."""

    def __init__(self):
        self.home = None
        self.extract = False        # -t
        self.ignore_dots = False    # -i / -oi
        self.sender = None          # -f / -r
        self.full_name = None       # -F
        self.recipients = []        # arguments


def parse_args(argv):
    """
    Parse sendmail's command line (options may come between recipients;
    "--" ends them).

    @raise HandoffError: EX_USAGE for an unknown or incomplete option.
    """
    opts = Options()
    args = list(argv)
    i = 0

    def value(rest, flag):
        nonlocal i
        if rest:
            return rest
        if i >= len(args):
            raise HandoffError("option -%s needs a value\n%s" % (flag, USAGE), EX_USAGE)
        i += 1
        return args[i - 1]

    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            opts.recipients.extend(args[i:])
            break
        if arg == "--home" or arg.startswith("--home="):
            opts.home = arg[7:] if arg.startswith("--home=") else value("", "-home")
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
            flag, rest = flags[0], flags[1:]
            flags = ""
            if flag in ("f", "r"):
                opts.sender = handoff.decode_arg(value(rest, flag))
            elif flag == "F":
                # One line: a full name must not open a header of its own.
                opts.full_name = " ".join(handoff.decode_arg(value(rest, flag)).split())
            elif flag in _ARG_FLAGS:
                value(rest, flag)
            elif flag == "o":
                if rest == "i":
                    opts.ignore_dots = True
                elif not rest or rest[0] not in _O_OPTIONS:
                    raise HandoffError("unsupported option -o%s\n%s" % (rest, USAGE), EX_USAGE)
            elif flag == "b":
                if rest != "m":
                    raise HandoffError("unsupported mode -b%s: only -bm (deliver mail) "
                                       "is available\n%s" % (rest, USAGE), EX_USAGE)
            elif flag in "ti" or flag in _QUIET_FLAGS:
                if flag == "t":
                    opts.extract = True
                elif flag == "i":
                    opts.ignore_dots = True
                flags = rest          # clustered flags: -ti, -it, -tv …
            else:
                raise HandoffError("unknown option -%s\n%s" % (flag, USAGE), EX_USAGE)
    return opts


def read_message(stdin, dot_ends):
    """
    Read the message from C{stdin}.  When C{dot_ends}, a line holding only
    "." ends it (and is not part of it); reading stops there.
    """
    if stdin is None:
        stdin = sys.stdin
    source = getattr(stdin, "buffer", stdin)
    if not dot_ends:
        return handoff.read_stdin(source)
    chunks = []
    while True:
        line = source.readline()
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        if not line:
            break
        if line.rstrip(b"\r\n") == b".":
            break
        chunks.append(line)
    return b"".join(chunks)


class Message:
    """
    A message as header fields (each a list of its CRLF lines, folding
    kept) and body bytes, so that headers can be read, removed and added
    while every other byte stays as given.
    """

    def __init__(self, data):
        data = handoff.crlf(data)
        lines = data.splitlines(keepends=True)
        if lines and lines[0].startswith(b"From ") and not _HEADER_RE.match(lines[0]):
            lines = lines[1:]     # an mbox separator line, as sendmail drops it
        self.fields = []
        index = 0
        for index, line in enumerate(lines):
            if line == b"\r\n":
                index += 1        # the blank separator line is not kept
                break
            if line[:1] in (b" ", b"\t") and self.fields:
                self.fields[-1].append(line)
            elif _HEADER_RE.match(line):
                self.fields.append([line])
            else:
                break             # a body without the blank line before it
        else:
            index = len(lines)
        self.body = b"".join(lines[index:])

    @staticmethod
    def name_of(field):
        return field[0].split(b":", 1)[0].strip().decode("ascii").lower()

    def has(self, name):
        return any(self.name_of(f) == name for f in self.fields)

    def values(self, name):
        """The unfolded values of every field called C{name} (lower case), as text."""
        out = []
        for f in self.fields:
            if self.name_of(f) == name:
                raw = b"".join(f).split(b":", 1)[1]
                text = handoff.decode_text(raw)
                out.append(" ".join(text.split()))
        return out

    def remove(self, name):
        self.fields = [f for f in self.fields if self.name_of(f) != name]

    def add(self, name, value):
        """Append one header (C{value} already RFC 2047-encoded where needed)."""
        self.fields.append([("%s: %s\r\n" % (name, value)).encode("utf-8")])

    def as_bytes(self):
        return b"".join(b"".join(f) for f in self.fields) + b"\r\n" + self.body


def header_recipients(message, domain):
    """
    The recipients named in the headers (-t): Resent-To/Cc/Bcc when the
    message has any, else To/Cc/Bcc.  The Bcc field is removed.
    """
    prefix = "resent-" if any(message.has("resent-" + n) for n in ("to", "cc", "bcc")) else ""
    out = []
    for name in ("to", "cc", "bcc"):
        for text in message.values(prefix + name):
            out.extend(handoff.parse_addresses(text, domain))
    message.remove(prefix + "bcc")
    return out


def compose(opts, data, settings):
    """
    Work out the envelope and the final bytes.

    @return: (sender, recipients, message bytes)
    @raise HandoffError
    """
    domain = settings["DOMAIN"]
    if opts.sender is not None:
        sender = handoff.parse_sender(opts.sender, domain)
    else:
        sender = handoff.default_sender(domain)
    message = Message(data)
    recipients = []
    for arg in opts.recipients:
        recipients.extend(handoff.parse_addresses(handoff.decode_arg(arg), domain))
    if opts.extract:
        recipients.extend(header_recipients(message, domain))
    recipients = handoff.unique(recipients)
    if not recipients:
        where = " (none in the To, Cc or Bcc headers either)" if opts.extract else ""
        raise HandoffError("no recipients given%s\n%s" % (where, USAGE), EX_USAGE)
    if not message.has("from"):
        address = sender or handoff.default_sender(domain)
        message.add("From", formataddr((opts.full_name or "", address), charset="utf-8")
                    if opts.full_name else address)
    if not message.has("date"):
        message.add("Date", formatdate(localtime=True))
    if not message.has("message-id"):
        message.add("Message-ID", make_msgid(domain=domain))
    return sender, recipients, message.as_bytes()


def run(argv, stdin):
    """The command without the error wrapper: raises HandoffError."""
    opts = parse_args(argv)
    home = handoff.find_home(opts.home)
    settings = handoff.load_settings(home)
    data = read_message(stdin, dot_ends=not opts.ignore_dots)
    sender, recipients, message = compose(opts, data, settings)
    handoff.handoff(home, sender, recipients, message, settings=settings)
    return EX_OK


def main(argv=None, stdin=None):
    """Entry point of zwms-sendmail; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    return handoff.guarded(PROG, run, argv, stdin)


if __name__ == "__main__":
    sys.exit(main())
