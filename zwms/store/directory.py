# -*- test-case-name: tests.test_directory -*-
"""
What an address means (IDirectory): the server's domains, virtual
addresses (seed §9, data/virtual.dat), hosting addresses (§23, an account's
C{address} field) and representative addresses (§22, data/ADDRESS.rep).

Every file is read through a L{StampedFile}: it is parsed again as soon as
its stat stamp (mtime_ns, size, inode) changes, so a change made by
zwms-admin or by hand is seen by a running server at the next lookup
(SPEC §0: "within 5 seconds"), and an unchanged file costs one stat().

Resolution order for one address (lower-cased):
  1. hosting address: an account whose C{address} field is the address;
  2. virtual address: the lines of data/virtual.dat for it (several lines,
     several targets);
  3. representative address: data/ADDRESS.rep, one target a line;
  4. the local part is an account ID and the domain is a local domain;
  else "unknown" in one of our domains, "foreign" outside them.

Targets of 2 and 3 are account IDs or full addresses.  A full address in
one of our domains is resolved again (at most MAX_DEPTH levels; an address
already on the path is skipped, so alias loops end); an outside one is kept
in C{Resolution.addresses} for the queue.
"""

import os

from zope.interface import implementer

from zwms.account import Resolution, check_id, is_address
from zwms.errors import ConfigError, InvalidValue, NoSuchAlias
from zwms.fileio import atomic_write
from zwms.home import safe_join
from zwms.interfaces import IDirectory

#: How deep alias chains are followed (virtual → virtual → …).
MAX_DEPTH = 5

#: .rep files whose parsed form is kept (oldest lookups dropped first).
REP_CACHE = 1024

VIRTUAL_FILE = "virtual.dat"


def stat_stamp(path):
    """(mtime_ns, size, inode) of C{path}, or None when it does not exist."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class StampedFile:
    """
    One file, parsed by C{parse(text, path)} again whenever its stat stamp
    changes.  A missing file parses as C{parse("", path)}.
    """

    def __init__(self, path, parse):
        self.path = path
        self._parse = parse
        self._stamp = False  # never equal to a real stamp or None
        self._value = None

    def value(self):
        """The parsed content, current as of this call."""
        stamp = stat_stamp(self.path)
        if stamp != self._stamp:
            text = ""
            if stamp is not None:
                try:
                    with open(self.path, "rb") as f:
                        text = f.read().decode("utf-8", errors="replace")
                except FileNotFoundError:
                    stamp = None
            self._value = self._parse(text, self.path)
            self._stamp = stamp
        return self._value


def parse_virtual(text, path):
    """
    Parse data/virtual.dat: C{VIRTUAL REAL} a line, '#' comments.

    @return: (pairs, errors): the (virtual, real) pairs in file order and a
        list of L{ConfigError} for lines that were skipped.
    """
    pairs, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            errors.append(ConfigError(path, number, "expected 'VIRTUAL REAL', got %r" % line))
            continue
        virtual, real = parts[0].lower(), parts[1].lower()
        problem = _alias_problem(virtual, real)
        if problem:
            errors.append(ConfigError(path, number, problem))
            continue
        pairs.append((virtual, real))
    return pairs, errors


def parse_rep(text, path):
    """
    Parse a .rep file: one target (address or account ID) a line.

    @return: (targets, errors) like L{parse_virtual}.
    """
    targets, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        target = line.lower()
        if _target_problem(target):
            errors.append(ConfigError(path, number, "not an address or account ID: %r" % line))
            continue
        targets.append(target)
    return targets, errors


def _target_problem(real):
    if "@" in real:
        return None if is_address(real) else "not an email address: %r" % real
    try:
        check_id(real)
    except InvalidValue as e:
        return str(e)
    return None


def _alias_problem(virtual, real):
    if not is_address(virtual):
        return "the virtual address must be a full email address, got %r" % virtual
    return _target_problem(real)


def _unique(items):
    """Items in first-seen order, without repeats."""
    return list(dict.fromkeys(items))


@implementer(IDirectory)
class Directory:
    """
    IDirectory over the settings (DOMAIN, MULTIDOMAINS), the account store
    (account IDs and their hosting C{address} fields) and the files of the
    home (data/virtual.dat, data/*.rep).
    """

    def __init__(self, settings, accounts, home):
        self.settings = settings
        self.accounts = accounts
        self.home = home
        self._virtual = StampedFile(os.path.join(home.data, VIRTUAL_FILE), parse_virtual)
        self._reps = {}

    # -- domains -------------------------------------------------------------

    def local_domains(self):
        """DOMAIN and each of MULTIDOMAINS, lower case."""
        # One stat() of env.cfg: a `zwms-admin domain add` applies at once,
        # not only after the settings' own recheck interval.
        refresh = getattr(self.settings, "refresh", None)
        if refresh is not None:
            refresh()
        domains = {str(self.settings["DOMAIN"]).lower()}
        domains.update(d.lower() for d in self.settings.list("MULTIDOMAINS"))
        domains.discard("")
        return domains

    def _hosting(self):
        """{address: account ID} of every account with an address field."""
        by_address = getattr(self.accounts, "hosting_addresses", None)
        if by_address is not None:
            return by_address()
        out = {}
        for aid in self.accounts.list():
            account = self.accounts.get(aid)
            address = account.address if account is not None else ""
            if address:
                out.setdefault(address.lower(), aid)
        return out

    # -- files ---------------------------------------------------------------

    def _virtual_map(self):
        mapping = {}
        for virtual, real in self._virtual.value()[0]:
            mapping.setdefault(virtual, []).append(real)
        return mapping

    def _rep_targets(self, address):
        """The targets listed in data/ADDRESS.rep, or None without a file."""
        if not is_address(address):
            return None
        try:
            path = safe_join(self.home.data, address + ".rep")
        except InvalidValue:
            return None
        cached = self._reps.get(path)
        if cached is None:
            if len(self._reps) >= REP_CACHE:
                # Drop the oldest entry (dicts keep insertion order).
                self._reps.pop(next(iter(self._reps)))
            cached = self._reps[path] = StampedFile(path, parse_rep)
        if stat_stamp(path) is None:
            return None
        return cached.value()[0]

    @property
    def errors(self):
        """The L{ConfigError}s of data/virtual.dat lines that were skipped."""
        return list(self._virtual.value()[1])

    # -- resolution ----------------------------------------------------------

    def resolve(self, address):
        """
        Where mail for C{address} goes (see the module docstring).

        @return: a L{Resolution}.
        @raise zwms.errors.InvalidValue: the account.cfg of an account it
            reaches is damaged (the mail must wait, not bounce).
        """
        addr = str(address).strip().lower()
        if "@" not in addr:
            # A bare local part ("postmaster") means the default domain.
            addr = "%s@%s" % (addr, str(self.settings["DOMAIN"]).lower())
        local_domains = self.local_domains()
        hosting = self._hosting()
        virtual = self._virtual_map()
        accounts, addresses, found = self._resolve(
            addr, local_domains, hosting, virtual, depth=0, path=())
        if accounts:
            return Resolution("local", tuple(_unique(accounts)), tuple(_unique(addresses)))
        if addresses:
            return Resolution("remote", (), tuple(_unique(addresses)))
        if found or self._ours(addr, local_domains, hosting):
            return Resolution("unknown")
        return Resolution("foreign")

    def _ours(self, addr, local_domains, hosting):
        domain = addr.rpartition("@")[2]
        if domain in local_domains:
            return True
        return any(a.rpartition("@")[2] == domain for a in hosting)

    def _resolve(self, addr, local_domains, hosting, virtual, depth, path):
        """
        @return: (account IDs, outside addresses, found): C{found} is true
            when the address is known to us (even if its targets are gone).
        """
        local, _, domain = addr.rpartition("@")
        if addr in hosting:
            return [hosting[addr]], [], True
        targets = virtual.get(addr)
        if targets is None:
            targets = self._rep_targets(addr)
        if targets is not None:
            accounts, addresses = [], []
            path = path + (addr,)
            for target in targets:
                self._follow(target, local_domains, hosting, virtual, depth, path,
                             accounts, addresses)
            return accounts, addresses, True
        if domain in local_domains and self._account_exists(local):
            return [local], [], True
        return [], [], False

    def _follow(self, target, local_domains, hosting, virtual, depth, path,
                accounts, addresses):
        """Resolve one alias target into C{accounts} / C{addresses}."""
        if "@" not in target:
            if self._account_exists(target):
                accounts.append(target)
            return
        if target in path or depth + 1 > MAX_DEPTH:
            return  # a loop, or a chain too long: this branch ends here
        if self._ours(target, local_domains, hosting) or target in virtual:
            sub_accounts, sub_addresses, _ = self._resolve(
                target, local_domains, hosting, virtual, depth + 1, path)
            accounts.extend(sub_accounts)
            addresses.extend(sub_addresses)
        else:
            addresses.append(target)

    def _account_exists(self, aid):
        try:
            aid = check_id(aid)
        except InvalidValue:
            return False
        # A damaged account.cfg raises here, on purpose: the caller answers
        # "try later" (451) instead of bouncing the mail as unknown (550).
        return self.accounts.get(aid) is not None

    # -- logins --------------------------------------------------------------

    def login_account(self, login):
        """
        An account ID from a POP3/AUTH login: the ID, ID@ a local domain, an
        account's hosting address, or an alias that resolves to exactly one
        account.  L{None} otherwise.
        """
        text = str(login).strip().lower()
        if not text:
            return None
        if "@" not in text:
            return text if self._account_exists(text) else None
        if not is_address(text):
            return None
        resolution = self.resolve(text)
        if resolution.kind == "local" and len(resolution.accounts) == 1 \
                and not resolution.addresses:
            return resolution.accounts[0]
        return None

    # -- virtual addresses ---------------------------------------------------

    def aliases(self):
        """A sorted list of (virtual, real) pairs of data/virtual.dat."""
        return sorted(set(self._virtual.value()[0]))

    def add_alias(self, virtual, real):
        """
        Add one C{VIRTUAL REAL} line to data/virtual.dat (atomically).  An
        existing identical pair is not repeated.

        @raise InvalidValue: a bad address or ID.
        """
        virtual, real = str(virtual).strip().lower(), str(real).strip().lower()
        problem = _alias_problem(virtual, real)
        if problem:
            raise InvalidValue(problem)
        if virtual == real:
            raise InvalidValue("a virtual address cannot point to itself")
        if "@" not in real:
            real = check_id(real)
        if (virtual, real) in self._virtual.value()[0]:
            return
        self._rewrite(lambda lines: lines + ["%s %s" % (virtual, real)])

    def del_alias(self, virtual, real=None):
        """
        Remove the lines of C{virtual} (only the one to C{real} if given).

        @raise NoSuchAlias: there is no such line.
        """
        virtual = str(virtual).strip().lower()
        real = None if real is None else str(real).strip().lower()
        removed = []

        def keep(line):
            parts = line.split()
            if (len(parts) == 2 and not line.lstrip().startswith("#")
                    and parts[0].lower() == virtual
                    and (real is None or parts[1].lower() == real)):
                removed.append(line)
                return False
            return True

        lines = self._lines()
        kept = [line for line in lines if keep(line)]
        if not removed:
            if real is None:
                raise NoSuchAlias("no virtual address %s" % virtual)
            raise NoSuchAlias("no virtual address %s -> %s" % (virtual, real))
        self._write(kept)

    def _lines(self):
        try:
            with open(self._virtual.path, "r", encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def _rewrite(self, change):
        self._write(change(self._lines()))

    def _write(self, lines):
        # Comments and lines we do not understand are kept as they are.
        text = "\n".join(lines) + "\n" if lines else ""
        atomic_write(self._virtual.path, text.encode("utf-8"))
