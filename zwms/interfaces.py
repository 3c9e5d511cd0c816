# -*- test-case-name: tests.test_store -*-
"""
The seams between the rooms of zWMS (DESIGN.md).

Front ends (smtp, pop3, web, scripts) only talk to these interfaces.  Every
method may answer synchronously or with a Deferred: callers wrap calls in
C{maybeDeferred}.  The file store and the in-memory fake (store/memory.py)
implement the same interfaces and pass the same tests.
"""

from zope.interface import Attribute, Interface


class IAccountStore(Interface):
    """
    Accounts (SPEC §0 `user set` keys), kept one file per account under
    data/userd/ID/account.cfg.  Changes made by another process (zwms-admin)
    are seen within 5 seconds.
    """

    def get(account_id):
        """
        @param account_id: the account ID (case-insensitive, stored lower).
        @return: an L{zwms.account.Account} or L{None} if there is none.
        """

    def list():
        """
        @return: a sorted list of account IDs.
        """

    def add(account_id, password, **fields):
        """
        Create an account with a hashed password and mailbox folders.

        @raise zwms.errors.AccountExists: the ID is taken.
        @raise zwms.errors.InvalidValue: bad ID or field value.
        @raise zwms.errors.LicenseOver: MAXACCOUNTS reached.
        @return: the new L{zwms.account.Account}.
        """

    def delete(account_id, remove_mail=True):
        """
        Delete the account; its mail too when C{remove_mail} (EMLDEL).

        @raise zwms.errors.NoSuchAccount: no such account.
        """

    def set(account_id, key, value):
        """
        Set one field from its text form (`zwms-admin user set`).
        C{password} is hashed; C{capacity} takes K, M, G suffixes.

        @raise zwms.errors.NoSuchAccount / zwms.errors.InvalidValue
        @return: the updated L{zwms.account.Account}.
        """

    def check_password(account_id, password):
        """
        Verify a password (slow: argon2; call it from a thread).

        @return: L{True} if it matches.
        """


class IDirectory(Interface):
    """
    What an address means: the server's domains, aliases (virtual addresses,
    §9), hosting addresses (§23), representative addresses (.rep, §22).
    """

    def local_domains():
        """
        @return: the set of domains (lower case) this server receives for:
            DOMAIN, and each of MULTIDOMAINS.
        """

    def resolve(address):
        """
        Find where mail for C{address} goes.

        @param address: C{str} "local@domain" (already syntax-checked).
        @return: a L{zwms.account.Resolution}.
        """

    def login_account(login):
        """
        Map a POP3/AUTH login (an account ID or any of the account's
        addresses) to an account ID, or L{None}.
        """

    def aliases():
        """
        @return: a sorted list of (virtual, real) pairs.
        """

    def add_alias(virtual, real):
        """
        Add a virtual address.  C{virtual} is a full address; C{real} an
        account ID or a full address.

        @raise zwms.errors.InvalidValue
        """

    def del_alias(virtual, real=None):
        """
        Remove a virtual address (all of its targets when C{real} is None).

        @raise zwms.errors.NoSuchAlias
        """


class IMailStore(Interface):
    """
    Mailboxes: one .eml file per message under data/userd/ID/mail/FOLDER/,
    plus an index (SQLite) that can be rebuilt from the files.  All writes are
    atomic and durable (temp, write, fsync, rename, fsync dir) and happen off
    the reactor thread.
    """

    def deliver(deliveries):
        """
        Store one message for one or more mailboxes, durably.

        @param deliveries: a list of L{zwms.account.Delivery}.
        @return: a Deferred firing with the list of stored names (one per
            delivery, in order) once every file is fsynced; it fails (and
            nothing is left behind) when storage fails.
        """

    def messages(account_id, folder="Inbox"):
        """
        @return: a list of L{zwms.account.MessageInfo}, oldest first.
        """

    def page(account_id, folder="Inbox", offset=0, limit=100, order="date",
             descending=True, since=None, until=None):
        """
        One page of a folder, paged and sorted (date or size) in the index,
        optionally within an arrival-time range.

        @return: C{(total, [MessageInfo])}.
        """

    def head(account_id, folder, name, limit=65536):
        """
        @return: the first C{limit} bytes of a message (its header block for
            lists and searches, without reading whole bodies).
        """

    def folders(account_id):
        """
        @return: the five standard folders, then the account's own.
        """

    def create_folder(account_id, folder):
        """Create a user folder, durably; @return: a Deferred."""

    def rename_folder(account_id, folder, new):
        """Rename a user folder with its messages, durably; @return: a Deferred."""

    def delete_folder(account_id, folder):
        """Remove an empty user folder, durably; @return: a Deferred."""

    def counts(account_id):
        """
        @return: C{{folder: (messages, unseen)}} for every folder holding mail.
        """

    def mark_seen(account_id, folder, names, seen=True):
        """
        Set or clear the seen flag (webmail read/unread), durably.

        @return: a Deferred.
        """

    def move(account_id, folder, names, target):
        """
        Move messages to another folder of the same account, durably.

        @return: a Deferred firing with the number moved.
        """

    def read(account_id, folder, name):
        """
        @return: the stored bytes of one message.
        @raise zwms.errors.NoSuchMessage
        """

    def delete(account_id, folder, names):
        """
        Remove messages (files and index rows).
        """

    def mark_fetched(account_id, names):
        """
        Record that POP3 fetched these Inbox messages (SPEC O2).
        """

    def usage(account_id):
        """
        @return: (message count, total bytes) over all folders.
        """

    def reindex(account_id=None):
        """
        Rebuild the index from the .eml files, for one account or all.
        Flags (fetched, seen) of files still present are kept.

        @return: the number of messages indexed.
        """

    def recover():
        """
        Sweep temp files left by a crash ("auto recovery", §2).

        @return: the number of leftovers removed.
        """


class ILogs(Interface):
    """
    The six log channels of §2 (WebMail, POP, MailServer, SystemError,
    MailBlock, SystemStatus), one file each under logs/.
    """

    def write(channel, text, peer=None):
        """
        Append one line to a channel.
        """


class IRelayMemory(Interface):
    """
    POP-before-SMTP (SPEC S6, O3): IPs that recently logged in by POP3.
    """

    def remember(ip, account_id):
        """
        Record a successful POP3 login from C{ip}.
        """

    def recent(ip):
        """
        @return: the account ID that logged in from C{ip} recently, or None.
        """


class IServices(Interface):
    """
    What every front end is given: the service layer in one object.
    """

    home = Attribute("L{zwms.home.Home}")
    settings = Attribute("L{zwms.config.Settings} for zwms.cfg + env.cfg")
    accounts = Attribute("L{IAccountStore}")
    directory = Attribute("L{IDirectory}")
    mail = Attribute("L{IMailStore}")
    logs = Attribute("L{ILogs}")
    relay_memory = Attribute("L{IRelayMemory}")
    clock = Attribute("an IReactorTime")
    queue = Attribute("the outbound queue (zwms.queue.runner.QueueRunner) or None: "
                      "enqueue(sender, recipients, data, auto=False, origin='')")
    router = Attribute("the mail-routing service (zwms.routing.router.Router) or None: "
                       "route(sender, targets, data, origin='', auth_account=None, "
                       "sent_copy=False, count=False, placements=None) -> Deferred, "
                       "fired when on disk")
    policy = Attribute("the receive policy (zwms.policy.chain.ReceivePolicy) or None: "
                       "connect(ip) -> Verdict, mail_from(mail) -> Deferred[Verdict], "
                       "message(mail, data, account_ids) -> Deferred[Decision]")
