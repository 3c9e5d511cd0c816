# -*- test-case-name: tests.test_web_ops -*-
"""
Administrative operations that the /admin web console needs beyond those of
L{zwms.admin.ops} (which is near its size limit): a paged user list, whole
account edits and bulk edits, system facts, the log channels, the notice
message, the spam and virus lists, and the login-time backup of §25.

Same rules as L{zwms.admin.ops}: each function takes an
L{zwms.admin.ops.AdminContext}, does what its name says, logs changes to the
WebMail channel, and blocks (the web runs it with C{deferToThread}).
"""

import os
import re
import shutil
import time
from dataclasses import dataclass, field

from zwms import __version__
from zwms import logs as logchannels
from zwms.account import ACCOUNT_FIELDS, FIELDS_BY_KEY, check_id, parse_field
from zwms.admin import ops
from zwms.config import read_lines
from zwms.errors import AccountExists, InvalidValue, NoSuchAccount
from zwms.fileio import atomic_write

#: The most bytes of a text file (notice, spam.dat, virus.dat) the console writes.
MAX_TEXT = 256 * 1024
#: Account fields the bulk window (§17) may not set: they belong to one account.
NOT_BULK = ("address",)


class FormErrors(InvalidValue):
    """Several fields were refused; C{errors} maps each field to its message."""

    def __init__(self, errors):
        InvalidValue.__init__(self, "; ".join("%s: %s" % kv for kv in sorted(errors.items())))
        self.errors = dict(errors)


# -- the user list (§7) --------------------------------------------------------


@dataclass
class UserPage:
    """
    One page of the user list.

    @ivar accounts: (ID, Account or None, error text or "") for the page's IDs.
    """
    total: int
    page: int
    pages: int
    perpage: int
    accounts: list = field(default_factory=list)


#: data/userd folder → (its stat stamp, the sorted IDs): listing and
#: sorting 100,000 names was nine tenths of a user-list page (bench/README.md).
_ID_CACHE = {}


def _account_ids(ctx):
    """
    The sorted IDs of data/userd, from one directory listing, cached until
    the folder changes (an account folder added or removed changes its
    mtime).  Folders kept after a delete with EMLDEL=0 have no account.cfg:
    they are dropped when their page is read.
    """
    folder = ctx.home.userd
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return []
    stamp = (st.st_mtime_ns, st.st_ino, st.st_nlink)
    cached = _ID_CACHE.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    ids = sorted(n for n in os.listdir(folder) if not n.startswith(".") and n == n.lower())
    _ID_CACHE[folder] = (stamp, ids)
    return ids


def user_page(ctx, page=1, perpage=None, query=""):
    """
    The accounts of one page, sorted by ID, optionally only the IDs that
    contain C{query}.  Only the page's account files are read.

    @return: a L{UserPage}.
    """
    perpage = max(1, int(perpage or ctx.settings["PERPAGE"] or 100))
    query = str(query or "").strip().lower()
    if hasattr(ctx.accounts, "home"):
        ids = _account_ids(ctx)
    else:
        ids = sorted(ctx.accounts.list())  # memory stores (tests)
    if query:
        ids = [i for i in ids if query in i]
    pages = max(1, -(-len(ids) // perpage))
    page = min(max(1, int(page)), pages)
    chosen = ids[(page - 1) * perpage:page * perpage]
    rows, gone = [], 0
    for aid in chosen:
        try:
            account = ctx.accounts.get(aid)
        except InvalidValue as e:
            rows.append((aid, None, str(e)))
            continue
        if account is None:
            gone += 1  # a mail folder without an account (EMLDEL=0)
            continue
        rows.append((aid, account, ""))
    return UserPage(total=len(ids) - gone, page=page, pages=pages, perpage=perpage,
                    accounts=rows)


def parse_values(values, allowed):
    """Parse {key: text}; raise FormErrors naming every bad field."""
    parsed, errors = {}, {}
    for key, text in values.items():
        if key not in allowed:
            errors[key] = "unknown account field"
            continue
        try:
            parsed[key] = parse_field(key, text)
        except InvalidValue as e:
            errors[key] = str(e)
    if errors:
        raise FormErrors(errors)
    return parsed


def user_update(ctx, aid, values, password=""):
    """
    The account window (§16): set every field of C{values} ({key: text})
    and, when C{password} is not empty, the password; a blank password keeps
    the old one.  Every field is checked before any is written; only
    changed fields are written.

    @raise FormErrors / NoSuchAccount
    @return: the updated account.
    """
    account = ops.get_account(ctx, aid)
    parsed = parse_values(values, FIELDS_BY_KEY)
    if "address" in parsed and parsed["address"] != account.address:
        try:
            ops._check_address_free(ctx, parsed["address"], owner=account.id)
        except InvalidValue as e:
            raise FormErrors({"address": str(e)})
        except AccountExists as e:
            raise FormErrors({"address": str(e)})
    if password and any(c in password for c in "\r\n\x00"):
        raise FormErrors({"password": "the password may not contain line breaks"})
    changed = [k for k, v in parsed.items() if account.fields.get(k) != v]
    for key in changed:
        text = values[key]
        account = ctx.accounts.set(account.id, key, text)
    if password:
        account = ctx.accounts.set(account.id, "password", password)
    if changed or password:
        ctx.log("user edit %s: %s" % (account.id, ", ".join(
            changed + (["password"] if password else []))))
    return account


def user_bulk(ctx, ids, values):
    """
    The bulk window (§17): set the fields of C{values} on each account of
    C{ids}.  Values are checked once, before any account is touched.

    @raise FormErrors: a bad value or no field chosen.
    @return: (IDs changed, [(ID, error text)] for those that failed).
    """
    allowed = {k: f for k, f in FIELDS_BY_KEY.items() if k not in NOT_BULK}
    if not values:
        raise FormErrors({"fields": "choose at least one field to set"})
    parse_values(values, allowed)
    done, failed = [], []
    for aid in ids:
        try:
            aid = check_id(aid)
            ops.get_account(ctx, aid)
            for key, text in values.items():
                ctx.accounts.set(aid, key, text)
            done.append(aid)
        except (InvalidValue, NoSuchAccount, ops.OperationFailed) as e:
            failed.append((str(aid), str(e)))
    ctx.log("user bulk %s: %s" % (",".join(done), ", ".join(sorted(values))))
    return done, failed


def bulk_fields():
    """The account fields the bulk window offers."""
    return [f for f in ACCOUNT_FIELDS if f.key not in NOT_BULK]


# -- system info (§2) ------------------------------------------------------------


def system_info(ctx):
    """
    Facts for the system info page: version, accounts, domains, mails and
    their bytes (from the index), queued messages, disk of the home.

    @return: a dict.
    """
    accounts = len(_account_ids(ctx)) if hasattr(ctx.accounts, "home") else len(
        ctx.accounts.list())
    mails, mail_bytes = _mail_totals(ctx)
    try:
        from zwms.queue.spool import Spool
        queued = len(Spool(ctx.home).ids())
    except OSError:
        queued = 0
    disk = shutil.disk_usage(ctx.home.root)
    return {"version": __version__, "accounts": accounts,
            "domains": len(ops.domain_list(ctx)), "mails": mails,
            "mail_bytes": mail_bytes, "queued": queued,
            "disk_total": disk.total, "disk_used": disk.used, "disk_free": disk.free}


def _mail_totals(ctx):
    """(messages, bytes) over every mailbox, from the index when there is one."""
    if os.path.exists(ctx.home.index_db) and hasattr(ctx.mail, "home"):
        from zwms.store.mailstore import connect
        db = connect(ctx.home.index_db)
        try:
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages").fetchone()
        finally:
            db.close()
        return count, size
    count = size = 0
    for aid in ctx.accounts.list():
        c, s = ctx.mail.usage(aid)
        count, size = count + c, size + s
    return count, size


# -- logs (§2) -------------------------------------------------------------------


@dataclass
class LogPage:
    """One page of a log channel, newest line first."""
    channel: str
    lines: list
    total: int
    page: int
    pages: int


def _channel(name):
    for channel in logchannels.CHANNELS:
        if channel.lower() == str(name).lower():
            return channel
    raise InvalidValue("unknown log %r (known: %s)" % (name, ", ".join(logchannels.CHANNELS)))


def _log_files(ctx, channel):
    """The channel's files, newest first: NAME.log, NAME.log.1, .2 …"""
    base = os.path.join(ctx.home.logs, "%s.log" % channel)
    files = [base] if os.path.exists(base) else []
    rotated = []
    prefix = os.path.basename(base) + "."
    try:
        names = os.listdir(ctx.home.logs)
    except FileNotFoundError:
        names = []
    for name in names:
        suffix = name[len(prefix):] if name.startswith(prefix) else ""
        if suffix.isdigit():
            rotated.append((int(suffix), os.path.join(ctx.home.logs, name)))
    return files + [path for _, path in sorted(rotated)]


def log_read(ctx, channel, page=1, perpage=100, query="", date=""):
    """
    A page of a log channel, newest first, keeping only lines that contain
    C{query} (any case) and start with C{date} (YYYY-MM-DD or a prefix).

    @raise InvalidValue: unknown channel or bad date.
    @return: a L{LogPage}.
    """
    channel = _channel(channel)
    query = str(query or "").lower()
    date = str(date or "").strip()
    if date and not re.match(r"^\d{4}(-\d{2}(-\d{2})?)?$", date):
        raise InvalidValue("the date must look like 2024-01-31, got %r" % (date,))
    lines = []
    for path in _log_files(ctx, channel):
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        part = [line for line in text.splitlines() if line
                and (not query or query in line.lower())
                and (not date or line.startswith(date))]
        lines.extend(reversed(part))
    perpage = max(1, int(perpage))
    pages = max(1, -(-len(lines) // perpage))
    page = min(max(1, int(page)), pages)
    return LogPage(channel=channel, lines=lines[(page - 1) * perpage:page * perpage],
                   total=len(lines), page=page, pages=pages)


def log_delete(ctx):
    """
    Delete every log file of the six channels ("Delete Logs", §2), then
    note it in the fresh WebMail log.  The running server's open files are
    reopened, so no line lands in a deleted file.

    @return: the number of files removed.
    """
    removed = 0
    for channel in logchannels.CHANNELS:
        for path in _log_files(ctx, channel):
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
    reopen = getattr(ctx.logs, "reopen", None)
    if reopen is not None:
        reopen()
    ctx.log("logs deleted (%d files)" % removed)
    return removed


# -- text files: notice (§6), spam.dat (§12), virus.dat ---------------------------


def _data_text(ctx, name):
    try:
        with open(os.path.join(ctx.home.data, name), "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _check_text(text):
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise InvalidValue("the text may not contain NUL characters")
    if len(text.encode("utf-8")) > MAX_TEXT:
        raise InvalidValue("the text is longer than %d KB" % (MAX_TEXT // 1024))
    return text


def notice_get(ctx):
    """The notice shown to webmail users after login (§6), data/notice.txt."""
    return _data_text(ctx, "notice.txt")


def notice_set(ctx, text):
    """Write data/notice.txt (empty: no notice).  @raise InvalidValue"""
    text = _check_text(text).strip()
    atomic_write(os.path.join(ctx.home.data, "notice.txt"),
                 (text + "\n" if text else "").encode("utf-8"))
    ctx.log("notice set (%d characters)" % len(text))
    return text


def spam_get(ctx):
    """The spam phrases of data/spam.dat (§12), one a line."""
    return [line.strip() for line in _data_text(ctx, "spam.dat").splitlines() if line.strip()]


def spam_set(ctx, text):
    """
    Replace data/spam.dat with the phrases of C{text}, one a line (blank
    lines dropped, duplicates kept once).  @return: the phrases.
    """
    phrases = []
    for line in _check_text(text).split("\n"):
        line = line.strip()
        if line and line not in phrases:
            phrases.append(line)
    atomic_write(os.path.join(ctx.home.data, "spam.dat"),
                 "".join(p + "\n" for p in phrases).encode("utf-8"))
    ctx.log("spam.dat set (%d phrases)" % len(phrases))
    return phrases


def virus_get(ctx):
    """The refused attachment extensions of data/virus.dat, one a line."""
    return [line.strip() for line in _data_text(ctx, "virus.dat").splitlines() if line.strip()]


def virus_set(ctx, text):
    """
    Replace data/virus.dat: one extension a line, letters and digits
    (a leading dot is dropped).  @raise InvalidValue naming the bad line.
    """
    exts = []
    for number, line in enumerate(_check_text(text).split("\n"), 1):
        ext = line.strip().lstrip(".").lower()
        if not ext:
            continue
        if not re.match(r"^[a-z0-9_-]{1,16}$", ext):
            raise InvalidValue("line %d: %r is not a file extension (letters and digits)"
                               % (number, line.strip()))
        if ext not in exts:
            exts.append(ext)
    atomic_write(os.path.join(ctx.home.data, "virus.dat"),
                 "".join(e + "\n" for e in exts).encode("utf-8"))
    ctx.log("virus.dat set (%d extensions)" % len(exts))
    return exts


# -- settings files (§11) ----------------------------------------------------------


def zwms_cfg_values(ctx):
    """
    The values written in data/zwms.cfg now, as text by key (a restart
    applies them; the running values are C{ctx.settings}).
    """
    values, _ = read_lines(ctx.home.zwms_cfg)
    from zwms.config import format_setting
    return {k: format_setting(v) for k, v in values.items()}


# -- backup at login (§25) -----------------------------------------------------------


def backup_admin(ctx):
    """
    Copy the admin info (data/admin.cfg) and the virtual addresses
    (data/virtual.dat) into backup/ (§25: done at each admin login), as the
    latest copy and a dated one (backup/admin/YYYYMMDD-HHMMSS/).

    @return: the files copied (names).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    copied = []
    for name in ("admin.cfg", "virtual.dat"):
        source = os.path.join(ctx.home.data, name)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        atomic_write(os.path.join(ctx.home.root, "backup", name), data)
        atomic_write(os.path.join(ctx.home.root, "backup", "admin", stamp, name), data)
        copied.append(name)
    return copied


# -- settings pages (§4, §11) ----------------------------------------------------


def config_set_many(ctx, values):
    """
    Set several keys from {name: text}: every value is checked first and
    nothing is written when one is bad; only changed values are written.

    @raise FormErrors: {key: message} for each bad value.
    @return: the names written.
    """
    from zwms.config import format_setting
    from zwms.config.schema import key as setting_key
    parsed, errors = {}, {}
    for name, text in values.items():
        try:
            k = setting_key(name)
            parsed[k.name] = (k, k.parse(text))
        except InvalidValue as e:
            errors[name] = str(e)
    if errors:
        raise FormErrors(errors)
    written = zwms_cfg_values(ctx)
    changed = []
    for name, (k, value) in parsed.items():
        text = format_setting(value)
        current = written.get(name) if k.restart else format_setting(ctx.settings[name])
        if current is None:
            current = format_setting(ctx.settings[name])
        if text != current:
            ops.config_set(ctx, name, text)
            changed.append(name)
    return changed
