# -*- test-case-name: tests.test_admin_ops -*-
"""
Every administrative operation of zWMS, shared by `zwms-admin`, the /admin
web console, sign-up and the middle-admin pages (DESIGN.md rule 6; mox's
admin package).  Each function takes an L{AdminContext}, does what its name
says, logs the change to the WebMail channel (seed §2: "관리자 작업 기록")
and returns a value or raises a L{zwms.errors} exception.  Nothing here
parses command lines or prints.

The operations are plain blocking functions: the files they write go
through the store (atomic, fsynced) and a password hash costs ~0.1 s, so the
web runs them in a thread (C{deferToThread}); see L{context_from_services}.
The CLI calls them directly (L{open_home}), with or without a running server:
both write the same files and the server's stores notice them by file stamp.
"""

import hmac
import os
import queue
import time
from dataclasses import dataclass, field

from twisted.python.failure import Failure

from zwms import logs as logchannels
from zwms.account import SETTABLE_KEYS, check_id, is_address
from zwms.config import Settings, format_setting
from zwms.config.schema import KEYS, key as setting_key, parse_domain
from zwms.errors import (AccountExists, InvalidValue, NoSuchAccount,
                         ZWMSError)
from zwms.fileio import atomic_write
from zwms.home import Home

#: How long the CLI waits for the mail store's writer thread (seconds).
STORE_TIMEOUT = 120.0

#: The /admin login until the administrator changes it (seed §1).
DEFAULT_ADMIN_LOGIN = "root"
DEFAULT_ADMIN_PASSWORD = "root"


class OperationFailed(ZWMSError):
    """An operation could not be done (the CLI exits 1)."""


# -- the context ---------------------------------------------------------------


class _CallPump:
    """
    The one reactor method the mail store needs (C{callFromThread}), for a
    process that runs no reactor (zwms-admin).

    The store's writer thread hands its results back through
    C{callFromThread}; here those calls wait in a queue until L{wait} runs
    them in the calling thread.  So the Deferred returned by C{deliver} is
    fired in the same thread that created it, as Twisted requires, and the
    CLI needs neither a reactor nor a second code path in the store.
    """

    def __init__(self):
        self._calls = queue.Queue()

    def callFromThread(self, f, *args, **kwargs):
        self._calls.put((f, args, kwargs))

    def wait(self, d, timeout=STORE_TIMEOUT):
        """Run queued calls until C{d} fires; return its result or raise."""
        results = []
        d.addBoth(results.append)
        deadline = time.monotonic() + timeout
        while not results:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OperationFailed("the mail store did not answer within %d s"
                                      % timeout)
            try:
                f, args, kwargs = self._calls.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            f(*args, **kwargs)
        result = results[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result


class AppendLogs:
    """
    ILogs for a process other than the server: each line is appended to the
    channel's file with L{zwms.logs.append_line} (the server rotates).
    """

    def __init__(self, directory):
        self.directory = directory

    def write(self, channel, text, peer=None):
        logchannels.append_line(self.directory, channel, text, peer)


@dataclass
class AdminContext:
    """
    What an operation works on.

    @ivar deliver: a blocking callable, C{deliver(deliveries) -> names},
        that returns once the messages are durably stored.
    @ivar actor: who acts, for the log lines ("zwms-admin", "admin root" …).
    @ivar peer: the client IP for the log lines (web), or None.
    """
    home: Home
    settings: Settings
    accounts: object
    directory: object
    mail: object
    logs: object
    deliver: object
    actor: str = "zwms-admin"
    peer: str = None
    closers: list = field(default_factory=list)

    def log(self, text):
        """Record an admin action in the WebMail channel."""
        self.logs.write(logchannels.WEBMAIL, "%s: %s" % (self.actor, text), self.peer)

    def close(self):
        """Stop what L{open_home} started (the mail writer thread)."""
        closers, self.closers = self.closers, []
        for close in reversed(closers):
            close()


def open_home(path, actor="zwms-admin"):
    """
    Open a server home for the CLI: file stores, settings, logs appended to
    logs/.  The folder must exist; its layout is created if missing, so
    accounts can be made before the server first starts.

    @raise OperationFailed: C{path} is not a folder.
    @return: an L{AdminContext}; call its C{close()} when done.
    """
    from zwms.store.accounts import FileAccounts
    from zwms.store.directory import Directory
    from zwms.store.mailstore import FileMailStore

    if not os.path.isdir(path):
        raise OperationFailed("home %s is not a folder (give --home DIR or set ZWMS_HOME)"
                              % (path,))
    home = Home(path)
    home.create()
    logs = AppendLogs(home.logs)
    settings = Settings(home)
    accounts = FileAccounts(home, settings)
    pump = _CallPump()
    mail = FileMailStore(home, reactor=pump)
    directory = Directory(settings, accounts, home)

    def deliver(deliveries):
        return pump.wait(mail.deliver(deliveries))

    ctx = AdminContext(home=home, settings=settings, accounts=accounts,
                       directory=directory, mail=mail, logs=logs, deliver=deliver,
                       actor=actor)
    ctx.closers.append(lambda: pump.wait(_as_deferred(mail.stop())))
    return ctx


def context_from_services(services, reactor, actor, peer=None):
    """
    An L{AdminContext} over the running server's services, for the web.
    Operations must then run in a worker thread (C{deferToThread}): their
    deliveries go back to the reactor with C{blockingCallFromThread}.
    """
    from twisted.internet.threads import blockingCallFromThread
    from twisted.python.threadable import isInIOThread

    def deliver(deliveries):
        if isInIOThread():
            # Waiting here would wait for ourselves: a deadlock, not an error.
            raise OperationFailed("admin operations that store mail must run in a "
                                  "worker thread (deferToThread), not the reactor thread")
        return blockingCallFromThread(reactor, services.mail.deliver, deliveries)

    return AdminContext(home=services.home, settings=services.settings,
                        accounts=services.accounts, directory=services.directory,
                        mail=services.mail, logs=services.logs, deliver=deliver,
                        actor=actor, peer=peer)


def _as_deferred(value):
    from twisted.internet import defer
    return defer.maybeDeferred(lambda: value)


# -- accounts ------------------------------------------------------------------


def account_id(text):
    """A checked, normalised account ID (no path tricks); raise InvalidValue."""
    return check_id(text)


def get_account(ctx, aid):
    """The account, or raise NoSuchAccount."""
    aid = account_id(aid)
    try:
        account = ctx.accounts.get(aid)
    except InvalidValue as e:
        # A damaged account.cfg is the home's problem, not the caller's input.
        raise OperationFailed("account %r cannot be read: %s" % (aid, e))
    if account is None:
        raise NoSuchAccount("no account %r" % (aid,))
    return account


def _check_address_free(ctx, address, owner=None):
    """A hosting address (§23) may belong to one account only."""
    if not address:
        return
    if not is_address(address):
        raise InvalidValue("not an email address: %r" % (address,))
    taken = ctx.directory.login_account(address)
    if taken is not None and taken != owner:
        raise AccountExists("address %s already belongs to account %r" % (address, taken))


def user_add(ctx, aid, password, name=None, address=None):
    """
    Create an account (N§16 mbr_add).

    @raise InvalidValue: bad ID, empty password, bad name or address.
    @raise AccountExists / LicenseOver
    @return: the new L{zwms.account.Account}.
    """
    aid = account_id(aid)
    if not password:
        raise InvalidValue("the password may not be empty")
    fields = {}
    if name is not None:
        fields["name"] = name
    if address:
        address = address.strip().lower()
        _check_address_free(ctx, address)
        fields["address"] = address
    account = ctx.accounts.add(aid, password, **fields)
    ctx.log("user add %s" % aid)
    _send_welcome(ctx, account)
    return account


def _send_welcome(ctx, account):
    """
    Deliver the welcome message (SPEC S5, seed §5) to a new account, when
    the administrator has written one.  The account exists either way: a
    failed delivery is logged, not raised.
    """
    from zwms.account import Delivery
    from zwms.routing.messages import build_welcome

    domain = ctx.settings["DOMAIN"]
    address = account.address or "%s@%s" % (account.id, domain)
    admin = ctx.settings["ADMINID"]
    sender = "%s@%s" % (admin, domain) if admin else "postmaster@%s" % (domain,)
    try:
        data = build_welcome(ctx.home, address, domain, sender, time.time())
        if data is None:
            return
        ctx.deliver([Delivery(account.id, b"Return-Path: <>\r\n" + data)])
        ctx.log("welcome message sent to %s" % account.id)
    except Exception as e:
        ctx.logs.write(logchannels.SYSTEMERROR, "%s: welcome message to %s not delivered: %s"
                       % (ctx.actor, account.id, e), ctx.peer)


def welcome_get(ctx):
    """The welcome message text (first line the subject), "" when none."""
    from zwms.routing.messages import welcome_path
    try:
        with open(welcome_path(ctx.home), "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def welcome_set(ctx, text):
    """
    Write the welcome message: the first line is the subject, the rest the
    body; an empty text removes it (no welcome mail is sent then).
    """
    from zwms.routing.messages import welcome_path
    text = str(text).replace("\r\n", "\n")
    if "\x00" in text:
        raise InvalidValue("the welcome message may not contain NUL characters")
    atomic_write(welcome_path(ctx.home), text.encode("utf-8") if text.strip() else b"")
    ctx.log("welcome message %s" % ("set" if text.strip() else "cleared"))
    return text


def user_del(ctx, aid):
    """
    Delete an account; its mail too when EMLDEL=1 (§11).

    @return: True when the mail was removed with it.
    """
    aid = get_account(ctx, aid).id
    remove_mail = bool(ctx.settings["EMLDEL"])
    ctx.accounts.delete(aid, remove_mail=remove_mail)
    ctx.log("user del %s%s" % (aid, "" if remove_mail else " (mail kept, EMLDEL=0)"))
    return remove_mail


def user_show(ctx, aid):
    """@return: the L{zwms.account.Account} (its C{show_lines()} for `user show`)."""
    return get_account(ctx, aid)


def user_list(ctx):
    """@return: the sorted account IDs."""
    return list(ctx.accounts.list())


def user_set(ctx, aid, key, value):
    """
    Set one account field from its text (SPEC §0 `user set` keys).

    @raise InvalidValue: unknown key or bad value.
    @return: the updated account.
    """
    aid = get_account(ctx, aid).id
    key = str(key).strip().lower()
    if key not in SETTABLE_KEYS:
        raise InvalidValue("unknown account key %r (known: %s)"
                           % (key, ", ".join(SETTABLE_KEYS)))
    if key == "password" and not value:
        raise InvalidValue("the password may not be empty")
    if key == "address":
        _check_address_free(ctx, str(value).strip().lower(), owner=aid)
    account = ctx.accounts.set(aid, key, value)
    # Never write a password to the log.
    ctx.log("user set %s %s%s" % (aid, key, "" if key == "password" else " " + str(value)))
    return account


# -- domains (N§16 domain_add) -------------------------------------------------


def domain_list(ctx):
    """@return: DOMAIN first, then each of MULTIDOMAINS."""
    default = ctx.settings["DOMAIN"]
    others = [d for d in ctx.settings.list("MULTIDOMAINS") if d != default]
    return [default] + others


def domain_add(ctx, domain):
    """
    Add a domain to MULTIDOMAINS (data/env.cfg): ID@DOMAIN becomes a
    mailbox for every account.

    @raise InvalidValue: not a domain name.
    @raise OperationFailed: already served.
    @return: the normalised domain.
    """
    domain = _domain(domain)
    if domain in domain_list(ctx):
        raise OperationFailed("domain %s is already served" % domain)
    others = ctx.settings.list("MULTIDOMAINS") + [domain]
    ctx.settings.set("MULTIDOMAINS", ",".join(others))
    ctx.log("domain add %s" % domain)
    return domain


def domain_del(ctx, domain):
    """
    Remove a domain from MULTIDOMAINS.

    @raise OperationFailed: it is the default DOMAIN, or not served.
    """
    domain = _domain(domain)
    if domain == ctx.settings["DOMAIN"]:
        raise OperationFailed("%s is the default domain (DOMAIN); it cannot be deleted; "
                              "set another first: config set DOMAIN NAME" % domain)
    others = ctx.settings.list("MULTIDOMAINS")
    if domain not in others:
        raise OperationFailed("domain %s is not served" % domain)
    ctx.settings.set("MULTIDOMAINS", ",".join(d for d in others if d != domain))
    ctx.log("domain del %s" % domain)
    return domain


def _domain(text):
    domain = parse_domain(text)
    if not domain:
        raise InvalidValue("a domain name is required")
    return domain


# -- virtual addresses (§9) ----------------------------------------------------


def alias_list(ctx):
    """@return: sorted (virtual, real) pairs."""
    return list(ctx.directory.aliases())


def alias_add(ctx, virtual, real):
    """
    Add a virtual address: VIRTUAL is a full address in one of our domains;
    REAL an account ID or a full (local or remote) address.

    @raise InvalidValue / NoSuchAccount
    """
    virtual = str(virtual).strip().lower()
    real = str(real).strip()
    if not is_address(virtual):
        raise InvalidValue("virtual address must be a full address: %r" % (virtual,))
    domain = virtual.rpartition("@")[2]
    if domain not in domain_list(ctx):
        raise InvalidValue("%s is not one of this server's domains (%s); add it first: "
                           "domain add %s" % (domain, ", ".join(domain_list(ctx)), domain))
    if "@" in real:
        real = real.lower()
        if not is_address(real):
            raise InvalidValue("not an email address: %r" % (real,))
    else:
        real = get_account(ctx, real).id
    ctx.directory.add_alias(virtual, real)
    ctx.log("alias add %s %s" % (virtual, real))
    return virtual, real


def alias_del(ctx, virtual, real=None):
    """
    Remove a virtual address (all its targets when C{real} is None).

    @raise NoSuchAlias
    """
    virtual = str(virtual).strip().lower()
    if real is not None:
        real = str(real).strip().lower()
    ctx.directory.del_alias(virtual, real)
    ctx.log("alias del %s%s" % (virtual, "" if real is None else " " + real))


# -- settings (§4, §11) --------------------------------------------------------


def config_get(ctx, name):
    """
    @raise InvalidValue: unknown key.
    @return: (L{zwms.config.schema.Key}, value text).
    """
    k = setting_key(name)
    return k, format_setting(ctx.settings[k.name])


def config_list(ctx):
    """@return: (Key, value text) for every key of the schema."""
    return [(k, format_setting(ctx.settings[k.name])) for k in KEYS]


def config_set(ctx, name, text):
    """
    Validate and write one key.  env.cfg keys apply within seconds;
    zwms.cfg keys at restart (C{key.restart}).

    @raise InvalidValue: unknown key or bad value.
    @return: (Key, the value text as written).
    """
    k = setting_key(name)
    value = ctx.settings.set(k.name, text)
    ctx.log("config set %s %s" % (k.name, format_setting(value)))
    return k, format_setting(value)


# -- the /admin login (seed §1, §3) --------------------------------------------


def _admin_cfg(home):
    return os.path.join(_home(home).data, "admin.cfg")


def _home(home):
    return home if isinstance(home, Home) else Home(home)


def _read_admin(home):
    """(login, hash) from data/admin.cfg, or None when it is not there."""
    try:
        with open(_admin_cfg(home), "r", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    values = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip().upper()] = value.strip()
    return values.get("LOGIN", DEFAULT_ADMIN_LOGIN), values.get("PASSWORD", "")


def admin_login(home):
    """The /admin login name (root until changed)."""
    stored = _read_admin(home)
    return DEFAULT_ADMIN_LOGIN if stored is None else stored[0]


def set_admin_password(home, password, login=None):
    """
    Store the /admin password (argon2 hash) and optionally a new login in
    data/admin.cfg, atomically.  Slow (argon2): not in the reactor thread.

    @raise InvalidValue: empty, multi-line, or still root/root.
    """
    from zwms.store.passwords import hash_password

    current = admin_login(home)
    login = current if login is None else str(login).strip()
    if not login or any(c.isspace() or c == "=" for c in login):
        raise InvalidValue("the admin login may not be empty or contain spaces or '='")
    if not password or any(c in password for c in "\r\n\x00"):
        raise InvalidValue("the admin password may not be empty or contain line breaks")
    if login == DEFAULT_ADMIN_LOGIN and password == DEFAULT_ADMIN_PASSWORD:
        raise InvalidValue("choose a password other than the default one")
    text = "# /admin login (zwms-admin admin passwd)\nLOGIN=%s\nPASSWORD=%s\n" % (
        login, hash_password(password))
    atomic_write(_admin_cfg(home), text.encode("utf-8"))


def check_admin_password(home, login, password):
    """
    Check an /admin login: root/root until a password is set, then the
    stored login and argon2 hash.  Slow (argon2): not in the reactor thread.
    A damaged admin.cfg refuses every login (fix: zwms-admin admin passwd).

    @return: True if it matches.
    """
    from zwms.store.passwords import verify_password

    stored = _read_admin(home)
    if stored is None or not stored[1] and stored[0] == DEFAULT_ADMIN_LOGIN:
        return (hmac.compare_digest(str(login).encode(), DEFAULT_ADMIN_LOGIN.encode())
                & hmac.compare_digest(str(password).encode(),
                                      DEFAULT_ADMIN_PASSWORD.encode()))
    stored_login, stored_hash = stored
    # Verify even when the login is wrong, so that timing tells nothing.
    good = bool(stored_hash) and verify_password(stored_hash, str(password))
    return hmac.compare_digest(str(login).encode(), stored_login.encode()) and good


def admin_password_is_default(home):
    """True while the /admin login is still root/root (the banner of §1)."""
    stored = _read_admin(home)
    return stored is None or (not stored[1] and stored[0] == DEFAULT_ADMIN_LOGIN)


def admin_passwd(ctx, password, login=None):
    """L{set_admin_password} as a logged admin action."""
    set_admin_password(ctx.home, password, login)
    ctx.log("admin passwd%s" % ("" if login is None else " (login %s)" % login))


# -- mail: index, import, backup, zip ------------------------------------------


def reindex(ctx, aid=None):
    """
    Rebuild the index from the .eml files (N§19 mail/DB sync), for one
    account or, with None or "ALL", for every mail folder of the home (so
    rows of vanished accounts go too).

    @return: ([(account ID, messages in its index)], total indexed).
    """
    if aid is None or str(aid).upper() == "ALL":
        total = ctx.mail.reindex(None)
        counts = [(i, ctx.mail.usage(i)[0]) for i in user_list(ctx)]
        ctx.log("reindex ALL: %d messages" % total)
    else:
        aid = get_account(ctx, aid).id
        total = ctx.mail.reindex(aid)
        counts = [(aid, total)]
        ctx.log("reindex %s: %d messages" % (aid, total))
    return counts, total


def import_eml(ctx, aid):
    """
    Store each import/userd/ID/*.eml in the account's Inbox (§27); a file
    is deleted only once its message is durably stored; a bad file stays.

    @return: an L{zwms.admin.archive.ImportResult}.
    """
    from zwms.admin import archive
    aid = get_account(ctx, aid).id
    result = archive.import_eml(ctx, aid)
    ctx.log("import %s: %d imported, %d refused" % (aid, len(result.imported),
                                                     len(result.refused)))
    return result


def backup(ctx, aid):
    """
    Copy the account's files (account.cfg and settings, not mail) into
    backup/userd/ID/ (§25).

    @return: (backup folder, list of relative paths copied).
    """
    from zwms.admin import archive
    aid = get_account(ctx, aid).id
    folder, copied = archive.backup_account(ctx, aid)
    ctx.log("backup %s: %d files" % (aid, len(copied)))
    return folder, copied


def zip_mailbox(ctx, aid, by="root"):
    """
    Zip the account's mailbox into ZIPDIR/root|mid|user/ID-<stamp>.zip (§26).

    @return: (zip path, number of messages).
    """
    from zwms.admin import archive
    aid = get_account(ctx, aid).id
    path, count = archive.zip_mailbox(ctx, aid, by)
    ctx.log("zip %s by %s: %d messages" % (aid, by, count))
    return path, count
