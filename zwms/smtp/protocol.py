# -*- test-case-name: tests.test_smtp_protocol -*-
"""
The hardened ESMTP server protocol (SPEC S1, S7, X4; TWISTED-NOTES "SMTP
server").

It subclasses C{twisted.mail.smtp.ESMTP} for its interfaces and cred flow,
but owns the parts where Twisted 26.10 has holes:

- framing: lines end only at CRLF (a bare LF or CR never ends a line, so
  never ends DATA: no SMTP smuggling); a line over 64 KiB is answered 500
  and the connection is closed, so the rest of a body is never read as
  commands;
- DATA is taken in chunks, not lines (profiled: per-line handling was over
  half the time of a 100 KB message): everything up to the CRLF.CRLF
  terminator, or up to the last complete line, is dot-unstuffed at once
  and handed to the message; the idle timer restarts once per read, not
  once per line;
- ordering: a command whose answer is pending (a Deferred from the store or
  the directory) holds the pipelined lines behind it, so replies always
  come in order; the transport is paused only once more than HOLD_LIMIT
  bytes are held (pausing for every command cost two epoll changes each);
- STARTTLS drops the plaintext pipelined after it and forgets the session;
- AUTH is offered and accepted only over TLS or from loopback; a malformed
  AUTH is answered, never a dropped connection;
- NOOP, VRFY (refused), SIZE, 8BITMIME, PIPELINING, idle timeout, recipient
  and error limits, and any 421 closes the connection (so a receive-policy
  refusal such as "421 Error. This mail looks like a spam" does);
- a peer the receive policy refuses at connect (BLOCKIPS) gets its reply
  instead of the greeting and is disconnected;
- a storage failure after DATA is a 451, never a 5xx (DESIGN rule 4).
"""

import ipaddress
import re

from twisted.cred import credentials, error as cred_error
from twisted.internet import defer
from twisted.internet.interfaces import ITLSTransport
from twisted.mail import smtp
from twisted.python import failure as tfailure

from zwms import logs, replies
from zwms.errors import Reply
from zwms.smtp.envelope import Envelope, EnvelopeUser, Path
from zwms.smtp.security import SecurityCommands
from zwms.smtp.texts import (
    AUTH, AUTH_REQUIRED, BAD_HELO, BAD_PARAMETER, COMMAND, DATA, ERROR_CODES, MAIL_SYNTAX,
    NEED_MAIL, NESTED_MAIL, NO_ARGUMENTS, NO_VALID_RECIPIENTS, RCPT_SYNTAX, SEND_HELO_FIRST,
    TOO_MANY_ERRORS)

PATH_RE = re.compile(rb"^(FROM|TO):[ \t]*(?:<([^<>]*)>|([^<>\s]+))(?:[ \t]+(.*))?$", re.I)
PARAM_RE = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$")
VERB_RE = re.compile(rb"^[A-Za-z]{1,8}$")
HELO_RE = re.compile(rb"^[\x21-\x7e]{1,255}$")
CONTROL_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def is_local_peer(ip):
    """Loopback (127.0.0.0/8, ::1, IPv4-mapped loopback) or a UNIX socket."""
    if ip is None:
        return True
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _line_over(chunk, limit):
    """
    A CRLF-delimited line of C{chunk} longer than C{limit}, or None.

    A line longer than C{limit} holds a whole window [k*limit/2,
    (k+1)*limit/2] without a CRLF; one C{find} per window rules that out
    for ordinary text, and only a chunk with such a window is split.
    """
    half = limit // 2
    for start in range(0, len(chunk), half):
        if chunk.find(b"\r\n", start, start + half + 1) < 0:
            break
    else:
        return None
    longest = max(chunk.split(b"\r\n"), key=len)
    return longest if len(longest) > limit else None


#: Bytes held behind a pending answer before the transport is paused.
HOLD_LIMIT = 256 * 1024


class SMTPServer(SecurityCommands, smtp.ESMTP):
    """
    One SMTP session.  The factory sets C{factory}, C{portal}, C{host},
    C{timeout}, C{callLater}, C{implicit_tls} (SMTPS: the endpoint did TLS)
    and C{require_auth} (submission and SMTPS) in C{buildProtocol}.
    """

    MAX_LENGTH = 64 * 1024
    max_recipients = 1000
    max_errors = 20
    timeout = 300
    implicit_tls = False
    require_auth = False
    factory = None

    def __init__(self, chal=None, contextFactory=None):
        smtp.ESMTP.__init__(self, chal, contextFactory)
        self.mode = COMMAND
        self._buffer = b""
        self._pos = 0
        self._waiting = None
        self._paused = False
        self._closing = False
        self._drained = []
        self._message = None
        self._datafailed = None
        self._errors = 0
        self._ehlo = False
        self.peer_ip = None
        self.account_id = None

    # -- connection ------------------------------------------------------

    def connectionMade(self):
        peer = self.transport.getPeer()
        self.peer_ip = getattr(peer, "host", None)
        self.canStartTLS = ITLSTransport.providedBy(self.transport) and self.ctx is not None
        self._helo = None
        if self.factory is not None:
            self.factory.connections.add(self)
            if self.factory.shutting_down:
                self.reply(replies.SHUTTING_DOWN)
                return
            if self._refused_at_connect():
                return
        self.sendCode(220, self.host + b" ESMTP zWMS ready")
        self.setTimeout(self.timeout)

    def _refused_at_connect(self):
        """
        P1 (BLOCKIPS): the receive policy refuses the peer at connect; its
        reply (554, RFC 5321 §3.1) is sent instead of the greeting, its
        lines go to MailBlock and the connection is closed.
        """
        policy = getattr(self.factory.services, "policy", None)
        if policy is None:
            return False
        try:
            verdict = policy.connect(self.peer_ip)
        except Exception:
            # Our fault (a damaged setting file): greet, the MAIL stage
            # answers 451 if it persists; never a refusal for it.
            self.logFailure(tfailure.Failure(), "Receive policy at connect")
            return False
        if not verdict.refused:
            return False
        for channel, text in verdict.log_lines():
            self.log(text, channel)
        self.sendCode(verdict.code, verdict.text)
        self._close()
        return True

    def connectionLost(self, reason=None):
        self._closing = True
        if self.factory is not None:
            self.factory.connections.discard(self)
        self._abortMessage()
        if self._onLogout:
            self._onLogout()
            self._onLogout = None
        self.setTimeout(None)

    def timeoutConnection(self):
        if self._waiting is not None:
            # We are the slow side (a store write): no idle time counts.
            self.setTimeout(self.timeout)
            return
        self._abortMessage()
        self.reply(replies.IDLE_TIMEOUT)

    @property
    def secure(self):
        """The session runs over TLS (STARTTLS done, or SMTPS)."""
        return bool(self.implicit_tls or self.startedTLS)

    def auth_allowed(self):
        """AUTH only over TLS or from loopback (SPEC S7)."""
        return self.secure or is_local_peer(self.peer_ip)

    def _close(self):
        if not self._closing:
            self._closing = True
            self.transport.loseConnection()

    # -- replies ---------------------------------------------------------

    def sendCode(self, code, message=b""):
        """
        Send a reply.  A 421 closes the connection; too many bad commands
        too.
        """
        if self._closing:
            return
        if isinstance(message, str):
            message = message.encode("utf-8")
        smtp.ESMTP.sendCode(self, code, message)
        if code == 421:
            self._close()
        elif code in ERROR_CODES:
            self._errors += 1
            if self._errors >= self.max_errors:
                self.reply(TOO_MANY_ERRORS)

    def reply(self, pair):
        """Send a C{(code, text)} pair of L{zwms.replies}."""
        code, text = pair
        self.sendCode(code, text)

    def log(self, text, channel=logs.MAILSERVER):
        """Write one line to a log channel, with the peer IP."""
        self.factory.services.logs.write(channel, text, peer=self.peer_ip)

    def logFailure(self, f, what="SMTP error"):
        """Our own fault goes to SystemError (DESIGN rule 4)."""
        self.log("%s: %s: %s" % (what, f.type.__name__, f.getErrorMessage()), logs.SYSTEMERROR)

    def _replyFailure(self, f):
        """
        Answer a failed validation: a L{Reply} with its text (and log line),
        an C{SMTPServerError} with its own; anything else is our fault: 451
        and a SystemError line (DESIGN rule 4).
        """
        if f.check(Reply):
            if f.value.log:
                self.log(f.value.log, f.value.channel)
            self.sendCode(f.value.code, f.value.text)
        elif f.check(smtp.SMTPServerError):
            self.sendCode(f.value.code, f.value.resp)
        else:
            self.logFailure(f)
            self.reply(replies.TEMPORARY_FAILURE)

    # -- framing ---------------------------------------------------------

    def dataReceived(self, data):
        if self._closing:
            return
        # Once per read, not per line.
        self.resetTimeout()
        self._buffer += data
        if self._waiting is not None:
            if not self._paused and len(self._buffer) - self._pos > HOLD_LIMIT:
                self._paused = True
                self.transport.pauseProducing()
            return
        self._drain()

    def _drain(self):
        """Run the buffered lines, one at a time, unless an answer is pending."""
        while self._waiting is None and not self._closing:
            if self.mode == DATA:
                if not self._dataChunk():
                    break
                continue
            end = self._buffer.find(b"\r\n", self._pos)
            if end < 0:
                break
            line = self._buffer[self._pos:end]
            self._pos = end + 2
            if len(line) > self.MAX_LENGTH:
                self.lineLengthExceeded(line)
                return
            self.lineReceived(line)
        if self._closing:
            return
        if self._pos:
            self._buffer = self._buffer[self._pos:]
            self._pos = 0
        # The +1 leaves room for the CR of a CRLF split across packets.
        if self._waiting is None and len(self._buffer) > self.MAX_LENGTH + 1:
            self.lineLengthExceeded(self._buffer)

    def _discardBuffer(self):
        self._buffer = b""
        self._pos = 0

    def lineLengthExceeded(self, line):
        """
        A line over 64 KiB: 500 and close (SPEC S1).  Reading on could run
        the rest of a body as commands (TWISTED-NOTES).
        """
        self._abortMessage()
        self._discardBuffer()
        self.log("Line too long (%d bytes), session closed" % (len(line),))
        self.reply(replies.LINE_TOO_LONG)
        self._close()

    def lineReceived(self, line):
        mode = self.mode
        if mode == DATA:
            self._guarded(self._dataLine, line)
        elif mode == AUTH:
            self._guarded(self._authLine, line)
        else:
            self._guarded(self._commandLine, line)

    def _guarded(self, handler, *args):
        """
        Run one handler; wait for the Deferred it returns; an unexpected
        error is a 451 (and, inside DATA or AUTH, the end of the session).
        """
        mode = self.mode
        try:
            result = handler(*args)
        except Exception:
            self.logFailure(tfailure.Failure())
            self.reply(replies.TEMPORARY_FAILURE)
            if mode != COMMAND:
                # State unknown inside DATA or AUTH: nothing was
                # acknowledged, so closing loses nothing.
                self._abortMessage()
                self._close()
            return
        if isinstance(result, defer.Deferred):
            self._waitFor(result)

    def _dataChunk(self):
        """
        DATA mode: hand the message every complete line buffered, at once,
        up to the terminating "." line (then end the data).  Lines end
        only at CRLF, so CRLF.CRLF is the only terminator (no smuggling
        with bare LF or CR); a line over MAX_LENGTH closes the session as
        in command mode.

        @return: False when no complete line is buffered.
        """
        buf, pos = self._buffer, self._pos
        if buf.startswith(b".\r\n", pos):
            self._pos = pos + 3
            self._guarded(self._endOfData)
            return True
        end = buf.find(b"\r\n.\r\n", pos)
        if end >= 0:
            stop, self._pos, final = end + 2, end + 5, True
        else:
            end = buf.rfind(b"\r\n", pos)
            if end < 0:
                return False
            stop = self._pos = end + 2
            final = False
        chunk = buf[pos:stop]
        if len(chunk) > self.MAX_LENGTH + 2:
            longest = _line_over(chunk, self.MAX_LENGTH)
            if longest is not None:
                self.lineLengthExceeded(longest)
                return False
        self._guarded(self._dataLines, chunk)
        if final and not self._closing:
            self._guarded(self._endOfData)
        return True

    def _dataLines(self, chunk):
        """
        Complete CRLF-ended DATA lines (no terminator among them): remove
        the transparency dot of each line starting with one (RFC 5321
        §4.5.2), over the whole chunk, and hand them to the message.
        """
        if self._datafailed is not None:
            return None
        if chunk[:1] == b".":
            chunk = chunk[1:]
        chunk = chunk.replace(b"\r\n.", b"\r\n")
        try:
            self._message.chunkReceived(chunk)
        except (Reply, smtp.SMTPServerError) as e:
            # Over the size limit or looping: swallow the rest, store nothing.
            self._datafailed = e
            self._message.connectionLost()
        return None

    def _waitFor(self, d):
        fired = []
        d.addBoth(lambda r: fired.append(True) or r)
        if fired:
            d.addErrback(self._unhandled)
            return
        self._waiting = d
        d.addErrback(self._unhandled)
        d.addBoth(self._resume)

    def _unhandled(self, f):
        self.logFailure(f)
        self.reply(replies.TEMPORARY_FAILURE)

    def _resume(self, ignored):
        self._waiting = None
        drained, self._drained = self._drained, []
        for d in drained:
            d.callback(None)
        if self._closing:
            return
        if self.factory is not None and self.factory.shutting_down:
            self.shutdown()
            return
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        self.resetTimeout()
        self._drain()

    def shutdown(self):
        """
        The service is stopping (SPEC X1): a pending answer (a store write
        after DATA) is given first, then 421 and close.

        @return: a Deferred firing when nothing of this session is pending.
        """
        if self._waiting is not None:
            d = defer.Deferred()
            self._drained.append(d)
            return d
        self._abortMessage()
        self.reply(replies.SHUTTING_DOWN)
        return defer.succeed(None)

    # -- commands --------------------------------------------------------

    COMMANDS = {
        b"HELO": "do_HELO", b"EHLO": "do_EHLO", b"MAIL": "do_MAIL", b"RCPT": "do_RCPT",
        b"DATA": "do_DATA", b"RSET": "do_RSET", b"NOOP": "do_NOOP", b"QUIT": "do_QUIT",
        b"VRFY": "do_VRFY", b"STARTTLS": "ext_STARTTLS", b"AUTH": "ext_AUTH",
    }

    def lookupMethod(self, command):
        if isinstance(command, str):
            command = command.encode("ascii", "replace")
        name = self.COMMANDS.get(command.upper())
        return getattr(self, name) if name else None

    def _commandLine(self, line):
        if self.factory is not None and self.factory.shutting_down:
            self.reply(replies.SHUTTING_DOWN)
            return None
        parts = line.strip().split(None, 1)
        method = self.lookupMethod(parts[0]) if parts else None
        if method is None:
            return self.do_UNKNOWN(line)
        return method(parts[1].strip() if len(parts) > 1 else b"")

    def do_UNKNOWN(self, line):
        """
        502 and the §36 "Unknown message" line.  Only a command-like verb is
        logged: a client that lost track of an AUTH exchange may be sending
        its base64 credentials as "commands".
        """
        parts = line.split(None, 1)
        verb = parts[0] if parts else b""
        shown = verb.decode("ascii").upper() if VERB_RE.match(verb) else "(%d bytes)" % len(line)
        self.log("%s %s" % (replies.LOG_UNKNOWN_MESSAGE, shown))
        self.reply(replies.UNKNOWN_QUERY)

    def do_VRFY(self, rest):
        # Refused: it would tell harvesters which mailboxes exist.
        self.do_UNKNOWN(b"VRFY")

    def do_NOOP(self, rest):
        self.sendCode(250, b"OK")

    def do_QUIT(self, rest):
        self.sendCode(221, self.host + b" closing connection")
        self._close()

    def do_RSET(self, rest):
        self._resetEnvelope()
        self.sendCode(250, b"OK")

    def _resetEnvelope(self):
        self._from = None
        self._to = []

    def _greet(self, rest, ehlo):
        name = rest.split(None, 1)[0] if rest else b""
        if not HELO_RE.match(name) or CONTROL_RE.search(rest):
            self.reply(BAD_HELO)
            return False
        self._helo = (name, (self.peer_ip or "local").encode("ascii"))
        self._ehlo = ehlo
        self._resetEnvelope()
        return True

    def do_HELO(self, rest):
        if self._greet(rest, ehlo=False):
            self.sendCode(250, self.host + b" Hello " + self._helo[1])

    def do_EHLO(self, rest):
        if self._greet(rest, ehlo=True):
            self.sendCode(250, self.host + b" Hello " + self._helo[1] + b"\n"
                          + self.listExtensions())

    def max_size(self):
        return self.factory.max_message_size() if self.factory is not None else 0

    def extensions(self):
        ext = {}
        size = self.max_size()
        ext[b"SIZE"] = [b"%d" % size] if size else None
        ext[b"8BITMIME"] = None
        ext[b"PIPELINING"] = None
        if self.canStartTLS and not self.secure:
            ext[b"STARTTLS"] = None
        if self.auth_allowed() and self.challengers and self.portal is not None:
            ext[b"AUTH"] = list(self.challengers)
        return ext

    def _parsePath(self, rest, keyword):
        """(text, params) of `FROM:<path> params`, or None on bad syntax."""
        m = PATH_RE.match(rest)
        if not m or m.group(1).upper() != keyword:
            return None
        raw = m.group(2) if m.group(2) is not None else m.group(3)
        params = {}
        for item in (m.group(4) or b"").split():
            p = PARAM_RE.match(item)
            if not p:
                return None
            params[p.group(1).upper()] = p.group(2)
        # Non-ASCII bytes are kept visible (and refused by is_address).
        return raw.decode("ascii", "backslashreplace"), params

    def do_MAIL(self, rest):
        if self._helo is None:
            return self.reply(SEND_HELO_FIRST)
        if self.require_auth and not self.authenticated:
            return self.reply(AUTH_REQUIRED)
        if self._from is not None:
            return self.reply(NESTED_MAIL)
        parsed = self._parsePath(rest, b"FROM")
        if parsed is None:
            return self.reply(MAIL_SYNTAX)
        text, params = parsed
        size = None
        for name, value in params.items():
            if name == b"SIZE":
                if value is None or not value.isdigit():
                    return self.reply(MAIL_SYNTAX)
                size = int(value)
            elif name == b"BODY":
                if (value or b"").upper() not in (b"7BIT", b"8BITMIME"):
                    return self.reply(BAD_PARAMETER)
            elif name != b"AUTH":
                return self.reply(BAD_PARAMETER)
        self._to = []
        d = self._ensureDelivery()
        d.addCallback(lambda delivery: delivery.validateFrom(self._helo, Path(text)))
        d.addCallback(self._checkSize, size)
        d.addCallbacks(self._fromAccepted, self._replyFailure)
        return d

    def _checkSize(self, origin, size):
        """
        SIZE= over the limit (MAXMAILSIZE, or the authenticated account's
        own sendsize, SPEC S7) is refused at MAIL (RFC 1870).
        """
        limit = self.delivery.max_size()
        if size is not None and limit and size > limit:
            raise Reply(*replies.OVER_WORK_SIZE, log="%s <%s> (SIZE=%d)"
                        % (replies.LOG_WORK_LIMIT, origin, size))
        return origin

    def _ensureDelivery(self):
        """The session's delivery: anonymous through the portal until AUTH."""
        if self.delivery is not None:
            return defer.succeed(self.delivery)
        if self.portal is None:
            return defer.fail(Reply(*AUTH_REQUIRED))
        d = self.portal.login(credentials.Anonymous(), None, smtp.IMessageDelivery)

        def loggedIn(result):
            iface, avatar, logout = result
            self.delivery, self._onLogout = avatar, logout
            return avatar

        def refused(f):
            f.trap(cred_error.UnauthorizedLogin, cred_error.UnhandledCredentials)
            raise Reply(*AUTH_REQUIRED)

        d.addCallbacks(loggedIn, refused)
        return d

    def _fromAccepted(self, origin):
        self._from = origin
        self.sendCode(250, b"Sender address accepted")

    def do_RCPT(self, rest):
        if self._from is None:
            return self.reply(NEED_MAIL)
        parsed = self._parsePath(rest, b"TO")
        if parsed is None:
            return self.reply(RCPT_SYNTAX)
        text, params = parsed
        if params:
            return self.reply(BAD_PARAMETER)
        limit = self.max_recipients
        account_limit = self.delivery.recipient_limit()
        if account_limit:
            limit = min(limit, account_limit)
        if len(self._to) >= limit:
            return self.reply(replies.TOO_MANY_RECIPIENTS)
        user = EnvelopeUser(Path(text), self._helo, self, self._from)
        d = defer.maybeDeferred(self.delivery.validateTo, user)
        d.addCallbacks(self._toAccepted, self._replyFailure, callbackArgs=(user,))
        return d

    def _toAccepted(self, recipient, user):
        self._to.append((user, recipient))
        self.sendCode(250, b"Recipient address accepted")

    def with_name(self):
        """RFC 3848 protocol name for the Received header."""
        if not self._ehlo:
            return "SMTP"
        return "ESMTP" + ("S" if self.secure else "") + ("A" if self.authenticated else "")

    def do_DATA(self, rest):
        if rest:
            return self.reply(NO_ARGUMENTS)
        if self._from is None:
            return self.reply(NEED_MAIL)
        if not self._to:
            return self.reply(NO_VALID_RECIPIENTS)
        envelope = Envelope(
            peer_ip=self.peer_ip or "", helo=self._helo[0].decode("ascii"),
            with_name=self.with_name(), sender=str(self._from),
            recipients=tuple(recipient for _, recipient in self._to))
        self._resetEnvelope()
        self._message = self.delivery.message(envelope)
        self._datafailed = None
        self.mode = DATA
        self.sendCode(354, b"Start mail input; end with <CRLF>.<CRLF>")

    def _dataLine(self, line):
        if line == b".":
            return self._endOfData()
        if line[:1] == b".":
            line = line[1:]
        if self._datafailed is not None:
            return None
        try:
            self._message.lineReceived(line)
        except (Reply, smtp.SMTPServerError) as e:
            # Over the size limit or looping: swallow the rest, store nothing.
            self._datafailed = e
            self._message.connectionLost()
        return None

    def _endOfData(self):
        self.mode = COMMAND
        message, self._message = self._message, None
        failed, self._datafailed = self._datafailed, None
        if failed is not None:
            self._replyFailure(tfailure.Failure(failed))
            return None
        d = defer.maybeDeferred(message.eomReceived)
        # A storage failure arrives as a 451 Reply (Message.eomReceived);
        # anything unexpected is made a 451 by _replyFailure: never a 5xx
        # for our own fault, the client retries.
        d.addCallbacks(lambda ignored: self.sendCode(250, b"OK. Mail received"),
                       self._replyFailure)
        return d

    def _abortMessage(self):
        if self._message is not None:
            message, self._message = self._message, None
            try:
                message.connectionLost()
            finally:
                self.mode = COMMAND
