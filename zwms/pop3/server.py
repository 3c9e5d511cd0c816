# -*- test-case-name: tests.test_pop3_protocol -*-
"""
The POP3 protocol (SPEC O1; RFC 1939, RFC 2449 CAPA, RFC 2595 STLS).

It subclasses twisted.mail.pop3.POP3 for the greeting, timeouts and
replies, but replaces its command handling, which has the holes listed in
TWISTED-NOTES.md:

 - Dispatch is one table (command -> handler, arity, state).  A command
   with missing or bad arguments ("USER" alone, "RETR x", "LIST 999") gets
   -ERR and the session goes on; an unexpected error in a handler is logged
   to SystemError and answered -ERR, never a dropped connection.
 - Commands are answered strictly in order: while one waits for the store
   (PASS, STAT, RETR, QUIT …) the next lines queue up, and the transport is
   paused when the queue grows.  That makes PIPELINING safe to advertise.
 - STLS: +OK, then startTLS; plaintext already received after STLS (in the
   same packet or queued) is thrown away (CVE-2011-0411 class).
 - APOP is refused (Twisted's is broken on Python 3); the greeting carries
   no timestamp.  AUTH (SASL) is not offered.
 - Messages go out CRLF-normalised and dot-stuffed over the whole message
   (zwms.pop3.wire); C{transformChunk} returns each chunk unchanged.
 - Each answer is written whole, straight to a plain TCP socket when
   nothing is buffered (L{POP3Server._write}); a client that does not read
   makes the server hold at most about FLUSH_EVERY bytes.
 - A line longer than MAX_LENGTH gets -ERR and the connection is closed.
 - Idle timeout 10 minutes (RFC 1939 §3): the connection is closed without
   a reply and without the UPDATE state.
 - Three failed logins close the connection.

Plaintext USER/PASS is allowed on port 110 even without STLS, by choice:
mail clients still log in that way; STLS is offered and port 995 serves
implicit TLS.  An administrator who wants TLS only serves POP3 on 995 and
sets --pop3 none.
"""

import collections
import io
import re

from twisted.internet import defer, tcp
from twisted.internet.interfaces import ISSLTransport
from twisted.mail import pop3
from twisted.protocols import basic
from twisted.python.failure import Failure

from zwms import logs
from zwms.errors import NoSuchMessage
from zwms.pop3 import texts
from zwms.pop3.login import LoginRefused
from zwms.pop3.wire import TERMINATOR, dot_stuff, normalise, top

#: RFC 1939 §3: the autologout timer is at least 10 minutes.
IDLE_TIMEOUT = 600

#: Longest command line, without its line end.  RFC 2449 allows 255 octets;
#: some clients send long passwords, so we take more, but far less than a
#: message.
MAX_LINE = 1024

#: Queued (pipelined) lines before the transport is paused.
PAUSE_AT = 100

#: RETR/TOP answers up to this size are written to the transport at once
#: (profiled: the producer machinery cost more than the message itself for
#: the usual 10 KB mail) ...
DIRECT_WRITE = 64 * 1024

#: ... until this much was written so: the next answer then goes through a
#: producer, whose end waits for the transport's buffer to drain, so a
#: client that pipelines RETRs without reading holds at most this much.
FLUSH_EVERY = 1024 * 1024

#: Queued in place of an overlong line: answered in turn, then the close.
_TOO_LONG = object()

AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"
ANY = "ANY"

#: Message numbers and line counts: plain digits (int() would also take
#: "+1", " 1" and "1_0").
_NUMBER_RE = re.compile(rb"^[0-9]{1,9}$")

#: command -> (handler name, least args, most args (None = any), state, syntax)
COMMANDS = {
    b"CAPA": ("do_CAPA", 0, 0, ANY, b"CAPA"),
    b"USER": ("do_USER", 1, 1, AUTHORIZATION, b"USER name"),
    b"PASS": ("do_PASS", 1, 1, AUTHORIZATION, b"PASS password"),
    b"APOP": ("do_APOP", 0, None, ANY, b"APOP"),
    b"AUTH": ("do_AUTH", 0, None, ANY, b"AUTH"),
    b"STLS": ("do_STLS", 0, 0, AUTHORIZATION, b"STLS"),
    b"QUIT": ("do_QUIT", 0, 0, ANY, b"QUIT"),
    b"STAT": ("do_STAT", 0, 0, TRANSACTION, b"STAT"),
    b"LIST": ("do_LIST", 0, 1, TRANSACTION, b"LIST [msg]"),
    b"UIDL": ("do_UIDL", 0, 1, TRANSACTION, b"UIDL [msg]"),
    b"RETR": ("do_RETR", 1, 1, TRANSACTION, b"RETR msg"),
    b"TOP": ("do_TOP", 2, 2, TRANSACTION, b"TOP msg lines"),
    b"DELE": ("do_DELE", 1, 1, TRANSACTION, b"DELE msg"),
    b"RSET": ("do_RSET", 0, 0, TRANSACTION, b"RSET"),
    b"NOOP": ("do_NOOP", 0, 0, TRANSACTION, b"NOOP"),
}


class _ProgressFile(io.BytesIO):
    """A message being sent: each chunk read restarts the idle timer."""

    def __init__(self, data, progress):
        io.BytesIO.__init__(self, data)
        self._progress = progress

    def read(self, size=-1):
        self._progress()
        return io.BytesIO.read(self, size)


class POP3Server(pop3.POP3):
    """
    One POP3 session.  Set by the factory: C{factory} (a
    L{zwms.pop3.factory.POP3Factory}), C{timeOut}, C{callLater}.

    @ivar account: the L{zwms.account.Account} once logged in.
    @ivar mbox: the L{zwms.pop3.mailbox.IZWMSMailbox} once logged in.
    """

    magic = b""
    timeOut = IDLE_TIMEOUT
    MAX_LENGTH = MAX_LINE
    account = None

    def __init__(self):
        self._buffer = b""
        self._pending = collections.deque()
        self._busy = False
        self._draining = False
        self._paused = False
        self._closing = False
        self._lost = False
        self._quit = False
        self._epoch = 0
        self._user = None
        self._failures = 0
        self._secure = False
        self._deleted = set()
        self._retrieved = set()
        self._sender = None
        self._unflushed = 0

    # -- connection ------------------------------------------------------------

    def connectionMade(self):
        self._secure = bool(self.factory.implicit_tls) or ISSLTransport.providedBy(self.transport)
        self.setTimeout(self.timeOut)
        if self.factory.stopping:
            self.failResponse(texts.SHUTTING_DOWN)
            self._close()
            return
        self.successResponse(texts.GREETING)

    def connectionLost(self, reason):
        self._lost = True
        self._pending.clear()
        if self.mbox is not None and not self._quit:
            self._log(logs.POP, texts.LOG_NO_QUIT.format(id=self.account.id))
        pop3.POP3.connectionLost(self, reason)

    def timeoutConnection(self):
        # RFC 1939 §3: close without a reply and without the UPDATE state.
        self._log(logs.POP, texts.LOG_TIMEOUT)
        self._closing = True
        self._pending.clear()
        if self._sender is not None or self._unflushed:
            # A client that stopped reading mid-RETR (or after RETRs
            # written at once) would keep a graceful close waiting for the
            # send buffer forever.
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def _close(self):
        self._closing = True
        self._pending.clear()
        self.transport.loseConnection()

    def _peer_ip(self):
        return getattr(self.transport.getPeer(), "host", None)

    def _log(self, channel, text):
        self.factory.services.logs.write(channel, text, peer=self._peer_ip())

    # -- replies ---------------------------------------------------------------

    def _write(self, data):
        """
        Write one whole answer.

        On a plain TCP connection with nothing waiting in Twisted's buffer
        the bytes go to the socket at once (profiled, issue 8: a write
        through the buffer registers the socket for writing and
        unregisters it again on the next turn of the reactor, a quarter of
        a RETR's time); what the socket does not take, and any answer on
        TLS or behind buffered bytes, goes through C{transport.write}, in
        order.

        @return: True when every byte went to the socket (this process
            holds none of it).
        """
        t = self.transport
        if (type(t) is tcp.Server and not t.TLS and t.connected and not t.disconnecting
                and not t._tempDataLen and len(t.dataBuffer) == t.offset):
            sent = t.writeSomeData(data)
            if sent.__class__ is int and sent > 0:
                if sent == len(data):
                    return True
                data = data[sent:]
            # 0 (the socket buffer is full) or a lost connection: Twisted's
            # own path below waits for the socket or reports the loss.
        t.write(data)
        return False

    def successResponse(self, message=b""):
        self._write(b"+OK " + message + b"\r\n" if message else b"+OK\r\n")

    def failResponse(self, message=b""):
        self._write(b"-ERR " + message + b"\r\n" if message else b"-ERR\r\n")

    def sendLine(self, line):
        self._write(line + b"\r\n")

    def transformChunk(self, chunk):
        """Messages are CRLF-normalised and dot-stuffed before chunking."""
        return chunk

    # -- input -----------------------------------------------------------------

    def dataReceived(self, data):
        # Lines end with LF; a CR before it is dropped, so clients (and
        # people with netcat) that send bare LF are understood too.
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        epoch = self._epoch
        for line in lines:
            if self._closing or self._epoch != epoch:
                # QUIT, an error that closed the session, or STLS: what
                # came after it in the same packet is not for us.
                return
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.MAX_LENGTH:
                return self.lineLengthExceeded(line)
            self.lineReceived(line)
        # An unfinished line may still get its CR.
        if len(self._buffer) > self.MAX_LENGTH + 1:
            self.lineLengthExceeded(self._buffer)

    def lineLengthExceeded(self, line):
        self._buffer = b""
        if self._closing:
            return
        # No more input; the -ERR comes after the replies still owed.
        self._closing = True
        if self._busy or self._pending:
            self._pending.append(_TOO_LONG)
        else:
            self._too_long()

    def _too_long(self):
        self.failResponse(texts.LINE_TOO_LONG)
        self._log(logs.POP, texts.LOG_LINE_TOO_LONG)
        self._close()

    def lineReceived(self, line):
        if self._closing:
            return
        self.resetTimeout()
        if self._busy or self._pending:
            self._pending.append(line)
            if len(self._pending) >= PAUSE_AT and not self._paused:
                self._paused = True
                self.transport.pauseProducing()
            if not self._busy and not self._draining:
                self._drain()
            return
        self._run(line)

    def _run(self, line):
        if line is _TOO_LONG:
            self._too_long()
            return
        result = self._dispatch(line)
        if isinstance(result, defer.Deferred):
            self._busy = True
            result.addErrback(self._unexpected)
            result.addBoth(self._finished)

    def _finished(self, _):
        self._busy = False
        self.resetTimeout()
        if not self._draining:
            self._drain()

    def _drain(self):
        # A loop, not recursion: a long pipeline of commands answered at
        # once would otherwise nest one call per command.
        self._draining = True
        try:
            # Lines queued before a QUIT or an overlong line still run;
            # the session clears the queue when it must not.
            while self._pending and not self._busy and not self._lost:
                self._run(self._pending.popleft())
        finally:
            self._draining = False
        if self._paused and not self._busy and not self._closing and not self._lost:
            self._paused = False
            self.transport.resumeProducing()

    def _dispatch(self, line):
        """
        Run one command line; never raises.

        @return: a Deferred while the command is still working, else None.
        """
        parts = line.split()
        if not parts:
            self.failResponse(texts.EMPTY_COMMAND)
            return None
        keyword = parts[0].upper()
        spec = COMMANDS.get(keyword)
        if spec is None:
            self.failResponse(texts.UNKNOWN_COMMAND)
            return None
        handler, least, most, state, syntax = spec
        if state == TRANSACTION and self.mbox is None:
            self.failResponse(texts.LOG_IN_FIRST)
            return None
        if state == AUTHORIZATION and self.mbox is not None:
            self.failResponse(texts.ALREADY_LOGGED_IN)
            return None
        if keyword == b"PASS":
            # RFC 1939: the password is the rest of the line, spaces and all.
            rest = line.lstrip()[len(parts[0]) + 1:]
            args = [rest] if rest else []
        else:
            args = parts[1:]
        if len(args) < least or (most is not None and len(args) > most):
            self.failResponse(texts.usage(syntax))
            return None
        try:
            return getattr(self, handler)(*args)
        except Exception:
            self._unexpected(None)
            return None

    def _unexpected(self, failure):
        # Anything a handler did not expect: log it, answer, keep serving.
        failure = failure or Failure()
        who = self.account.id if self.account is not None else "-"
        self._log(logs.SYSTEMERROR, texts.LOG_STORE_ERROR.format(
            id=who, error=failure.getErrorMessage() or failure.type.__name__))
        if not self._lost:
            self.failResponse(texts.SERVER_ERROR)
        return None

    # -- AUTHORIZATION state ---------------------------------------------------

    def listCapabilities(self):
        """RFC 2449 capabilities: only what this server does."""
        caps = [b"TOP", b"UIDL", b"USER", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]
        if self.mbox is None and self._tls_available():
            caps.append(b"STLS")
        caps.append(b"IMPLEMENTATION zWMS")
        return caps

    def do_CAPA(self):
        self._write(b"".join([b"+OK " + texts.CAPA_FOLLOWS + b"\r\n"]
                             + [cap + b"\r\n" for cap in self.listCapabilities()]
                             + [TERMINATOR]))

    def _tls_available(self):
        return self.factory.tls_context is not None and not self._secure

    def do_STLS(self):
        if not self._tls_available():
            self.failResponse(texts.ALREADY_TLS if self._secure else texts.NO_TLS)
            return
        self.successResponse(texts.BEGIN_TLS)
        # Forget all plaintext received after STLS and any USER given in
        # plaintext (RFC 2595 §4).
        self._buffer = b""
        self._pending.clear()
        self._epoch += 1
        self._user = None
        self.transport.startTLS(self.factory.tls_context)
        self._secure = True

    def do_APOP(self, *args):
        self.failResponse(texts.APOP_REFUSED)

    def do_AUTH(self, *args):
        self.failResponse(texts.AUTH_REFUSED)

    def do_USER(self, user):
        if not self.factory.services.settings["POP3"]:
            self._user = None
            self.failResponse(texts.POP3_OFF)
            self._log(logs.POP, texts.LOG_LOGIN_FAILED.format(
                login=_printable(user), reason=texts.REASON_OFF))
            return
        self._user = user
        self.successResponse(texts.SEND_PASS)

    def do_PASS(self, password):
        if self._user is None:
            self.failResponse(texts.USER_FIRST)
            return None
        user, self._user = self._user, None
        d = self.factory.login(user, password)
        d.addCallback(self._authenticated)
        d.addErrback(self._login_failed, user)
        return d

    def _authenticated(self, account):
        d = defer.maybeDeferred(self.factory.open_mailbox, account)
        d.addCallback(self._logged_in, account)
        return d

    def _logged_in(self, mbox, account):
        if self._lost:
            return
        self.account = account
        self.mbox = mbox
        ip = self._peer_ip()
        if ip:
            try:
                # SPEC O3: this IP may now relay (POP-before-SMTP, S6).
                self.factory.services.relay_memory.remember(ip, account.id)
            except Exception as e:
                self._log(logs.SYSTEMERROR, texts.LOG_STORE_ERROR.format(
                    id=account.id, error="relay memory: %s" % (e,)))
        count = mbox.messageCount()
        self._log(logs.POP, texts.LOG_LOGIN.format(id=account.id, count=count))
        self.successResponse(texts.maildrop(count))

    def _login_failed(self, failure, user):
        if not failure.check(LoginRefused):
            return failure
        refused = failure.value
        self._failures += 1
        self._log(logs.POP, texts.LOG_LOGIN_FAILED.format(
            login=_printable(user), reason=refused.reason))
        if self._lost:
            return None
        self.failResponse(refused.reply)
        if self._failures >= self.factory.max_failures:
            self._log(logs.POP, texts.LOG_TOO_MANY_FAILURES)
            self._close()
        return None

    # -- TRANSACTION state -----------------------------------------------------

    def _index(self, arg):
        """
        The 0-based index of message number C{arg}, or None after an -ERR.
        """
        if not _NUMBER_RE.match(arg):
            self.failResponse(texts.BAD_NUMBER)
            return None
        number = int(arg)
        if not 1 <= number <= self.mbox.messageCount():
            self.failResponse(texts.NO_SUCH_MESSAGE)
            return None
        if number - 1 in self._deleted:
            self.failResponse(texts.already_deleted(number))
            return None
        return number - 1

    def _store_failed(self, failure):
        return self._unexpected(failure)

    def do_STAT(self):
        def listed(sizes):
            live = [s for i, s in enumerate(sizes) if i not in self._deleted]
            self.successResponse(b"%d %d" % (len(live), sum(live)))
        return defer.maybeDeferred(self.mbox.listMessages).addCallbacks(
            listed, self._store_failed)

    def do_LIST(self, arg=None):
        if arg is None:
            def listed(sizes):
                live = [(i + 1, s) for i, s in enumerate(sizes) if i not in self._deleted]
                self._write(b"".join(
                    [b"+OK " + texts.listing(len(live), sum(s for _, s in live)) + b"\r\n"]
                    + [b"%d %d\r\n" % pair for pair in live] + [TERMINATOR]))
            return defer.maybeDeferred(self.mbox.listMessages).addCallbacks(
                listed, self._store_failed)
        index = self._index(arg)
        if index is None:
            return None
        return defer.maybeDeferred(self.mbox.listMessages, index).addCallbacks(
            lambda size: self.successResponse(b"%d %d" % (index + 1, size)),
            self._store_failed)

    def do_UIDL(self, arg=None):
        if arg is None:
            lines = [b"%d %s\r\n" % (i + 1, self.mbox.getUidl(i))
                     for i in range(self.mbox.messageCount()) if i not in self._deleted]
            self._write(b"".join([b"+OK\r\n"] + lines + [TERMINATOR]))
            return
        index = self._index(arg)
        if index is not None:
            self.successResponse(b"%d %s" % (index + 1, self.mbox.getUidl(index)))

    def do_RETR(self, arg):
        index = self._index(arg)
        if index is None:
            return None
        return self._retrieve(index, None)

    def do_TOP(self, arg, count):
        index = self._index(arg)
        if index is None:
            return None
        if not _NUMBER_RE.match(count):
            self.failResponse(texts.BAD_LINE_COUNT)
            return None
        return self._retrieve(index, int(count))

    def _retrieve(self, index, lines):
        """
        Send message C{index} (or its top): the mailbox may answer at once
        (no Deferred to build for the usual small mail) or with a Deferred.
        """
        try:
            message = self.mbox.getMessage(index)
        except Exception:
            return self._read_failed(Failure())
        if isinstance(message, defer.Deferred):
            return message.addCallbacks(self._send_message, self._read_failed,
                                        callbackArgs=(index, lines))
        return self._send_message(message, index, lines)

    def _read_failed(self, failure):
        if failure.check(NoSuchMessage):
            self.failResponse(texts.MESSAGE_GONE)
        elif failure.check(ValueError, IndexError):
            self.failResponse(texts.NO_SUCH_MESSAGE)
        else:
            return self._store_failed(failure)

    def _send_message(self, message, index, lines):
        """
        Send a message (RETR) or its top (TOP, C{lines} body lines).  A RETR
        counts as retrieved only once every byte went to the transport.
        """
        data = message.read()
        # (The mailbox knows when the stored bytes are CRLF-clean already,
        # and when they hold no line to dot-stuff either.)
        plain = getattr(message, "plain", False)
        if not plain and not getattr(message, "clean", False):
            data = normalise(data)
        if lines is None:
            status = b"+OK " + texts.octets(len(data)) + b"\r\n"
        else:
            data = top(data, lines)
            status = b"+OK " + texts.TOP_FOLLOWS + b"\r\n"
        payload = data if plain else dot_stuff(data)

        def sent(_):
            self._sender = None
            if lines is None:
                self._retrieved.add(index)
                self.mbox.messageRetrieved(index)

        size = len(status) + len(payload) + len(TERMINATOR)
        if size <= DIRECT_WRITE and self._unflushed + size <= FLUSH_EVERY:
            if self._write(b"".join((status, payload, TERMINATOR))):
                # In the socket: nothing held here (it took the buffered
                # bytes before, or this would have been buffered too).
                self._unflushed = 0
            else:
                self._unflushed += size
            sent(None)
            return None
        self._unflushed = 0
        self._write(status)
        sender = self._sender = basic.FileSender()
        d = sender.beginFileTransfer(_ProgressFile(payload + TERMINATOR, self.resetTimeout),
                                     self.transport, self.transformChunk)

        def broken(failure):
            # The consumer went away (connection lost): nothing to answer.
            self._sender = None
            self._closing = True
            self.transport.loseConnection()

        return d.addCallbacks(sent, broken)

    def do_DELE(self, arg):
        index = self._index(arg)
        if index is None:
            return
        self.mbox.deleteMessage(index)
        self._deleted.add(index)
        self.successResponse(texts.deleted(index + 1))

    def do_RSET(self):
        self.mbox.undeleteMessages()
        self._deleted.clear()
        self.successResponse(texts.maildrop(self.mbox.messageCount()))

    def do_NOOP(self):
        self.successResponse()

    # -- QUIT (UPDATE state) ---------------------------------------------------

    def do_QUIT(self):
        self._quit = True
        self._closing = True
        self._pending.clear()
        if self.mbox is None:
            self.successResponse(texts.SIGNING_OFF)
            self.transport.loseConnection()
            return None
        # SPEC §0, O2: retrieved mails become "fetched", DELE'd ones go; the
        # +OK is sent only once that is durable.
        d = defer.maybeDeferred(self.mbox.sync)
        d.addCallbacks(self._synced, self._sync_failed)
        d.addBoth(lambda _: self.transport.loseConnection())
        return d

    def _synced(self, _):
        self._log(logs.POP, texts.LOG_LOGOUT.format(
            id=self.account.id, retrieved=len(self._retrieved), deleted=len(self._deleted)))
        self.successResponse(texts.SIGNING_OFF)

    def _sync_failed(self, failure):
        self._log(logs.SYSTEMERROR, texts.LOG_STORE_ERROR.format(
            id=self.account.id, error=failure.getErrorMessage()))
        self.failResponse(texts.NOT_REMOVED)


def _printable(login):
    """A login name fit for a log line."""
    return login.decode("utf-8", "replace")[:100]
