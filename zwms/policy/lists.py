# -*- test-case-name: tests.test_policy_checks -*-
"""
Matching helpers shared by the checks: IP lists (exact addresses, CIDR
blocks and dotted prefixes, SPEC §0), domain lists (a domain and its
subdomains), address patterns, and L{WatchedList}, a one-item-a-line file
(data/spam.dat, data/virus.dat) read again whenever it changes (SPEC §0:
"changes … take effect … without a restart").
"""

import functools
import ipaddress
import os
import threading

from zwms.store.directory import stat_stamp


def parse_ip(text):
    """
    An C{ipaddress} address from a peer string, IPv4-mapped IPv6 made IPv4
    (a dual-stack listener reports ::ffff:1.2.3.4), or None when it is not an
    IP (a UNIX socket peer, garbage).
    """
    if not text:
        return None
    try:
        address = ipaddress.ip_address(str(text).split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def ip_in(ip, items):
    """
    True when C{ip} matches one of C{items}: an exact address, a CIDR block
    or a dotted prefix such as C{192.168.1.} (SPEC §0 IP lists).  Bad items
    never match (the config parser refuses them; this must not crash).
    """
    address = parse_ip(ip)
    if address is None:
        return False
    text = str(address)
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if item.endswith("."):
            if address.version == 4 and text.startswith(item):
                return True
            continue
        network = _network(item)
        if network is not None and address in network:
            return True
    return False


@functools.lru_cache(maxsize=8192)
def _network(item):
    """A parsed list item (cached: lists are checked for every mail), or None."""
    try:
        return ipaddress.ip_network(item, strict=False)
    except ValueError:
        return None


def domain_of(address):
    """The domain of an address, lower case ('' when there is none)."""
    _, at, domain = str(address or "").rpartition("@")
    return domain.strip().lower().rstrip(".") if at else ""


def domain_in(domain, domains):
    """True when C{domain} is one of C{domains} or a subdomain of one."""
    domain = str(domain or "").lower().rstrip(".")
    if not domain:
        return False
    for item in domains:
        item = str(item).strip().lower().lstrip("@").rstrip(".")
        if item and (domain == item or domain.endswith("." + item)):
            return True
    return False


def address_matches(address, pattern):
    """
    One address pattern of a user's lists: C{user@example.com} (that
    address), C{@example.com} or C{example.com} (that domain and its
    subdomains).  Case-insensitive.
    """
    address = str(address or "").strip().lower()
    pattern = str(pattern or "").strip().lower()
    if not address or not pattern:
        return False
    if "@" in pattern and not pattern.startswith("@"):
        return address == pattern
    return domain_in(domain_of(address), [pattern])


def any_address_matches(addresses, patterns):
    """The first pattern that one of C{addresses} matches, or None."""
    for pattern in patterns:
        for address in addresses:
            if address_matches(address, pattern):
                return pattern
    return None


def decode_list_bytes(raw):
    """
    The text of a list file: UTF-8 (a BOM is dropped), else CP949, which an
    administrator's Korean editor may have saved (EUC-KR is a subset).
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp949", errors="replace")


class WatchedList:
    """
    The non-empty lines of a file, stripped and folded by C{fold}, read
    again when its stat stamp (mtime, size, inode) changes: one stat() per
    call, so an edit applies to the next message.  A missing file is an
    empty list.  Safe to call from several threads.
    """

    def __init__(self, path, fold=str.casefold):
        self.path = path
        self._fold = fold
        self._stamp = False  # never equal to a real stamp or None
        self._items = ()
        self._lock = threading.Lock()

    def items(self):
        """The current items, a tuple (file order, duplicates dropped)."""
        stamp = stat_stamp(self.path)
        with self._lock:
            if stamp != self._stamp:
                raw = b""
                if stamp is not None:
                    try:
                        with open(self.path, "rb") as f:
                            raw = f.read()
                    except OSError:
                        stamp = None
                seen, items = set(), []
                for line in decode_list_bytes(raw).splitlines():
                    item = self._fold(line.strip())
                    if item and item not in seen:
                        seen.add(item)
                        items.append(item)
                self._items, self._stamp = tuple(items), stamp
            return self._items


def list_path(home, name):
    """data/NAME in a home (spam.dat, virus.dat)."""
    return os.path.join(home.data, name)
