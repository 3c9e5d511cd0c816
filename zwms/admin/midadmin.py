# -*- test-case-name: tests.test_midadmin -*-
"""
Middle administrators (SPEC A7, seed §24): the one place that says what a
middle admin may do.  Every /admin route a middle admin reaches calls these
functions; none of them trusts the form or the URL for the scope.

A middle admin is an account with C{midadmin=1} and a board group number of
1 or more (group 0 is "every account that has none": nobody manages it but
the root administrator).  It logs in to /admin with its own ID and password
and manages the accounts of its board group:

  - it sees them, and only them (L{user_page});
  - it creates accounts, always in its group (L{user_add}), at most
    C{midmaxaccounts} of them (its own account not counted), each with a
    capacity above 0, the capacities together at most C{midcapacity} (0 for
    either limit: it may create none; the root administrator sets both);
  - it edits and deletes them (L{user_update}, L{user_bulk},
    L{user_delete}), but never another middle admin's account, never its
    own deletion, never the fields of L{ROOT_FIELDS} (the middle-admin
    flags and limits, the board group, extra boards, bulk send), never its
    own capacity, and a hosting address only in the domain of its own
    address;
  - it sets the webmail logo and footer of its group (L{logo_set},
    L{footer_set}), shown to the group's accounts (L{BrandCache}).

Everything else of the console is refused to it by the route guard
(L{zwms.web.console.page}).  The scope is read from the account at every
request: a flag or group changed by the root administrator applies at once.

An ID outside the scope and an ID that does not exist get the same answer
(L{OutOfScope}), so a middle admin cannot probe other groups' IDs.

Same rules as L{zwms.admin.ops}: blocking functions over an AdminContext.
"""

import base64
import bisect
import os
import re
import threading
import time
from dataclasses import dataclass

from zwms.account import FIELDS_BY_KEY, check_id, parse_field
from zwms.admin import consoleops, ops
from zwms.admin.consoleops import FormErrors, UserPage
from zwms.errors import AccountExists, InvalidValue, ZWMSError
from zwms.i18n import N_
from zwms.fileio import atomic_write
from zwms.home import safe_join
from zwms.store.directory import stat_stamp

#: The session role of a middle admin (the root administrator's is "root").
ROLE = "midadmin"
#: Account fields only the root administrator sets.
ROOT_FIELDS = ("midadmin", "midmaxaccounts", "midcapacity", "boardgroup", "boards", "bulksend")
#: Largest logo accepted (bytes): it is sent inline with every webmail page.
MAX_LOGO = 64 * 1024
#: Longest footer text (characters).
MAX_FOOTER = 1000
#: Logo formats accepted, by their first bytes.  No SVG: it can carry script.
LOGO_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
              (b"\xff\xd8\xff", "jpg"))
LOGO_TYPES = {"png": "image/png", "gif": "image/gif", "jpg": "image/jpeg"}
FOOTER_FILE = "footer.txt"
#: Seconds after which the group index is rebuilt anyway (hand-edited files).
GROUP_RECHECK = 60.0

# The refusals, fixed texts (the pages show them translated).
NOT_MIDADMIN = N_("You are not (or no longer) a middle administrator.")
NO_GROUP = N_("This middle administrator has no board group number: "
              "the administrator must set one.")
NOT_YOURS = N_("This account is not one of the accounts you manage.")
NOT_SELF = N_("A middle administrator cannot do this to its own account.")
ROOT_ONLY = N_("Only the administrator may change the middle-admin settings, "
               "the board group, the extra boards and bulk sending.")
OWN_CAPACITY = N_("A middle administrator cannot change its own capacity.")
CAPACITY_ZERO = N_("Set a capacity above 0: your accounts share your capacity limit.")
CAPACITY_OVER = N_("This is over your capacity limit.")
OTHER_DOMAIN = N_("A hosting address must be in the domain of your own address.")
ACCOUNTS_OVER = N_("Your account limit is reached.")
EMPTY_PASSWORD = N_("The password may not be empty.")
LOGO_EMPTY = N_("Choose an image file.")
LOGO_LARGE = N_("The logo is larger than 64 KB.")
LOGO_TYPE = N_("The logo must be a PNG, GIF or JPEG image (SVG is not accepted).")
FOOTER_CONTROL = N_("The footer may not contain control characters.")
FOOTER_LONG = N_("The footer is longer than 1000 characters.")


class OutOfScope(ZWMSError):
    """Not a middle admin's to see or do (the console answers 403)."""


@dataclass(frozen=True)
class Scope:
    """What one middle admin manages, read from its account."""
    login: str
    group: int
    maxaccounts: int
    capacity: int
    domain: str


def scope_of(accounts, login):
    """
    The scope of a middle admin's account.

    @raise OutOfScope: not (or no longer) a middle admin, locked, inactive,
        or without a board group.
    """
    try:
        account = accounts.get(check_id(login))
    except InvalidValue:
        account = None
    if account is None or not account.midadmin:
        raise OutOfScope(NOT_MIDADMIN)
    if account.locked or not account.active:
        raise OutOfScope(NOT_MIDADMIN)
    if account.boardgroup < 1:
        raise OutOfScope(NO_GROUP)
    domain = account.address.rpartition("@")[2].lower() if account.address else ""
    return Scope(login=account.id, group=account.boardgroup,
                 maxaccounts=account.midmaxaccounts, capacity=account.midcapacity,
                 domain=domain)


def check_login(accounts, login, password):
    """
    A middle admin's /admin login (argon2: call from a thread).

    @return: its L{Scope}, or None for a wrong password or a non-middle-admin.
    """
    try:
        aid = check_id(login)
    except InvalidValue:
        return None
    good = bool(password) and accounts.check_password(aid, password)
    if not good:
        return None
    try:
        return scope_of(accounts, aid)
    except OutOfScope:
        return None


# -- the group's accounts ---------------------------------------------------------

#: Least seconds between two refreshes of the group index after changes.
GROUP_REFRESH = 5.0
_GROUP_LINE = re.compile(rb"(?mi)^[ \t]*boardgroup[ \t]*=[ \t]*(\d+)[ \t]*$")
#: data/userd → its L{_GroupIndex}.
_INDEXES = {}
#: Creations are counted and made under this lock (one process: the server).
_CREATE_LOCK = threading.Lock()


class _GroupIndex:
    """
    {board group: sorted IDs} over data/userd, for the middle admins' user
    lists: 100,000 account files are read once (the boardgroup line only);
    a refresh after a change stats every account.cfg and reads only those
    whose stamp changed.  A hint, not an authority: callers re-read each
    account (L{_members}, L{user_page}, L{check_account}).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.files = {}     # ID -> (stamp hash, group)
        self.groups = {}    # group -> sorted IDs
        self.key = None
        self.built = None

    def ids(self, ctx, group):
        from zwms.store.accounts import ACCOUNT_FILE, CHANGED_FILE
        userd = ctx.home.userd
        with self.lock:
            key = (stat_stamp(os.path.join(userd, CHANGED_FILE)), stat_stamp(userd))
            now = time.monotonic()
            if (self.built is None or now - self.built >= GROUP_RECHECK
                    or (key != self.key and now - self.built >= GROUP_REFRESH)):
                self._refresh(ctx, userd, ACCOUNT_FILE)
                # Counted from the end: a long first build is not followed
                # at once by another.
                self.key, self.built = key, time.monotonic()
            return list(self.groups.get(group, ()))

    def _refresh(self, ctx, userd, account_file):
        files, groups = {}, {}
        for aid in consoleops._account_ids(ctx):
            path = os.path.join(userd, aid, account_file)
            try:
                st = os.stat(path)
            except OSError:
                continue
            stamp = hash((st.st_mtime_ns, st.st_size, st.st_ino))
            known = self.files.get(aid)
            if known is None or known[0] != stamp:
                try:
                    with open(path, "rb") as f:
                        found = _GROUP_LINE.findall(f.read())
                except OSError:
                    continue
                # The last line wins, as in the store's parser.
                known = (stamp, int(found[-1]) if found else 0)
            files[aid] = known
            groups.setdefault(known[1], []).append(aid)
        self.files, self.groups = files, groups

    def note(self, aid, group):
        """A middle admin's own change, shown at once (C{group} None: deleted)."""
        with self.lock:
            for ids in self.groups.values():
                if aid in ids:
                    ids.remove(aid)
            self.files.pop(aid, None)
            if group is not None:
                bisect.insort(self.groups.setdefault(group, []), aid)


def group_ids(ctx, group):
    """
    The sorted IDs of the accounts whose board group is C{group} (see
    L{_GroupIndex}: an account moved by someone else shows within
    GROUP_REFRESH seconds; callers re-read each account before trusting it).
    """
    accounts = ctx.accounts
    if not hasattr(accounts, "home"):
        return [aid for aid in sorted(accounts.list())
                if _group_of(accounts, aid) == group]
    return _index(ctx).ids(ctx, group)


def _index(ctx):
    return _INDEXES.setdefault(ctx.home.userd, _GroupIndex())


def _note(ctx, aid, group):
    if hasattr(ctx.accounts, "home"):
        _index(ctx).note(aid, group)


def _group_of(accounts, aid):
    try:
        account = accounts.get(aid)
    except InvalidValue:
        return None
    return None if account is None else account.boardgroup


def _members(ctx, scope):
    """The group's accounts now (re-read), the middle admin's own left out."""
    out = []
    for aid in group_ids(ctx, scope.group):
        try:
            account = ctx.accounts.get(aid)
        except InvalidValue:
            continue
        if account is not None and account.boardgroup == scope.group and aid != scope.login:
            out.append(account)
    return out


def user_page(ctx, scope, page=1, perpage=None, query=""):
    """The user list of a middle admin: its group's accounts only (a L{UserPage})."""
    perpage = max(1, int(perpage or ctx.settings["PERPAGE"] or 100))
    query = str(query or "").strip().lower()
    ids = [i for i in group_ids(ctx, scope.group) if not query or query in i]
    pages = max(1, -(-len(ids) // perpage))
    page = min(max(1, int(page)), pages)
    rows, gone = [], 0
    for aid in ids[(page - 1) * perpage:page * perpage]:
        try:
            account = ctx.accounts.get(aid)
        except InvalidValue as e:
            rows.append((aid, None, str(e)))
            continue
        if account is None or account.boardgroup != scope.group:
            gone += 1  # deleted or moved since the index was built
            continue
        rows.append((aid, account, ""))
    return UserPage(total=len(ids) - gone, page=page, pages=pages, perpage=perpage,
                    accounts=rows)


def check_account(ctx, scope, aid, allow_self=True):
    """
    The account C{aid} if the middle admin may manage it: same board group,
    not another middle admin (its own only when C{allow_self}).

    @raise OutOfScope: for a foreign and for a missing ID alike.
    """
    refusal = OutOfScope(NOT_YOURS)
    try:
        account = ctx.accounts.get(check_id(aid))
    except InvalidValue:
        raise refusal
    if account is None or account.boardgroup != scope.group:
        raise refusal
    if account.id == scope.login:
        if not allow_self:
            raise OutOfScope(NOT_SELF)
    elif account.midadmin:
        raise refusal
    return account


def _check_fields(ctx, scope, values, accounts):
    """
    Refuse what a middle admin may not set on C{accounts} (the accounts the
    change applies to): the root fields, its own capacity, a capacity of 0
    or one that breaks the group's total, a hosting address outside its
    domain.  Bad values raise FormErrors (400); forbidden fields OutOfScope.
    """
    parsed = consoleops.parse_values(values, FIELDS_BY_KEY)
    for key in ROOT_FIELDS:
        if key in parsed:
            if key == "boardgroup" and parsed[key] == scope.group:
                continue
            if any(a.fields.get(key, FIELDS_BY_KEY[key].default) != parsed[key]
                   for a in accounts):
                raise OutOfScope(ROOT_ONLY)
    if "capacity" in parsed:
        changed = [a for a in accounts if a.capacity != parsed["capacity"]]
        if changed:
            if any(a.id == scope.login for a in changed):
                raise OutOfScope(OWN_CAPACITY)
            _check_capacity(ctx, scope, parsed["capacity"], {a.id for a in accounts})
    address = parsed.get("address")
    if address and any(a.address != address for a in accounts):
        _check_domain(scope, address)
    return parsed


def _check_capacity(ctx, scope, capacity, replaced, added=0):
    """
    C{capacity} for each account of C{replaced} (IDs) and C{added} new ones
    keeps the group within the middle admin's capacity.  @raise FormErrors
    """
    if capacity <= 0:
        raise FormErrors({"capacity": CAPACITY_ZERO})
    others = sum(a.capacity for a in _members(ctx, scope) if a.id not in replaced)
    total = others + capacity * (len(replaced) + added)
    if total > scope.capacity:
        raise FormErrors({"capacity": CAPACITY_OVER})


def _check_domain(scope, address):
    if not scope.domain or address.rpartition("@")[2].lower() != scope.domain:
        raise FormErrors({"address": OTHER_DOMAIN})


def user_add(ctx, scope, aid, password, name="", address="", capacity="0"):
    """
    Create an account in the middle admin's group, within its limits, and
    send it the welcome message.

    @raise InvalidValue / FormErrors / AccountExists / LicenseOver
    @return: the new account.
    """
    aid = check_id(aid)
    if not password:
        raise FormErrors({"password": EMPTY_PASSWORD})
    try:
        size = parse_field("capacity", capacity)
    except InvalidValue as e:
        raise FormErrors({"capacity": str(e)})
    fields = {"name": parse_field("name", name), "boardgroup": scope.group, "capacity": size}
    address = str(address or "").strip().lower()
    with _CREATE_LOCK:
        if len(_members(ctx, scope)) >= scope.maxaccounts:
            raise FormErrors({"id": ACCOUNTS_OVER})
        _check_capacity(ctx, scope, size, set(), added=1)
        if address:
            _check_domain(scope, parse_field("address", address))
            try:
                ops._check_address_free(ctx, address)
            except (InvalidValue, AccountExists) as e:
                raise FormErrors({"address": str(e)})
            fields["address"] = address
        account = ctx.accounts.add(aid, password, **fields)
        _note(ctx, aid, scope.group)
    ctx.log("user add %s (middle admin %s, group %d)" % (aid, scope.login, scope.group))
    ops._send_welcome(ctx, account)
    return account


def user_update(ctx, scope, aid, values, password=""):
    """The account window of a middle admin (its checks, then L{consoleops.user_update})."""
    account = check_account(ctx, scope, aid)
    _check_fields(ctx, scope, values, [account])
    return consoleops.user_update(ctx, account.id, values, password=password)


def user_bulk(ctx, scope, ids, values):
    """
    The bulk window of a middle admin: every ID must be one it manages (not
    its own), or nothing is changed.

    @raise OutOfScope / FormErrors
    """
    accounts = [check_account(ctx, scope, aid, allow_self=False) for aid in ids]
    if values:
        _check_fields(ctx, scope, values, accounts)
    return consoleops.user_bulk(ctx, [a.id for a in accounts], values)


def user_delete(ctx, scope, aid):
    """Delete an account of the group (never the middle admin's own)."""
    account = check_account(ctx, scope, aid, allow_self=False)
    removed = ops.user_del(ctx, account.id)
    _note(ctx, account.id, None)
    return removed


def account_action(ctx, scope, aid, action):
    """Backup, zip (into zip/mid/) or import of one account of the group."""
    account = check_account(ctx, scope, aid)
    if action == "backup":
        return ops.backup(ctx, account.id)
    if action == "zip":
        return ops.zip_mailbox(ctx, account.id, "mid")
    if action == "import":
        return ops.import_eml(ctx, account.id)
    raise InvalidValue("unknown action %r" % (action,))


# -- the group's webmail logo and footer ----------------------------------------------


def brand_folder(home, group):
    """data/midadmin/<group>/ (the group is a number: nothing else reaches the path)."""
    return safe_join(home.data, "midadmin", str(int(group)))


def logo_kind(data):
    """png, gif or jpg from the first bytes, or None."""
    for magic, kind in LOGO_MAGIC:
        if data.startswith(magic):
            return kind
    return None


def logo_set(ctx, scope, data):
    """
    Store the group's webmail logo (PNG, GIF or JPEG by content, at most
    MAX_LOGO bytes).  @raise InvalidValue: anything else (SVG included).
    """
    data = bytes(data or b"")
    if not data:
        raise InvalidValue(LOGO_EMPTY)
    if len(data) > MAX_LOGO:
        raise InvalidValue(LOGO_LARGE)
    kind = logo_kind(data)
    if kind is None:
        raise InvalidValue(LOGO_TYPE)
    folder = brand_folder(ctx.home, scope.group)
    atomic_write(os.path.join(folder, "logo." + kind), data)
    for other in set(LOGO_TYPES) - {kind}:
        _unlink(os.path.join(folder, "logo." + other))
    ctx.log("midadmin %s: logo of group %d set (%s, %d bytes)"
            % (scope.login, scope.group, kind, len(data)))
    return kind


def logo_delete(ctx, scope):
    """Remove the group's logo (the skin's own shows again)."""
    folder = brand_folder(ctx.home, scope.group)
    for kind in LOGO_TYPES:
        _unlink(os.path.join(folder, "logo." + kind))
    ctx.log("midadmin %s: logo of group %d removed" % (scope.login, scope.group))


def footer_get(ctx, scope):
    """The group's footer text ("" when none)."""
    return _read_footer(brand_folder(ctx.home, scope.group))


def footer_set(ctx, scope, text):
    """Store the group's footer text (plain text; empty removes it).  @raise InvalidValue"""
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidValue(FOOTER_CONTROL)
    if len(text) > MAX_FOOTER:
        raise InvalidValue(FOOTER_LONG)
    path = os.path.join(brand_folder(ctx.home, scope.group), FOOTER_FILE)
    if text:
        atomic_write(path, (text + "\n").encode("utf-8"))
    else:
        _unlink(path)
    ctx.log("midadmin %s: footer of group %d set (%d characters)"
            % (scope.login, scope.group, len(text)))
    return text


def _read_footer(folder):
    try:
        with open(os.path.join(folder, FOOTER_FILE), "rb") as f:
            return f.read().decode("utf-8", "replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class Brand:
    """What the webmail shows for a group: a data: URI of the logo, the footer."""
    logo: str = ""
    footer: str = ""


NO_BRAND = Brand()


class BrandCache:
    """
    The logo and footer of each group for the webmail pages, read again
    when the group's folder changes (every write replaces a file in it).
    """

    def __init__(self, home):
        self.home = home
        self._cache = {}

    def get(self, group):
        """The L{Brand} of a board group (NO_BRAND for group 0 or none set)."""
        try:
            group = int(group)
        except (TypeError, ValueError):
            return NO_BRAND
        if group < 1:
            return NO_BRAND
        folder = brand_folder(self.home, group)
        stamp = stat_stamp(folder)
        cached = self._cache.get(group)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        brand = NO_BRAND
        if stamp is not None:
            logo = ""
            for kind, mime in LOGO_TYPES.items():
                try:
                    with open(os.path.join(folder, "logo." + kind), "rb") as f:
                        data = f.read(MAX_LOGO + 1)
                except FileNotFoundError:
                    continue
                if len(data) <= MAX_LOGO and logo_kind(data) == kind:
                    logo = "data:%s;base64,%s" % (mime, base64.b64encode(data).decode("ascii"))
                    break
            brand = Brand(logo=logo, footer=_read_footer(folder))
        self._cache[group] = (stamp, brand)
        return brand

