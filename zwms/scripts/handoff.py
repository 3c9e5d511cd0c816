# -*- test-case-name: tests.test_sendmail -*-
"""
What zwms-sendmail and zwms-mail share (SPEC §0; seed §33, §34): finding
the server home, parsing recipient addresses, and handing a finished
message to the running server by SMTP, or, when no server runs, straight
into the local mailboxes.

The hand-off is all or nothing: every recipient is checked first (RCPT to
the server, or the directory when delivering directly) and the message is
sent only when all of them are accepted.  A caller that sees a non-zero
exit status can therefore fix the problem and run again without sending
anyone a second copy.

These commands run without a reactor: smtplib talks to the server, and
direct delivery runs the server's own routing service
(L{zwms.routing.router.Router}) over the file store's synchronous path and
the queue folder: local copies are stored, remote recipients and mailing
lists ``(NAME)`` are written to data/queue (fsynced) and sent by the server
when it next starts.
"""

import errno
import os
import re
import smtplib
import socket
import sys
from email.policy import default as default_policy
from email.utils import formatdate

from zwms import replies
from zwms.account import is_address

# sysexits.h, the exit statuses sendmail callers understand.
EX_OK = 0
EX_PERMANENT = 1          # a recipient or the message was refused for good
EX_USAGE = 64
EX_DATAERR = 65
EX_SOFTWARE = 70
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_CONFIG = 78

#: Seconds to wait for the server at each step (connect, each reply).
TIMEOUT = 30.0

#: Listener names of run/listen we hand mail to, in order of preference.
#: Both answer loopback clients without AUTH (loopback is in RELAYIPS).
PREFERRED_LISTENERS = ("smtp", "submission")


_LIST_ITEM_RE = re.compile(r"(?:^|,)\s*\(\s*([^()\s,]*)\s*\)\s*(?=,|$)")
_LISTEN_RE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\s+"
                        r"(?:\[(?P<v6>[0-9A-Fa-f:.%\w]+)\]|(?P<host>[^\s:\[\]]+))"
                        r":(?P<port>\d{1,5})\s*$")


class HandoffError(Exception):
    """
    A failure to report and exit with: C{str(e)} is the message for a
    person (several lines when several recipients were refused), C{status}
    the exit status.
    """

    def __init__(self, message, status):
        Exception.__init__(self, message)
        self.status = status


def status_for_code(code):
    """The exit status for an SMTP reply code: 4xx is temporary, else permanent."""
    return EX_TEMPFAIL if 400 <= code < 500 else EX_PERMANENT


# ---- the home -----------------------------------------------------------------

def find_home(option=None, environ=None):
    """
    The server home: C{--home DIR}, else $ZWMS_HOME, else the current
    directory (SPEC §0).
    """
    environ = os.environ if environ is None else environ
    return os.path.abspath(option or environ.get("ZWMS_HOME") or os.getcwd())


def load_settings(home):
    """The home's L{zwms.config.Settings} (zwms.cfg + env.cfg)."""
    from zwms.config import Settings
    from zwms.home import Home
    return Settings(Home(home))


def invoking_user():
    """The login name of the user running the command, or None."""
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        pass
    for name in ("LOGNAME", "USER"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def default_sender(domain, user=None):
    """
    The envelope sender when none is given: the invoking user @ DOMAIN,
    or root@DOMAIN when the user's name is not usable in an address.
    """
    user = invoking_user() if user is None else user
    if user and is_address("%s@%s" % (user, domain)):
        return "%s@%s" % (user, domain)
    return "root@%s" % (domain,)


# ---- addresses ------------------------------------------------------------

def parse_mailboxes(text, domain):
    """
    Parse one address list (a command-line argument or a To/Cc/Bcc value).

    A bare name ("root") gets @DOMAIN, as sendmail does for local users.
    @return: (display name, address) pairs, in order.
    @raise HandoffError: EX_USAGE for a bad address, EX_PERMANENT for a
        mailing list "(NAME)".
    """
    # Line breaks count as folding white space: nothing given here may
    # start a new header line.
    text = re.sub(r"[\r\n]+", " ", text)
    # Mailing lists "(NAME)" (§21) are taken out first: to the address
    # parser they would be comments.
    lists = [("", "(%s)" % m.group(1).lower()) for m in _LIST_ITEM_RE.finditer(text)]
    for name, item in lists:
        if not re.match(r"^\([A-Za-z0-9][A-Za-z0-9._-]{0,63}\)$", item):
            raise HandoffError("bad mailing list name %r" % (item,), EX_USAGE)
    if lists:
        text = _LIST_ITEM_RE.sub(",", text).strip(" ,")
        if not text:
            return lists
    try:
        header = default_policy.header_factory("To", text)
        found = list(header.addresses)
        defects = [str(d) for d in header.defects
                   if "Invalid" in type(d).__name__
                   and "local part with no domain" not in str(d)]
    except Exception:
        # The parser is not meant to raise, but a bad address must never
        # become a traceback (SPEC X4).
        raise HandoffError("bad address: %r" % (text,), EX_USAGE)
    if defects:
        raise HandoffError("bad address %r: %s" % (text.strip(), defects[0]), EX_USAGE)
    out = []
    for address in found:
        if not address.domain and address.username:
            addr = "%s@%s" % (address.username, domain)
        else:
            addr = address.addr_spec
        if not is_address(addr):
            raise HandoffError("bad address %r in %r" % (addr, text.strip()), EX_USAGE)
        out.append((address.display_name, addr))
    return lists + out


def parse_addresses(text, domain):
    """The plain addresses of L{parse_mailboxes}."""
    return [addr for _, addr in parse_mailboxes(text, domain)]


def parse_sender(text, domain):
    """
    Parse an envelope sender (-f ADDR): an address, a bare name (gets
    @DOMAIN), or "<>" / "" for the null sender.
    """
    text = " ".join(text.split())
    if text in ("", "<>"):
        return ""
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if "@" not in text:
        text = "%s@%s" % (text, domain)
    if not is_address(text):
        raise HandoffError("bad sender address %r" % (text,), EX_USAGE)
    return text


def unique(addresses):
    """Drop repeated addresses (case-insensitive), keeping the first order."""
    seen, out = set(), []
    for addr in addresses:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    return out


def decode_arg(arg):
    """
    A command-line argument as text.  Arguments that are not valid in the
    locale's encoding reach Python with surrogate escapes; read those bytes
    as UTF-8, else as CP949 (Korean legacy scripts), else Latin-1.
    """
    if isinstance(arg, bytes):
        raw = arg
    else:
        try:
            arg.encode("utf-8")
            return arg
        except UnicodeEncodeError:
            raw = os.fsencode(arg)
    return decode_text(raw)


def decode_text(raw):
    """Bytes of unknown charset as text: UTF-8, else CP949, else Latin-1."""
    for charset in ("utf-8", "cp949"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


# ---- message bytes ----------------------------------------------------------

def crlf(data):
    """Every line ending (CRLF, bare LF, bare CR) as CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def read_stdin(stdin):
    """All bytes of C{stdin}: a binary stream, or a text one (encoded UTF-8)."""
    if stdin is None:
        stdin = sys.stdin
    source = getattr(stdin, "buffer", stdin)
    data = source.read()
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return data


# ---- run/listen ---------------------------------------------------------------

def parse_listen(text):
    """
    Parse run/listen: lines "NAME HOST:PORT" ("[::1]:25" for IPv6).
    Blank lines, comments and lines in another form are skipped.

    @return: a list of (name, host, port).
    """
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LISTEN_RE.match(line)
        if not m:
            continue
        port = int(m.group("port"))
        if not 0 < port < 65536:
            continue
        out.append((m.group("name").lower(), m.group("v6") or m.group("host"), port))
    return out


def connect_host(host):
    """Where to connect for a listener bound to C{host}: wildcards mean loopback."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host in ("::", "::0"):
        return "::1"
    return host


def targets(listeners):
    """The (host, port) pairs to try, "smtp" listeners first, then "submission"."""
    out = []
    for wanted in PREFERRED_LISTENERS:
        for name, host, port in listeners:
            target = (connect_host(host), port)
            if name == wanted and target not in out:
                out.append(target)
    return out


def read_listen_file(home):
    """The listeners in HOME/run/listen, or None when the file is missing."""
    path = os.path.join(home, "run", "listen")
    try:
        with open(path, "rb") as f:
            return parse_listen(f.read().decode("utf-8", "replace"))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise HandoffError("cannot read %s: %s" % (path, e.strerror), EX_TEMPFAIL)


# ---- the hand-off ----------------------------------------------------------------

class _NotAnswering(Exception):
    """Nothing listens at that address (connection refused or unreachable)."""


def _reply_text(reply):
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(str(reply).split())


def smtp_send(host, port, sender, recipients, data, timeout=TIMEOUT):
    """
    Send one message by SMTP: EHLO (HELO if refused), MAIL, every RCPT, and
    DATA only when every recipient was accepted (RSET otherwise).

    @raise _NotAnswering: the connection was refused (no server there).
    @raise HandoffError: the server refused something or failed.
    """
    where = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    try:
        client = smtplib.SMTP(timeout=timeout, local_hostname=socket.gethostname() or "localhost")
        code, reply = client.connect(host, port)
    except (ConnectionRefusedError, socket.gaierror) as e:
        raise _NotAnswering(str(e))
    except (TimeoutError, socket.timeout):
        raise HandoffError("the server at %s did not answer within %d seconds"
                           % (where, timeout), EX_TEMPFAIL)
    except OSError as e:
        if _unreachable(e):
            raise _NotAnswering(str(e))
        # Also smtplib's own errors (SMTPException is an OSError), such as
        # the server closing the connection before its greeting.
        raise HandoffError("cannot talk to the server at %s: %s" % (where, e), EX_TEMPFAIL)
    try:
        if code != 220:
            # A 421/554 greeting: the server is there but takes no mail now.
            raise HandoffError("the server at %s refused the connection: %d %s"
                               % (where, code, _reply_text(reply)), status_for_code(code))
        return _transaction(client, where, sender, recipients, data)
    except (TimeoutError, socket.timeout):
        raise HandoffError("the server at %s stopped answering (no reply within %d "
                           "seconds)" % (where, timeout), EX_TEMPFAIL)
    except OSError as e:
        # SMTPServerDisconnected and socket errors (SMTPException is an OSError).
        raise HandoffError("the connection to the server at %s failed: %s" % (where, e),
                           EX_TEMPFAIL)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def _unreachable(error):
    """True for connect errors that mean nobody listens there."""
    return error.errno in (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH,
                           errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def _transaction(client, where, sender, recipients, data):
    code, reply = client.ehlo()
    if not 200 <= code < 300:
        code, reply = client.helo()
        if not 200 <= code < 300:
            raise HandoffError("the server at %s refused HELO: %d %s"
                               % (where, code, _reply_text(reply)), status_for_code(code))
    options = []
    if client.does_esmtp:
        if client.has_extn("size"):
            options.append("SIZE=%d" % len(data))
        if client.has_extn("8bitmime") and re.search(rb"[\x80-\xff]", data):
            options.append("BODY=8BITMIME")
    code, reply = client.mail(sender, options)
    if code != 250:
        raise HandoffError("the server at %s refused the sender <%s>: %d %s"
                           % (where, sender, code, _reply_text(reply)), status_for_code(code))
    refused = []
    for rcpt in recipients:
        code, reply = client.rcpt(rcpt)
        if code not in (250, 251):
            refused.append((rcpt, code, _reply_text(reply)))
    if refused:
        client.rset()
        raise refusal(refused)
    code, reply = client.data(data)
    if code != 250:
        raise HandoffError("the server at %s refused the message: %d %s"
                           % (where, code, _reply_text(reply)), status_for_code(code))
    return recipients


def refusal(refused):
    """
    One HandoffError for refused recipients [(address, code, text)]: a line
    each, then "nothing was sent"; temporary only if every refusal was.
    """
    lines = ["<%s>: %d %s" % (addr, code, text) for addr, code, text in refused]
    lines.append("nothing was sent (%d recipient%s refused)"
                 % (len(refused), "" if len(refused) == 1 else "s"))
    temporary = all(400 <= code < 500 for _, code, _ in refused)
    return HandoffError("\n".join(lines), EX_TEMPFAIL if temporary else EX_PERMANENT)


def handoff(home, sender, recipients, data, settings=None, timeout=TIMEOUT):
    """
    Hand a finished message to the server of C{home}, or deliver it
    directly when no server runs (run/listen missing, or every listed
    address refuses the connection).

    @param data: the message bytes (any line endings; sent as CRLF).
    @return: "smtp" or "direct", how it went.
    @raise HandoffError: nothing was sent.
    """
    data = crlf(data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"     # what SMTP's DATA would do; the same bytes either way
    listeners = read_listen_file(home)
    if listeners:
        for host, port in targets(listeners):
            try:
                smtp_send(host, port, sender, recipients, data, timeout)
                return "smtp"
            except _NotAnswering:
                continue
    if settings is None:
        settings = load_settings(home)
    deliver_direct(home, settings, sender, recipients, data)
    return "direct"


# ---- direct delivery (no server running) ---------------------------------------

def _fired(d):
    """The result of a Deferred that has already fired (raise its failure)."""
    results = []
    d.addBoth(results.append)
    if not results:
        raise HandoffError("the account store did not answer at once", EX_SOFTWARE)
    result = results[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def received_lines(sender, domain, message_id, now=None):
    """
    The Return-Path and Received lines put on top of a message delivered
    directly (the server puts its own when it receives by SMTP).
    """
    return ("Return-Path: <%s>\r\n" % (sender,)).encode("ascii", "replace") + \
        received_line(domain, message_id, now)


def received_line(domain, message_id, now=None):
    """Our Received line for a message handed over without SMTP."""
    user = invoking_user() or "unknown"
    return ("Received: by %s (zWMS sendmail, from user %s)\r\n\tid %s; %s\r\n"
            % (domain, user, message_id, formatdate(now, localtime=True))
            ).encode("ascii", "replace")


class _NowClock:
    """The IReactorTime a process without a reactor needs: calls run at once."""

    def seconds(self):
        import time
        return time.time()

    def callLater(self, delay, f, *args, **kwargs):
        f(*args, **kwargs)
        return _Done()


class _Done:
    def active(self):
        return False

    def cancel(self):
        pass


class _DirectMail:
    """The mail store's C{deliver} through the CLI's synchronous path."""

    def __init__(self, ctx):
        self.ctx = ctx

    def deliver(self, deliveries):
        from twisted.internet import defer
        return defer.maybeDeferred(self.ctx.deliver, deliveries)

    def __getattr__(self, name):
        # usage(), messages() ...: the file store's own synchronous reads.
        return getattr(self.ctx.mail, name)


class _DirectQueue:
    """
    The outbound queue of a stopped server: entries are written (fsynced)
    to data/queue and sent when the server starts (its runner resumes every
    entry on disk).
    """

    def __init__(self, home):
        from zwms.queue.spool import Spool
        self.spool = Spool(home)
        self.observers = []

    def enqueue(self, sender, recipients, data, auto=False, origin=""):
        from twisted.internet import defer
        return defer.maybeDeferred(lambda: self.spool.enqueue(
            sender, recipients, data, auto=auto, origin=origin).id)

    def adopt(self, envelopes):
        """Entries written by a fan-out: already on disk, nothing to do here."""


def deliver_direct(home, settings, sender, recipients, data):
    """
    Route the message with the server being down.  Every recipient is
    resolved and its accounts checked first, with the server's own checks
    and §36 replies; nothing is stored unless all of them can take the
    message.  Local copies are stored, remote recipients and mailing lists
    go to data/queue for the server's next start.

    @raise HandoffError: nothing was stored or queued.
    """
    if not os.path.isdir(os.path.join(home, "data")):
        raise HandoffError("no zWMS server home at %s (no data/ folder, and no server "
                           "in run/listen): use --home DIR or set ZWMS_HOME" % (home,),
                           EX_CONFIG)
    from twisted.internet import defer

    from zwms import logs
    from zwms.admin.ops import open_home
    from zwms.errors import Reply
    from zwms.routing import lists as mlists
    from zwms.routing.router import Mailing, Router, Target
    from zwms.services import Services
    from zwms.smtp.delivery import LocalDelivery, new_message_id

    limit = settings["MAXMAILSIZE"] * 1024
    if limit and len(data) > limit:
        code, text = replies.OVER_WORK_SIZE
        raise HandoffError("the message (%d bytes) is larger than MAXMAILSIZE: %d %s"
                           % (len(data), code, text), EX_PERMANENT)
    ctx = open_home(home, actor="zwms-sendmail")
    try:
        services = Services(home=ctx.home, settings=ctx.settings, accounts=ctx.accounts,
                            directory=ctx.directory, mail=_DirectMail(ctx), logs=ctx.logs,
                            relay_memory=None, clock=_NowClock(),
                            queue=_DirectQueue(ctx.home))
        router = services.router = Router(services, threads=defer.maybeDeferred)
        checker = LocalDelivery(services)
        targets, refused, refusal_logs = [], [], []
        for rcpt in recipients:
            name = mlists.list_name(rcpt)
            if name is not None:
                try:
                    mlists.read_list(ctx.home, name)
                except mlists.ListError as e:
                    refused.append((rcpt, e.code, e.text))
                else:
                    targets.append(Target(rcpt, mailing=Mailing("personal", name)))
                continue
            resolution = ctx.directory.resolve(rcpt)
            if resolution.kind == "unknown":
                path = mlists.plain_list_path(ctx.home, rcpt)
                if path:
                    targets.append(Target(rcpt, mailing=Mailing("plain", rcpt.lower(), path)))
                    continue
                refused.append((rcpt,) + replies.USER_NOT_FOUND)
                refusal_logs.append((logs.MAILSERVER, "%s <%s>"
                                     % (replies.LOG_USER_NOT_FOUND, rcpt)))
                continue
            if resolution.kind == "foreign":
                targets.append(Target(rcpt, (), (rcpt,)))
                continue
            accepted = []
            for aid in resolution.accounts:
                try:
                    # The SMTP server's own account checks (§36 [수신] 4).
                    _fired(checker.check_account(aid, "<%s>" % rcpt))
                except Reply as e:
                    refused.append((rcpt, e.code, e.text))
                    if e.log:
                        refusal_logs.append((e.channel, e.log))
                else:
                    accepted.append(aid)
            targets.append(Target(rcpt, tuple(accepted), tuple(resolution.addresses)))
        for channel, line in refusal_logs:
            ctx.logs.write(channel, line, "local")
        if refused:
            raise refusal(refused)
        message_id = new_message_id()
        message = received_line(settings["DOMAIN"], message_id) + data
        try:
            result = _fired(router.route(sender, targets, message, origin="zwms-sendmail"))
        except Exception as e:
            # The store removes what it wrote when a delivery fails.
            ctx.logs.write(logs.SYSTEMERROR, "zwms-sendmail: mail store failed: %s" % (e,),
                           "local")
            raise HandoffError("could not store the message (%s: %s); nothing was stored"
                               % (type(e).__name__, e), EX_TEMPFAIL)
        for t in targets:
            line = replies.LOG_RECEIVE_SUCCESS if t.accounts else replies.LOG_RELAY_SUCCESS
            ctx.logs.write(logs.MAILSERVER, "%s <%s> (%d bytes, id %s, zwms-sendmail%s)"
                           % (line, t.address, len(message), message_id,
                              ", queued until the server starts"
                              if (result.queued or result.mailings) else ""), "local")
    finally:
        ctx.close()


# ---- the command wrapper ------------------------------------------------------

def guarded(prog, run, argv, stdin, stderr=None):
    """
    Call C{run(argv, stdin)} and turn every failure into a message on
    stderr and an exit status, never a traceback (SPEC X4).
    """
    stderr = sys.stderr if stderr is None else stderr
    try:
        return run(argv, stdin)
    except HandoffError as e:
        for line in str(e).splitlines():
            stderr.write("%s: %s\n" % (prog, line))
        return e.status
    except KeyboardInterrupt:
        stderr.write("%s: interrupted, nothing was sent\n" % (prog,))
        return EX_TEMPFAIL
    except OSError as e:
        stderr.write("%s: %s, nothing was sent\n" % (prog, e))
        return EX_IOERR
    except Exception as e:
        stderr.write("%s: internal error (%s: %s), nothing was sent\n"
                     % (prog, type(e).__name__, e))
        return EX_SOFTWARE
