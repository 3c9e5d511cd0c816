# -*- test-case-name: tests.test_pop3_policy -*-
"""
The POP3 view of an account's Inbox, with the policy of seed §31 (SPEC O2).

Which mails a session offers is decided once, at login (L{select_offered}):

 - only the Inbox;
 - without POP3 share (the account's C{pop3share} or the POP3SHARE setting)
   only mails never fetched before: a fetched mail is never offered again,
   even when the client's cache is cleared;
 - with SENDNEW=1 only unread (not seen) mails;
 - bad mail is withheld when the account's C{badmailpop3} is set (§32);
 - at most POP3COUNT mails (0 = no limit), the newest ones.

Within the session the offered mails are numbered oldest first (message 1
is the oldest offered), the order clients expect; so a mailbox of 250 new
mails with POP3COUNT=100 hands over the newest 100, and each later session
moves on to older ones (§31: "전송할 때마다 예전 메일 쪽으로 전송 위치가
옮겨집니다").

"Fetched" (SPEC §0): a mail is marked fetched when it was RETR'd (not TOP'd,
not only listed) in a session that ended with QUIT; L{POP3Mailbox.sync}
runs at QUIT, marks the retrieved mails, then removes the DELE'd ones.
Without QUIT nothing is marked or removed (RFC 1939 §6).

There is no exclusive maildrop lock (RFC 1939 §8 asks for one): several
clients may share an account (POP3 share exists for that), and a
half-dead connection must not lock its owner out until it times out.
"""

import io

from twisted.internet import defer
from twisted.mail.interfaces import IMailboxPOP3
from zope.interface import implementer

from zwms.errors import NoSuchMessage
from zwms.pop3.wire import pop3_facts, unique_id, wire_size

INBOX = "Inbox"


class IZWMSMailbox(IMailboxPOP3):
    """
    Twisted's POP3 mailbox (0-based indexes) plus what the zWMS protocol
    needs: a message count that does not read messages, and word of which
    messages were retrieved.  C{listMessages} and C{getMessage} may return
    Deferreds; C{sync} returns a Deferred firing with (retrieved, deleted)
    counts once the changes are durable.
    """

    def messageCount():
        """@return: the number of messages offered in this session."""

    def messageRetrieved(index):
        """Note that message C{index} was sent in full by RETR."""


def select_offered(infos, account, settings):
    """
    Choose the mails a session offers (seed §31, SPEC O2).

    @param infos: L{zwms.account.MessageInfo} rows of the Inbox.
    @param account: the L{zwms.account.Account}.
    @param settings: the L{zwms.config.Settings}.
    @return: the offered rows, oldest first.
    """
    share = account.pop3share or settings["POP3SHARE"]
    only_new = settings["SENDNEW"]
    withhold_bad = account.badmailpop3
    limit = settings["POP3COUNT"]
    chosen = [m for m in infos
              if (share or not m.fetched)
              and not (only_new and m.seen)
              and not (withhold_bad and m.bad)]
    # Stable sort: mails received in the same instant keep the store's order.
    chosen.sort(key=lambda m: m.received)
    if limit:
        chosen = chosen[-limit:]
    return chosen


#: Messages up to this size (the index's) are read in the reactor thread: one
#: read of a file the page cache most likely holds, cheaper than a thread
#: hop; larger ones are read in a thread.
INLINE_READ = 256 * 1024


def _now(f, *args):
    """Run C{f} at once (no thread given)."""
    return f(*args)


class _Message(io.BytesIO):
    """
    A message's bytes; C{clean}: already in the CRLF form POP3 sends;
    C{plain}: also without a line to dot-stuff (sent as it is).
    """

    clean = False
    plain = False


@implementer(IZWMSMailbox)
class POP3Mailbox:
    """
    The offered mails of one session, read through L{zwms.interfaces.IMailStore}.

    Sizes (LIST, STAT) are those of the CRLF form the client receives
    (L{zwms.pop3.wire.wire_size}: a stored message may hold bare LFs).  The
    store keeps them in its index at delivery (C{pop3_rows}), so listing
    reads no message; a size it lacks (a message indexed by reindex) is
    measured once, all of them in one thread job, and handed back to the
    store (C{record_pop3}) for the next session.
    """

    loginDelay = 0
    messageExpiration = None

    def __init__(self, mail, account_id, offered, folder=INBOX, wire=None, run_blocking=None,
                 plain=None):
        """
        @param mail: the L{zwms.interfaces.IMailStore}.
        @param offered: L{zwms.account.MessageInfo} rows, in session order.
        @param wire: C{{name: POP3 size}} known to the store, if any.
        @param plain: names of the messages the store says are sent as they
            are (CRLF-clean, no line starting with a dot), if any.
        @param run_blocking: C{f(*args)} running file reads off the reactor
            (large messages, sizes to measure), answering a Deferred or a
            value; None: inline.
        """
        self._mail = mail
        self.account_id = account_id
        self.folder = folder
        self._offered = list(offered)
        wire = wire or {}
        self._sizes = [wire.get(m.name) for m in self._offered]
        plain = plain or ()
        self._plain = [m.name in plain for m in self._offered]
        self._run = run_blocking or _now
        self._deleted = set()
        self._retrieved = set()

    def _check(self, index):
        if not isinstance(index, int) or not 0 <= index < len(self._offered):
            raise ValueError("no message %r" % (index,))

    def messageCount(self):
        return len(self._offered)

    def messageRetrieved(self, index):
        self._check(index)
        self._retrieved.add(index)


    def _measure(self, indexes):
        """
        (Thread) the POP3 facts of C{indexes}: C{{index: (size, plain)}}; a
        message removed meanwhile (webmail) is listed with the index's size,
        and RETR will say it is gone.
        """
        facts = {}
        for index in indexes:
            info = self._offered[index]
            try:
                facts[index] = pop3_facts(self._mail.read(self.account_id, self.folder,
                                                          info.name))
            except NoSuchMessage:
                facts[index] = (info.size, 0)
        return facts

    def _fill(self, indexes):
        """Measure the missing sizes of C{indexes}; a Deferred firing when known."""
        missing = [i for i in indexes if self._sizes[i] is None]
        if not missing:
            return defer.succeed(None)

        def measured(facts):
            for index, (size, plain) in facts.items():
                self._sizes[index] = size
                self._plain[index] = bool(plain)
            self._remember({self._offered[i].name: f for i, f in facts.items()})

        return defer.maybeDeferred(self._run, self._measure, missing).addCallback(measured)

    def _remember(self, facts):
        """Hand measured facts to the store's index (a cache: failures are harmless)."""
        record = getattr(self._mail, "record_pop3", None)
        if record is None or not facts:
            return
        d = defer.maybeDeferred(record, self.account_id, self.folder, facts)
        d.addErrback(lambda failure: None)

    def listMessages(self, index=None):
        if index is not None:
            self._check(index)
            if index in self._deleted:
                return 0
            if self._sizes[index] is not None:
                return self._sizes[index]
            return self._fill([index]).addCallback(lambda _: self._sizes[index])
        if None not in self._sizes:
            return self._listing()
        return self._fill(range(len(self._offered))).addCallback(lambda _: self._listing())

    def _listing(self):
        return [0 if i in self._deleted else size for i, size in enumerate(self._sizes)]

    def getMessage(self, index):
        """
        A file holding the stored bytes: at once for a message up to
        INLINE_READ bytes, else a Deferred (read in a thread).  Raises (or
        fails with) L{NoSuchMessage} when the mail is gone.
        """
        self._check(index)
        info = self._offered[index]
        if info.size <= INLINE_READ:
            return self._opened(self._mail.read(self.account_id, self.folder, info.name), index)
        d = defer.maybeDeferred(self._run, self._mail.read, self.account_id, self.folder,
                                info.name)
        return d.addCallback(self._opened, index)

    def _opened(self, data, index):
        if self._sizes[index] is None:
            self._sizes[index] = wire_size(data)
        message = _Message(data)
        # The store's size equals the length: the bytes are CRLF-clean (no
        # bare CR or LF, a final CRLF), nothing to normalise; "plain" (and
        # the file is still the size the index says): no dot to stuff either.
        message.clean = self._sizes[index] == len(data)
        message.plain = (message.clean and self._plain[index]
                         and len(data) == self._offered[index].size)
        return message

    def getUidl(self, index):
        self._check(index)
        return unique_id(self._offered[index].name)

    def deleteMessage(self, index):
        self._check(index)
        self._deleted.add(index)

    def undeleteMessages(self):
        self._deleted.clear()

    @defer.inlineCallbacks
    def sync(self):
        """
        QUIT (RFC 1939 UPDATE state): mark the retrieved mails fetched, then
        remove the deleted ones.  Deleted mails that were retrieved are
        marked too, so that a failed removal never re-offers a mail the
        client already has.

        @return: a Deferred firing with (retrieved count, deleted count).
        """
        retrieved = [self._offered[i].name for i in sorted(self._retrieved)]
        deleted = [self._offered[i].name for i in sorted(self._deleted)]
        if retrieved:
            yield defer.maybeDeferred(self._mail.mark_fetched, self.account_id, retrieved)
        if deleted:
            yield defer.maybeDeferred(self._mail.delete, self.account_id, self.folder, deleted)
        return len(retrieved), len(deleted)


def open_mailbox(services, account, run_blocking=None):
    """
    Load the Inbox index (and the POP3 sizes the store knows) and apply the
    §31 policy.

    @param run_blocking: see L{POP3Mailbox}.
    @return: a Deferred firing with a L{POP3Mailbox}.
    """
    mail = services.mail
    rows = getattr(mail, "pop3_rows", None)
    if rows is not None:
        # The file store: rows and POP3 sizes in one query.
        def loaded(infos):
            return POP3Mailbox(mail, account.id,
                               select_offered(infos, account, services.settings),
                               wire={m.name: m.wire for m in infos if m.wire is not None},
                               plain={m.name for m in infos if m.plain},
                               run_blocking=run_blocking)
        return defer.maybeDeferred(rows, account.id, INBOX).addCallback(loaded)

    def listed(infos):
        return POP3Mailbox(mail, account.id, select_offered(infos, account, services.settings),
                           run_blocking=run_blocking)

    return defer.maybeDeferred(mail.messages, account.id, INBOX).addCallback(listed)
