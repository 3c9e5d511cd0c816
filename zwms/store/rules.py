# -*- test-case-name: tests.test_policy_rules -*-
"""
Each account's own receive rules (SPEC P6; seed §32), the store the
webmail edits: allowed and refused addresses ("메일주소관리"), allowed and
refused IPs ("IP 관리"), sorting rules ("편지분류설정": sender or subject →
a folder, or delete) and the user's spam filter ("스팸필터": the block button
on a read mail registers its sender and subject).

One JSON file per account, data/userd/ID/rules.json, with a schema
version, written atomically (temp, fsync, rename, fsync dir).  Reads are
cached by the file's stat stamp, so a change made by any process or any
L{RulesStore} instance is seen by the next C{get()} (one stat a call).
Writes fsync: callers in the reactor thread run them in a thread.

Patterns: addresses are C{user@example.com} (that address) or
C{@example.com} / C{example.com} (the domain and its subdomains); IPs are
exact addresses, CIDR blocks or dotted prefixes (C{192.168.1.}); sort and
filter patterns on the subject are substrings (case ignored), on the sender
address patterns as above.
"""

import json
import os
import re
import threading
from dataclasses import dataclass

from zwms.account import FOLDER_RE, FOLDERS, check_id
from zwms.config.schema import parse_ip_list
from zwms.errors import InvalidValue, NoSuchAccount
from zwms.fileio import atomic_write
from zwms.store.directory import stat_stamp

RULES_FILE = "rules.json"
VERSION = 1
#: Most entries in one list, and the longest pattern: the checks run them
#: for every mail.
MAX_ENTRIES = 1000
MAX_PATTERN = 256

ADDRESS_LISTS = ("allow_addresses", "deny_addresses")
IP_LISTS = ("allow_ips", "deny_ips")
LISTS = ADDRESS_LISTS + IP_LISTS
FIELDS = ("sender", "subject")

_DOMAIN_RE = re.compile(r"^@?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                        r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL_RE = re.compile(r"^[a-z0-9#$&'*+/=?^_`{|}~.-]{1,64}\Z")


class CorruptRules(InvalidValue):
    """A rules.json cannot be read; C{path} says which."""

    def __init__(self, path, message):
        InvalidValue.__init__(self, "%s: %s" % (path, message))
        self.path = path


@dataclass(frozen=True)
class SortRule:
    """Sender or subject matching C{pattern} → C{folder}, or delete when C{folder} is ""."""
    field: str
    pattern: str
    folder: str = ""

    @property
    def delete(self):
        return not self.folder


@dataclass(frozen=True)
class FilterEntry:
    """One entry of the user's spam filter: a sender or a subject."""
    field: str
    pattern: str


@dataclass(frozen=True)
class Rules:
    """One account's rules (empty when it never set any)."""
    allow_addresses: tuple = ()
    deny_addresses: tuple = ()
    allow_ips: tuple = ()
    deny_ips: tuple = ()
    sort: tuple = ()
    spam_filter: tuple = ()

    def to_json(self):
        data = {"version": VERSION}
        for name in LISTS:
            data[name] = list(getattr(self, name))
        data["sort"] = [{"field": r.field, "pattern": r.pattern, "folder": r.folder}
                        for r in self.sort]
        data["spam_filter"] = [{"field": e.field, "pattern": e.pattern}
                               for e in self.spam_filter]
        return data


EMPTY = Rules()


def _text(value, what):
    if not isinstance(value, str):
        raise InvalidValue("%s must be text, got %r" % (what, value))
    value = value.strip()
    if not value:
        raise InvalidValue("%s is empty" % (what,))
    if len(value) > MAX_PATTERN:
        raise InvalidValue("%s is longer than %d characters" % (what, MAX_PATTERN))
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidValue("%s has control characters" % (what,))
    return value


def check_address_pattern(value):
    """C{user@domain}, C{@domain} or C{domain}, lower case; raise InvalidValue."""
    value = _text(value, "address").lower()
    local, at, domain = value.rpartition("@")
    if at and local:
        if _LOCAL_RE.match(local) and _DOMAIN_RE.match(domain) and not domain.startswith("@"):
            return value
    elif _DOMAIN_RE.match(value):
        return value
    raise InvalidValue("not an address, @domain or domain: %r" % (value,))


def check_ip_pattern(value):
    """An IP, CIDR block or dotted prefix; raise InvalidValue."""
    value = _text(value, "IP")
    if "," in value or " " in value:
        raise InvalidValue("one IP at a time, got %r" % (value,))
    return parse_ip_list(value)


def check_field(value):
    if value not in FIELDS:
        raise InvalidValue("field must be one of %s, got %r" % ("|".join(FIELDS), value))
    return value


def check_pattern(field_name, value):
    """A sender pattern is an address pattern; a subject pattern any text."""
    if field_name == "sender":
        return check_address_pattern(value)
    return _text(value, "subject pattern")


def check_folder_name(folder):
    """A folder a sort rule may put mail into (not Sent/Drafts/Trash)."""
    folder = _text(folder, "folder")
    if folder in ("Sent", "Drafts", "Trash"):
        raise InvalidValue("mail cannot be sorted into %s" % (folder,))
    if folder not in FOLDERS and not FOLDER_RE.match(folder):
        raise InvalidValue("invalid folder name %r" % (folder,))
    return folder


def _checked_list(values, check):
    out = []
    for value in values:
        value = check(value)
        if value not in out:
            out.append(value)
    if len(out) > MAX_ENTRIES:
        raise InvalidValue("more than %d entries" % (MAX_ENTRIES,))
    return tuple(out)


def rules_from_json(data):
    """L{Rules} from the parsed file; raise InvalidValue on anything wrong."""
    if not isinstance(data, dict):
        raise InvalidValue("expected an object")
    if data.get("version", VERSION) != VERSION:
        raise InvalidValue("unknown version %r" % (data.get("version"),))
    values = {}
    for name in LISTS:
        items = data.get(name, [])
        if not isinstance(items, list):
            raise InvalidValue("%s must be a list" % (name,))
        check = check_address_pattern if name in ADDRESS_LISTS else check_ip_pattern
        values[name] = _checked_list(items, check)
    sort, spam_filter = [], []
    for item in _objects(data, "sort"):
        f = check_field(item.get("field"))
        folder = item.get("folder") or ""
        sort.append(SortRule(f, check_pattern(f, item.get("pattern")),
                             check_folder_name(folder) if folder else ""))
    for item in _objects(data, "spam_filter"):
        f = check_field(item.get("field"))
        entry = FilterEntry(f, check_pattern(f, item.get("pattern")))
        if entry not in spam_filter:
            spam_filter.append(entry)
    if len(sort) > MAX_ENTRIES or len(spam_filter) > MAX_ENTRIES:
        raise InvalidValue("more than %d entries" % (MAX_ENTRIES,))
    return Rules(sort=tuple(sort), spam_filter=tuple(spam_filter), **values)


def _objects(data, name):
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidValue("%s must be a list of objects" % (name,))
    return items


class RulesStore:
    """
    The rules of every account, under a L{zwms.home.Home}.

    C{get} is a stat() (a read when the file changed) and may run in any
    thread; the writers fsync and are meant for a thread.
    """

    def __init__(self, home):
        self.home = home
        self._cache = {}  # account_id -> (stamp, Rules)
        self._lock = threading.Lock()

    def path(self, account_id):
        """data/userd/ID/rules.json."""
        return os.path.join(self.home.user_dir(check_id(account_id)), RULES_FILE)

    def get(self, account_id):
        """
        The account's rules, as of now (L{EMPTY} when it has none).

        @raise CorruptRules: the file is not valid (the caller decides; the
            receive policy then applies no user rule and logs it).
        """
        path = self.path(account_id)
        stamp = stat_stamp(path)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if stamp is None:
            rules = EMPTY
        else:
            try:
                with open(path, "rb") as f:
                    rules = rules_from_json(json.loads(f.read().decode("utf-8")))
            except FileNotFoundError:
                rules, stamp = EMPTY, None
            except (ValueError, UnicodeDecodeError, InvalidValue) as e:
                raise CorruptRules(path, str(e))
        self._cache[path] = (stamp, rules)
        return rules

    def _update(self, account_id, change):
        account_id = check_id(account_id)
        user_dir = self.home.user_dir(account_id)
        if not os.path.isdir(user_dir):
            raise NoSuchAccount("no account %r" % (account_id,))
        with self._lock:
            try:
                current = self.get(account_id)
            except CorruptRules:
                # A broken file is replaced by the user's next change rather
                # than blocking every edit; its bad content is gone either way.
                current = EMPTY
            data = change(current.to_json())
            rules = rules_from_json(data)
            atomic_write(self.path(account_id),
                         (json.dumps(rules.to_json(), ensure_ascii=False, indent=1)
                          + "\n").encode("utf-8"))
            return self.get(account_id)

    # -- the four lists --------------------------------------------------

    def set_list(self, account_id, kind, values):
        """Replace one of allow_addresses, deny_addresses, allow_ips, deny_ips."""
        kind = _kind(kind)
        values = list(values)
        return self._update(account_id, lambda d: dict(d, **{kind: values}))

    def add(self, account_id, kind, value):
        """Add one entry to a list (kept once)."""
        kind = _kind(kind)
        return self._update(account_id, lambda d: dict(d, **{kind: d[kind] + [value]}))

    def remove(self, account_id, kind, value):
        """Remove one entry from a list (no error when it is not there)."""
        kind = _kind(kind)
        value = str(value).strip().lower() if kind in ADDRESS_LISTS else str(value).strip()
        return self._update(account_id, lambda d: dict(
            d, **{kind: [x for x in d[kind] if x != value]}))

    # -- sorting rules ---------------------------------------------------

    def add_sort_rule(self, account_id, field_name, pattern, folder=None):
        """
        Add a sorting rule at the end: mail whose C{field_name} ("sender" or
        "subject") matches C{pattern} goes to C{folder}, or is deleted when
        C{folder} is None or "".
        """
        rule = {"field": field_name, "pattern": pattern, "folder": folder or ""}
        return self._update(account_id, lambda d: dict(d, sort=d["sort"] + [rule]))

    def remove_sort_rule(self, account_id, index):
        """Remove the sorting rule at C{index} (0-based); raise InvalidValue."""
        def change(d):
            if not 0 <= int(index) < len(d["sort"]):
                raise InvalidValue("no sorting rule number %r" % (index,))
            return dict(d, sort=[r for i, r in enumerate(d["sort"]) if i != int(index)])
        return self._update(account_id, change)

    def set_sort_rules(self, account_id, rules):
        """Replace every sorting rule: (field, pattern, folder-or-None) triples."""
        items = [{"field": f, "pattern": p, "folder": folder or ""} for f, p, folder in rules]
        return self._update(account_id, lambda d: dict(d, sort=items))

    # -- the user's spam filter ------------------------------------------

    def block(self, account_id, sender="", subject=""):
        """
        The block button on a read mail: register its sender and subject
        (each when given) in the spam filter.
        """
        new = []
        if sender:
            new.append({"field": "sender", "pattern": sender})
        if subject and subject.strip():
            new.append({"field": "subject", "pattern": subject})
        if not new:
            raise InvalidValue("nothing to block: no sender and no subject")
        return self._update(account_id, lambda d: dict(d, spam_filter=d["spam_filter"] + new))

    def unblock(self, account_id, field_name, pattern):
        """Remove one spam filter entry (no error when it is not there)."""
        field_name = check_field(field_name)
        pattern = check_pattern(field_name, pattern)
        return self._update(account_id, lambda d: dict(d, spam_filter=[
            e for e in d["spam_filter"]
            if not (e["field"] == field_name and e["pattern"] == pattern)]))


def _kind(kind):
    if kind not in LISTS:
        raise InvalidValue("list must be one of %s, got %r" % (", ".join(LISTS), kind))
    return kind
