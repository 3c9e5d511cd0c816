# -*- test-case-name: tests.test_addressbook -*-
"""
A webmail user's address book (SPEC W3, §28): contacts (name, addresses,
phone, memo, groups) and the group list, in data/userd/ID/addressbook.json::

    {"version": 1, "next": 3, "groups": ["거래처", "friends"],
     "contacts": [{"id": 1, "name": "홍길동", "addresses": ["hong@far.test"],
                   "phone": "010-1234-5678", "memo": "", "groups": ["거래처"]}, ...]}

Every change rewrites the file atomically (zwms.fileio) under a lock per
file, so two web threads never lose each other's change.  Blocking: call
from a thread.

CSV import (§28) reads Outlook exports: a header row in English or Korean
(Name / First Name / Last Name / E-mail Address ..., 이름 / 성 / 전자 메일
주소 ...), or no header (name, address); UTF-8 with or without BOM, UTF-16
and EUC-KR/CP949.  L{AddressBook.import_csv} deletes the imported file only
after the book is durably written, as §28 says.
"""

import csv
import io
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field

from zwms.account import check_id, is_address
from zwms.errors import InvalidValue
from zwms.fileio import atomic_write, write_temp
from zwms.home import safe_join
from zwms.contentlines import escape_text, fold_line

FILENAME = "addressbook.json"
MAX_CONTACTS = 10000
MAX_FIELD = 200
MAX_MEMO = 4000
MAX_ADDRESSES = 10
MAX_IMPORT_BYTES = 10 * 1024 * 1024

_locks = {}
_locks_guard = threading.Lock()


def _lock_for(path):
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


@dataclass
class Contact:
    """One address-book entry."""
    id: int
    name: str
    addresses: list
    phone: str = ""
    memo: str = ""
    groups: list = field(default_factory=list)

    @property
    def address(self):
        """The first (main) address."""
        return self.addresses[0] if self.addresses else ""


@dataclass
class ImportReport:
    """What a CSV import did: counts, and each skipped line with its reason."""
    added: int = 0
    duplicates: int = 0
    skipped: list = field(default_factory=list)   # [(line number, reason)]
    encoding: str = ""
    deleted: bool = False


def _clean(text, limit=MAX_FIELD, what="field"):
    value = " ".join(str(text or "").split())
    if len(value) > limit:
        raise InvalidValue("%s is too long (most %d characters)" % (what, limit))
    return value


def _clean_memo(text):
    value = str(text or "").replace("\r\n", "\n").replace("\x00", "")
    if len(value) > MAX_MEMO:
        raise InvalidValue("the memo is too long (most %d characters)" % MAX_MEMO)
    return value


def _clean_addresses(addresses):
    if isinstance(addresses, str):
        addresses = re.split(r"[,;\s]+", addresses)
    out = []
    for a in addresses:
        a = str(a).strip().strip("<>")
        if not a:
            continue
        if not is_address(a):
            raise InvalidValue("not an e-mail address: %r" % (a,))
        if a.lower() not in [x.lower() for x in out]:
            out.append(a)
    if not out:
        raise InvalidValue("a contact needs an e-mail address")
    if len(out) > MAX_ADDRESSES:
        raise InvalidValue("at most %d addresses per contact" % MAX_ADDRESSES)
    return out


def _clean_groups(groups):
    if isinstance(groups, str):
        groups = [g for g in groups.split(",")]
    out = []
    for g in groups:
        g = _clean(g, 60, "a group name")
        if g and g not in out:
            out.append(g)
    return out


class AddressBook:
    """The address books of one server home."""

    def __init__(self, home):
        self.home = home

    # ---- storage --------------------------------------------------------

    def _path(self, account_id):
        return safe_join(self.home.userd, check_id(account_id), FILENAME)

    def _load(self, path):
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except FileNotFoundError:
            return {"version": 1, "next": 1, "groups": [], "contacts": []}
        except (ValueError, UnicodeDecodeError) as e:
            # Never overwrite a damaged book with an empty one.
            raise InvalidValue("the address book file is damaged: %s" % (e,))
        data.setdefault("groups", [])
        data.setdefault("contacts", [])
        data.setdefault("next", 1 + max([c["id"] for c in data["contacts"]] or [0]))
        return data

    def _save(self, path, data):
        atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    def _change(self, account_id, fn):
        """Run C{fn(data)} on the book under its lock and save it; return fn's result."""
        path = self._path(account_id)
        with _lock_for(path):
            data = self._load(path)
            result = fn(data)
            self._save(path, data)
            return result

    # ---- reading --------------------------------------------------------

    def contacts(self, account_id, group=None):
        """All contacts (of one group when C{group} is given), sorted by name."""
        data = self._load(self._path(account_id))
        out = [Contact(**c) for c in data["contacts"]]
        if group is not None:
            out = [c for c in out if group in c.groups]
        return sorted(out, key=lambda c: (c.name.lower(), c.address.lower()))

    def get(self, account_id, contact_id):
        """One contact. @raise KeyError: no such contact."""
        for c in self._load(self._path(account_id))["contacts"]:
            if c["id"] == int(contact_id):
                return Contact(**c)
        raise KeyError(contact_id)

    def groups(self, account_id):
        """The group names: the declared ones, then any only used by contacts."""
        data = self._load(self._path(account_id))
        names = list(data["groups"])
        for c in data["contacts"]:
            names += [g for g in c["groups"] if g not in names]
        return names

    def search(self, account_id, text, group=None):
        """Contacts whose name, address, phone, memo or group contains C{text}."""
        needle = str(text).strip().lower()
        found = []
        for c in self.contacts(account_id, group):
            hay = " ".join([c.name, c.phone, c.memo] + c.addresses + c.groups).lower()
            if needle in hay:
                found.append(c)
        return found

    def addresses(self, account_id):
        """Every address in the book, lower-cased (receive mode "addressbook", §32)."""
        out = set()
        for c in self._load(self._path(account_id))["contacts"]:
            out.update(a.lower() for a in c["addresses"])
        return out

    def complete(self, account_id, prefix, limit=10):
        """
        Compose completion: (name, address) pairs whose name, address or an
        address's domain-less part starts with C{prefix} (case-insensitive).
        """
        p = str(prefix).strip().lower()
        if not p:
            return []
        out = []
        for c in self.contacts(account_id):
            words = [w.lower() for w in c.name.split()]
            for a in c.addresses:
                if c.name.lower().startswith(p) or a.lower().startswith(p) or \
                        any(w.startswith(p) for w in words):
                    out.append((c.name, a))
        return out[:limit]

    # ---- changing -------------------------------------------------------

    def add(self, account_id, name, addresses, phone="", memo="", groups=()):
        """Add a contact. @raise InvalidValue: bad field, book full."""
        entry = {"name": _clean(name, what="the name"),
                 "addresses": _clean_addresses(addresses),
                 "phone": _clean(phone, 60, "the phone number"), "memo": _clean_memo(memo),
                 "groups": _clean_groups(groups)}
        if not entry["name"]:
            entry["name"] = entry["addresses"][0].split("@")[0]

        def fn(data):
            if len(data["contacts"]) >= MAX_CONTACTS:
                raise InvalidValue("the address book is full (%d contacts)" % MAX_CONTACTS)
            entry["id"] = data["next"]
            data["next"] += 1
            data["contacts"].append(entry)
            return Contact(**entry)
        return self._change(account_id, fn)

    def edit(self, account_id, contact_id, **values):
        """
        Change some fields (name, addresses, phone, memo, groups) of a contact.

        @raise KeyError: no such contact.  @raise InvalidValue: bad field.
        """
        cleaners = {"name": lambda v: _clean(v, what="the name"),
                    "addresses": _clean_addresses,
                    "phone": lambda v: _clean(v, 60, "the phone number"),
                    "memo": _clean_memo, "groups": _clean_groups}
        clean = {}
        for k, v in values.items():
            if k not in cleaners:
                raise InvalidValue("unknown contact field %r" % (k,))
            clean[k] = cleaners[k](v)

        def fn(data):
            for c in data["contacts"]:
                if c["id"] == int(contact_id):
                    c.update(clean)
                    return Contact(**c)
            raise KeyError(contact_id)
        return self._change(account_id, fn)

    def delete(self, account_id, contact_ids):
        """Delete contacts by id; return how many were removed."""
        ids = {int(i) for i in contact_ids}

        def fn(data):
            before = len(data["contacts"])
            data["contacts"] = [c for c in data["contacts"] if c["id"] not in ids]
            return before - len(data["contacts"])
        return self._change(account_id, fn)

    def add_group(self, account_id, name):
        """Declare a group (no-op when it exists)."""
        name = _clean(name, 60, "a group name")
        if not name:
            raise InvalidValue("a group needs a name")

        def fn(data):
            if name not in data["groups"]:
                data["groups"].append(name)
        self._change(account_id, fn)

    def rename_group(self, account_id, old, new):
        """Rename a group everywhere."""
        new = _clean(new, 60, "a group name")
        if not new:
            raise InvalidValue("a group needs a name")

        def fn(data):
            data["groups"] = [new if g == old else g for g in data["groups"]]
            data["groups"] = list(dict.fromkeys(data["groups"]))
            for c in data["contacts"]:
                c["groups"] = list(dict.fromkeys(new if g == old else g for g in c["groups"]))
        self._change(account_id, fn)

    def delete_group(self, account_id, name):
        """Remove a group (its contacts stay, without that group)."""
        def fn(data):
            data["groups"] = [g for g in data["groups"] if g != name]
            for c in data["contacts"]:
                c["groups"] = [g for g in c["groups"] if g != name]
        self._change(account_id, fn)

    def set_groups(self, account_id, contact_ids, group, member=True):
        """Put contacts into a group (or take them out when C{member} is False)."""
        group = _clean(group, 60, "a group name")
        ids = {int(i) for i in contact_ids}

        def fn(data):
            for c in data["contacts"]:
                if c["id"] in ids:
                    if member and group not in c["groups"]:
                        c["groups"].append(group)
                    elif not member:
                        c["groups"] = [g for g in c["groups"] if g != group]
        self._change(account_id, fn)

    # ---- import / export ------------------------------------------------

    def import_csv(self, account_id, path, group=None):
        """
        Import an Outlook CSV file and, once the book is durably written,
        delete the file (§28).  A file with no usable line is kept and
        refused.

        @return: an L{ImportReport} (deleted=True).
        @raise InvalidValue: unreadable file, no address found, book full.
        """
        size = os.path.getsize(path)
        if size > MAX_IMPORT_BYTES:
            raise InvalidValue("the CSV file is too large (most %d bytes)" % MAX_IMPORT_BYTES)
        with open(path, "rb") as f:
            data = f.read()
        report = self.import_csv_bytes(account_id, data, group)
        os.unlink(path)
        report.deleted = True
        return report

    def import_upload(self, account_id, data, group=None):
        """
        Import a CSV file uploaded through the webmail (§28): it is written
        to a temp file in the account's folder (the C{.tmp-} prefix, so a
        crash leftover is swept) and imported with L{import_csv}, which
        deletes it after success; after a refusal it is removed too (the
        user still has the original).

        @return: an L{ImportReport} (deleted=True).
        @raise InvalidValue: as L{import_csv}.
        """
        if len(data) > MAX_IMPORT_BYTES:
            raise InvalidValue("the CSV file is too large (most %d bytes)" % MAX_IMPORT_BYTES)
        folder = os.path.dirname(self._path(account_id))
        os.makedirs(folder, exist_ok=True)
        path = write_temp(folder, data)
        try:
            return self.import_csv(account_id, path, group)
        finally:
            if os.path.exists(path):
                os.unlink(path)

    def import_csv_bytes(self, account_id, data, group=None):
        """Import CSV bytes (an upload); see L{import_csv}."""
        rows, encoding = parse_csv(data)
        entries, report = _rows_to_entries(rows)
        report.encoding = encoding
        if not entries and not report.duplicates:
            raise InvalidValue("no e-mail address found in the file (%d lines skipped)"
                               % len(report.skipped))
        groups = _clean_groups([group] if group else [])

        def fn(data):
            known = {a.lower() for c in data["contacts"] for a in c["addresses"]}
            for line_no, name, addrs, phone, memo in entries:
                if any(a.lower() in known for a in addrs):
                    report.duplicates += 1
                    continue
                if len(data["contacts"]) >= MAX_CONTACTS:
                    report.skipped.append((line_no, "the address book is full"))
                    continue
                data["contacts"].append({"id": data["next"], "name": name, "addresses": addrs,
                                         "phone": phone, "memo": memo, "groups": list(groups)})
                data["next"] += 1
                known.update(a.lower() for a in addrs)
                report.added += 1
            if groups and groups[0] not in data["groups"]:
                data["groups"].append(groups[0])
        self._change(account_id, fn)
        return report

    def export_csv(self, account_id, group=None):
        """The book as an Outlook-style CSV (UTF-8 with BOM, CRLF), re-importable."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(["Name", "E-mail Address", "E-mail 2 Address", "E-mail 3 Address",
                    "Mobile Phone", "Notes", "Categories"])
        for c in self.contacts(account_id, group):
            addrs = (c.addresses + ["", "", ""])[:3]
            w.writerow([_cell(v) for v in [c.name] + addrs + [c.phone, c.memo,
                                                               ";".join(c.groups)]])
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def export_vcard(self, account_id, group=None):
        """The book as vCard 3.0 (RFC 2426), UTF-8, CRLF, folded at 75 octets."""
        lines = []
        for c in self.contacts(account_id, group):
            lines += ["BEGIN:VCARD", "VERSION:3.0", "FN:" + escape_text(c.name),
                      "N:%s;;;;" % escape_text(c.name)]
            lines += ["EMAIL;TYPE=INTERNET%s:%s" % (";TYPE=PREF" if i == 0 else "", a)
                      for i, a in enumerate(c.addresses)]
            if c.phone:
                lines.append("TEL;TYPE=CELL:" + escape_text(c.phone))
            if c.memo:
                lines.append("NOTE:" + escape_text(c.memo))
            if c.groups:
                lines.append("CATEGORIES:" + ",".join(escape_text(g) for g in c.groups))
            lines.append("END:VCARD")
        return b"".join(fold_line(line) for line in lines)


def _cell(value):
    """A CSV cell that a spreadsheet will not run as a formula."""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value




# ---- CSV reading ----------------------------------------------------------

def parse_csv(data):
    """
    Decode and split a CSV file: (rows, encoding name).  UTF-16 by BOM, then
    UTF-8 (with or without BOM), else CP949 (EUC-KR's superset).
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text, encoding = data.decode("utf-16"), "utf-16"
    else:
        try:
            text, encoding = data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            try:
                text, encoding = data.decode("cp949"), "euc-kr"
            except UnicodeDecodeError:
                raise InvalidValue("the file is neither UTF-8 nor EUC-KR text")
    if "\x00" in text:
        raise InvalidValue("the file is not a text (CSV) file")
    first = text.split("\n", 1)[0]
    delimiter = max([",", "\t", ";"], key=first.count) if first else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return rows, encoding


#: Header names (lower-case, spaces removed) -> role.
_HEADERS = {
    "name": "name", "displayname": "name", "fullname": "name", "이름": "first",
    "firstname": "first", "givenname": "first", "middlename": "middle", "중간이름": "middle",
    "lastname": "last", "surname": "last", "familyname": "last", "성": "last",
    "표시이름": "name", "전체이름": "name", "성명": "name", "이름(표시)": "name",
    "e-mailaddress": "email", "emailaddress": "email", "email": "email", "e-mail": "email",
    "mail": "email", "전자메일주소": "email", "전자메일": "email", "이메일": "email",
    "이메일주소": "email", "메일주소": "email", "메일": "email",
    "e-mail2address": "email", "e-mail3address": "email", "전자메일2주소": "email",
    "전자메일3주소": "email",
    "mobilephone": "phone", "휴대폰": "phone", "휴대전화": "phone", "businessphone": "phone2",
    "homephone": "phone2", "회사전화": "phone2", "집전화": "phone2", "전화": "phone2",
    "phone": "phone",
    "notes": "memo", "메모": "memo", "note": "memo",
    "e-maildisplayname": "ignore", "전자메일표시이름": "ignore",
}


def _roles(header):
    roles = {}
    for i, name in enumerate(header):
        key = re.sub(r"\s+", "", name).lower()
        role = _HEADERS.get(key)
        if role and role != "ignore":
            roles.setdefault(role, []).append(i)
    return roles if "email" in roles else None


def _hangul(text):
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


def _uncell(value):
    value = value.strip()
    return value[1:] if value[:2] in ("'=", "'+", "'-", "'@") else value


def _rows_to_entries(rows):
    """(entries [(line, name, addresses, phone, memo)], report with skipped lines)."""
    report = ImportReport()
    entries = []
    if not rows:
        return entries, report
    roles = _roles(rows[0])
    body = rows[1:] if roles else rows
    first_line = 2 if roles else 1
    for n, row in enumerate(body, first_line):
        row = [_uncell(v) for v in row]
        if not any(row):
            continue
        if roles:
            cell = lambda role: [row[i] for i in roles.get(role, []) if i < len(row) and row[i]]
            name = " ".join(cell("name"))
            if not name:
                first, middle, last = (" ".join(cell(r)) for r in ("first", "middle", "last"))
                if _hangul(first + last):
                    name = (last + first).strip()
                else:
                    name = " ".join(p for p in (first, middle, last) if p)
            raw_addrs = cell("email")
            phone = (cell("phone") + cell("phone2") + [""])[0]
            memo = " ".join(cell("memo"))
        else:
            # No header: "name, address" (§28), or only addresses.
            raw_addrs = [v for v in row if "@" in v]
            names = [v for v in row if v and "@" not in v]
            name, phone, memo = (names[0] if names else ""), "", ""
        addrs = []
        for a in raw_addrs:
            a = a.strip().strip("<>")
            if is_address(a) and a.lower() not in [x.lower() for x in addrs]:
                addrs.append(a)
        if not addrs:
            report.skipped.append((n, "no valid e-mail address: %s" % ",".join(row)[:80]))
            continue
        try:
            name = _clean(name, what="the name") or addrs[0].split("@")[0]
            phone = _clean(phone, 60, "the phone number")
            memo = _clean_memo(memo)
        except InvalidValue as e:
            report.skipped.append((n, str(e)))
            continue
        entries.append((n, name, addrs[:MAX_ADDRESSES], phone, memo))
    return entries, report


def contact_dict(contact):
    """A contact as a plain dict (for JSON answers)."""
    return asdict(contact)
