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
from zwms.pop3.wire import unique_id, wire_size

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


@implementer(IZWMSMailbox)
class POP3Mailbox:
    """
    The offered mails of one session, read through L{zwms.interfaces.IMailStore}.

    Sizes are computed when first asked (LIST, STAT) by reading the message
    once: a stored message may hold bare LFs, and the size must be that of
    the CRLF form the client receives (L{zwms.pop3.wire.wire_size}).
    """

    loginDelay = 0
    messageExpiration = None

    def __init__(self, mail, account_id, offered, folder=INBOX):
        """
        @param mail: the L{zwms.interfaces.IMailStore}.
        @param offered: L{zwms.account.MessageInfo} rows, in session order.
        """
        self._mail = mail
        self.account_id = account_id
        self.folder = folder
        self._offered = list(offered)
        self._sizes = [None] * len(self._offered)
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

    def _read(self, index):
        return defer.maybeDeferred(self._mail.read, self.account_id, self.folder,
                                   self._offered[index].name)

    def _size(self, index):
        if self._sizes[index] is not None:
            return defer.succeed(self._sizes[index])

        def measured(data):
            self._sizes[index] = wire_size(data)
            return self._sizes[index]

        def gone(failure):
            # Removed meanwhile (webmail): list it with the index's size;
            # RETR will say it is gone.
            failure.trap(NoSuchMessage)
            return self._offered[index].size

        return self._read(index).addCallbacks(measured, gone)

    def listMessages(self, index=None):
        if index is not None:
            self._check(index)
            if index in self._deleted:
                return 0
            return self._size(index)
        return self._all_sizes()

    @defer.inlineCallbacks
    def _all_sizes(self):
        sizes = []
        for index in range(len(self._offered)):
            if index in self._deleted:
                sizes.append(0)
            else:
                sizes.append((yield self._size(index)))
        return sizes

    def getMessage(self, index):
        """
        @return: a Deferred firing with a file holding the stored bytes;
            it fails with L{NoSuchMessage} when the mail is gone.
        """
        self._check(index)

        def opened(data):
            self._sizes[index] = wire_size(data)
            return io.BytesIO(data)

        return self._read(index).addCallback(opened)

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


def open_mailbox(services, account):
    """
    Load the Inbox index and apply the §31 policy.

    @return: a Deferred firing with a L{POP3Mailbox}.
    """
    d = defer.maybeDeferred(services.mail.messages, account.id, INBOX)
    d.addCallback(lambda infos: POP3Mailbox(
        services.mail, account.id, select_offered(infos, account, services.settings)))
    return d
