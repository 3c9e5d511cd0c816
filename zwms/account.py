# -*- test-case-name: tests.test_account -*-
"""
Value types shared by the store, the protocols and the admin layer:
the account field schema (SPEC §0 `user set` keys, seed §16), accounts,
address resolutions, deliveries and message index entries.
"""

import re
from dataclasses import dataclass, field

from zwms.errors import InvalidValue

#: Folders every mailbox has (SPEC W2).
FOLDERS = ("Inbox", "Sent", "Drafts", "Spam", "Trash")

ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
FOLDER_RE = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,63}\Z")


def parse_bool(text):
    """Parse 0/1, yes/no, on/off, true/false."""
    t = str(text).strip().lower()
    if t in ("1", "yes", "on", "true", "y"):
        return True
    if t in ("0", "no", "off", "false", "n", ""):
        return False
    raise InvalidValue("expected 0 or 1, got %r" % (text,))


def parse_int(text):
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InvalidValue("expected a whole number, got %r" % (text,))
    if value < 0:
        raise InvalidValue("expected a number >= 0, got %r" % (text,))
    return value


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text):
    """Parse a byte count with an optional K, M or G suffix."""
    m = re.match(r"^\s*(\d+)\s*([KMGkmg]?)[Bb]?\s*$", str(text))
    if not m:
        raise InvalidValue("expected a size like 500K, 20M or 1G, got %r" % (text,))
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).upper()]


def parse_text(text):
    value = str(text)
    if any(c in value for c in "\r\n\x00"):
        raise InvalidValue("line breaks are not allowed")
    return value.strip()


def parse_choice(*choices):
    def parse(text):
        value = str(text).strip().lower()
        if value not in choices:
            raise InvalidValue("expected one of %s, got %r" % ("|".join(choices), text))
        return value
    return parse


def parse_address_or_empty(text):
    value = parse_text(text)
    if value and not is_address(value):
        raise InvalidValue("not an email address: %r" % (text,))
    return value.lower()


def format_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass(frozen=True)
class Field:
    """One account setting: its key, default, parser and help text."""
    key: str
    default: object
    parse: object
    help: str


#: The account fields of SPEC §0, in the order `user show` prints them.
ACCOUNT_FIELDS = (
    Field("name", "", parse_text, "display name"),
    Field("address", "", parse_address_or_empty,
          "hosting address (§23): this address becomes the account's own"),
    Field("forward", "", parse_address_or_empty, "forwarding address (§16)"),
    Field("forwardmode", "notice", parse_choice("notice", "copy"),
          "notice: send a notice of each mail; copy: send a copy"),
    Field("active", True, parse_bool, "an inactive account receives nothing (450)"),
    Field("locked", False, parse_bool, "a locked account cannot log in or receive"),
    Field("relay", True, parse_bool, "may relay after SMTP AUTH"),
    Field("relayipauth", True, parse_bool, "may relay from an IP that logged in by POP3"),
    Field("pop3share", False, parse_bool, "offer already fetched mail to POP3 (§31)"),
    Field("maxmails", 0, parse_int, "most messages kept (0 = no limit)"),
    Field("capacity", 0, parse_size, "most bytes kept, K/M/G suffixes (0 = no limit)"),
    Field("rcptlimit", 0, parse_int, "most recipients per sent message (0 = no limit)"),
    Field("sendsize", 0, parse_size, "largest sent message (0 = no limit)"),
    Field("daycount", 0, parse_int, "most messages sent a day (0 = no limit)"),
    Field("daysize", 0, parse_size, "most bytes sent a day (0 = no limit)"),
    Field("boardgroup", 0, parse_int, "board group number (§14, §24, §30)"),
    Field("ipsession", True, parse_bool, "webmail session bound to the IP (§18)"),
    Field("cookiesession", True, parse_bool, "webmail session cookie check (§18)"),
    Field("randsession", True, parse_bool, "webmail random session token (§18)"),
    Field("receivemode", "all", parse_choice("all", "domain", "allow", "addressbook"),
          "receive only from: all, own domains, allowed addresses, address book"),
    Field("midadmin", False, parse_bool, "middle administrator (§24)"),
    Field("midmaxaccounts", 0, parse_int, "accounts a middle admin may manage"),
    Field("midcapacity", 0, parse_size, "capacity a middle admin may hand out"),
    Field("boards", "", parse_text, "boards allowed besides the board group"),
    Field("bulksend", False, parse_bool, "may use the bulk-send window (§21)"),
    Field("outlawreject", False, parse_bool, "refuse delegated outlaw mail (§32)"),
    Field("junkreject", False, parse_bool, "refuse delegated spam/virus mail (§32)"),
    Field("badmailpop3", False, parse_bool, "do not hand bad mail to POP3 (§32)"),
)

FIELDS_BY_KEY = {f.key: f for f in ACCOUNT_FIELDS}

#: Keys that `user set` accepts besides the fields above.
SETTABLE_KEYS = tuple(FIELDS_BY_KEY) + ("password",)


def parse_field(key, text):
    """Parse the text form of one account field; raise InvalidValue."""
    try:
        spec = FIELDS_BY_KEY[key]
    except KeyError:
        raise InvalidValue("unknown account key %r (known: %s)"
                           % (key, ", ".join(SETTABLE_KEYS)))
    return spec.parse(text)


def default_fields():
    return {f.key: f.default for f in ACCOUNT_FIELDS}


@dataclass
class Account:
    """One mailbox account."""
    id: str
    password_hash: str = ""
    created: float = 0.0
    fields: dict = field(default_factory=default_fields)

    def __getattr__(self, key):
        # Fields read as attributes: account.maxmails, account.locked …
        fields = self.__dict__.get("fields")
        if fields is not None and key in FIELDS_BY_KEY:
            return fields.get(key, FIELDS_BY_KEY[key].default)
        raise AttributeError(key)

    def show_lines(self):
        """The `user show` lines, `key: value`."""
        lines = ["id: %s" % self.id]
        for f in ACCOUNT_FIELDS:
            lines.append("%s: %s" % (f.key, format_value(self.fields.get(f.key, f.default))))
        return lines


ADDRESS_RE = re.compile(
    r"^[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def is_address(text):
    """
    A plain dot-atom address: no quotes, no source routes, one @, and no % or !
    (the classic relay tricks user%remote@local and bang paths).
    """
    return len(text) <= 254 and bool(ADDRESS_RE.fullmatch(text))


def check_id(account_id):
    """Return the normalised ID or raise InvalidValue."""
    aid = str(account_id).strip().lower()
    if not ID_RE.fullmatch(aid) or ".." in aid:
        raise InvalidValue("invalid account ID %r: use a-z, 0-9, '.', '_', '-' "
                           "(up to 64, starting with a letter or digit)" % (account_id,))
    return aid


@dataclass(frozen=True)
class Resolution:
    """
    Where mail for one address goes.

    kind: "local" (accounts: the account IDs), "remote" (addresses: outside
    addresses an alias or .rep points to), "unknown" (a local domain but no
    such mailbox), or "foreign" (not one of our domains).
    """
    kind: str
    accounts: tuple = ()
    addresses: tuple = ()


@dataclass(frozen=True)
class Delivery:
    """
    One mailbox copy to store: the account, its folder and the bytes;
    C{bad} marks mail the receive policy classified as outlaw, spam or virus
    (SPEC P7; the index's C{bad} column, which POP3 withholds for
    badmailpop3 accounts).
    """
    account_id: str
    data: bytes
    folder: str = "Inbox"
    bad: bool = False


@dataclass(frozen=True)
class MessageInfo:
    """One index row."""
    name: str
    folder: str
    size: int
    received: float
    fetched: bool = False
    seen: bool = False
    bad: bool = False
