"""
The one config schema (DESIGN.md rule 6): every key of data/zwms.cfg (§11)
and data/env.cfg (§4, §32) with its default, type, restart flag and help.
The files, `zwms-admin config` and the admin pages all read it.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass

from zwms.account import parse_bool, parse_int, parse_text
from zwms.errors import InvalidValue

ZWMS_CFG = "zwms.cfg"
ENV_CFG = "env.cfg"


def split_list(text):
    """Lists are separated by commas or spaces."""
    return [item for item in re.split(r"[,\s]+", str(text).strip()) if item]


def parse_reject(text):
    value = parse_int(text)
    if value not in (0, 1, 2):
        raise InvalidValue("expected 0 (off), 1 (refuse) or 2 (delegate), got %r" % (text,))
    return value


def split_dns_server(text):
    """
    "IP", "IP:PORT", "[v6]:PORT" or a bare IPv6 address into (ip, port);
    the port defaults to 53.

    @raise ValueError: not one of those forms.
    """
    value = str(text).strip()
    m = re.match(r"^\[([^\]]+)\](?::(\d+))?$", value)
    if m:
        host, port = m.group(1), m.group(2)
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, None
    ipaddress.ip_address(host)
    port = int(port) if port else 53
    if not 0 < port < 65536:
        raise ValueError("bad port in %r" % (text,))
    return host, port


def parse_skin(text):
    """SKIN: a user skin folder name (the admin skin 'common' is not one)."""
    value = parse_text(text).lower() or "wow_coolwind"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value) or value == "common":
        raise InvalidValue("not a webmail skin name: %r (a-z, 0-9, '_', '-')" % (text,))
    return value


def parse_dns_server(text):
    """DNS1/DNS2: an IP, or IP:PORT, or [IPv6]:PORT, or empty."""
    value = str(text).strip()
    if not value:
        return ""
    try:
        split_dns_server(value)
    except ValueError:
        raise InvalidValue("expected an IP address or IP:PORT, got %r" % (text,))
    return value


def parse_domain(text):
    value = str(text).strip().lower().rstrip(".")
    if value and not re.match(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                              r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", value):
        raise InvalidValue("not a domain name: %r" % (text,))
    return value


def parse_domain_list(text):
    return ",".join(parse_domain(d) for d in split_list(text))


def parse_ip_list(text):
    """Exact addresses, CIDR blocks and dotted prefixes (`192.168.1.`)."""
    items = split_list(text)
    for item in items:
        if item.endswith("."):
            if not re.match(r"^(\d{1,3}\.){1,3}$", item):
                raise InvalidValue("bad IP prefix %r" % (item,))
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise InvalidValue("not an IP, CIDR block or prefix: %r" % (item,))
    return ",".join(items)


def parse_path(text):
    value = parse_text(text)
    if not value:
        raise InvalidValue("a path is required")
    return value


def default_domain():
    try:
        name = socket.getfqdn().lower().rstrip(".")
    except OSError:
        name = ""
    return name or "localhost"


@dataclass(frozen=True)
class Key:
    """One setting: the file it lives in, default, parser, help."""
    name: str
    file: str
    default: object
    parse: object
    help: str

    @property
    def restart(self):
        """zwms.cfg keys apply at restart; env.cfg keys at once (SPEC §0)."""
        return self.file == ZWMS_CFG


def _zk(name, default, parse, help):
    return Key(name, ZWMS_CFG, default, parse, help)


def _ek(name, default, parse, help):
    return Key(name, ENV_CFG, default, parse, help)


KEYS = (
    # data/zwms.cfg — basic settings, §11 (restart to apply)
    _zk("CHECKDOMAIN", "", parse_text, "the mail server's IP (loop detection, §11)"),
    _zk("DFV", False, parse_bool, "enable the admin file viewer (1 = on)"),
    _zk("DOWNSLEEP", 0, parse_int, "delay in ms after each KB of a file download"),
    _zk("DNS1", "", parse_dns_server, "DNS server for MX lookups: IP or IP:PORT"),
    _zk("DNS2", "", parse_dns_server, "second DNS server: IP or IP:PORT"),
    _zk("EMLDEL", True, parse_bool, "delete an account's .eml files with the account"),
    _zk("NEWACC", True, parse_bool, "anonymous visitors may sign up (1 = yes)"),
    _zk("OUTLAWLOG", False, parse_bool, "log each outlaw check step (1 = yes)"),
    _zk("PERPAGE", 100, parse_int, "accounts per page in the admin user list"),
    _zk("POP3", True, parse_bool, "allow POP3 logins (0 = refuse)"),
    _zk("PREOUTLAW", False, parse_bool, "outlaw check at MAIL FROM (1) or after DATA (0)"),
    _zk("PRINTMAKE", False, parse_bool, "show webmail work steps on screen"),
    _zk("SENDNEW", False, parse_bool, "POP3 offers only unread mail (1) or all (0)"),
    _zk("SENDSLEEP", 0, parse_int, "delay in ms after each KB sent"),
    _zk("SMTPTTL", 5, parse_int, "seconds between mails from one IP before it is a bomb"),
    _zk("WEBDIR", "./webdir/", parse_path, "web folder path"),
    _zk("WFCAPA", True, parse_bool, "web folder counts against the account capacity"),
    _zk("ZIPDIR", "./zip/", parse_path, "mailbox zip path"),
    _zk("MAXMAILSIZE", 51200, parse_int, "largest message in KB (max system work size)"),
    _zk("QUEUELIFETIME", 5, parse_int, "days a queued message is retried before it bounces"),
    _zk("POP3AUTHCACHE", 900, parse_int,
        "seconds a POP3 login is remembered so a client's next poll skips argon2 (0 = off)"),
    _zk("REMOTEPORT", 25, parse_int, "SMTP port of remote mail servers (change only for tests)"),
    _zk("LOOPBACKMX", False, parse_bool,
        "allow MX hosts on 127.0.0.0/8 other than our own listeners (tests only)"),
    # data/env.cfg — the environment page, §4 and §32 (live)
    _ek("DOMAIN", None, parse_domain, "default domain (default: the host's FQDN)"),
    _ek("MULTIDOMAINS", "", parse_domain_list, "other domains: ID@each is a mailbox too"),
    _ek("ADMINID", "", parse_text, "the administrator's own webmail account ID"),
    _ek("OUTLOOKMARK", True, parse_bool, "mark mail fetched by POP3"),
    _ek("SELFRELAYSAVE", False, parse_bool, "copy mail relayed by a client to its Sent folder"),
    _ek("RELAYIPAUTH", True, parse_bool, "an IP that logged in by POP3 may relay"),
    _ek("RELAYIPAUTHTTL", 1800, parse_int, "seconds a POP3 login lets its IP relay"),
    _ek("RELAYAUTH", True, parse_bool, "relay after SMTP AUTH"),
    _ek("POP3SHARE", False, parse_bool, "POP3 offers fetched mail again (§31)"),
    _ek("POP3COUNT", 100, parse_int, "most mails one POP3 session offers"),
    _ek("BOMBREJECT", 0, parse_reject, "bomb mail: 0 off, 1 refuse, 2 delegate"),
    _ek("OUTLAWREJECT", 0, parse_reject, "outlaw mail (SPF/MX/A): 0 off, 1 refuse, 2 delegate"),
    _ek("OUTLAWLEVEL", 3, parse_int, "leading IP octets compared for SPF"),
    _ek("SPAMREJECT", 0, parse_reject, "spam phrases: 0 off, 1 refuse, 2 delegate"),
    _ek("VIRUSREJECT", 0, parse_reject, "refused attachments: 0 off, 1 refuse, 2 delegate"),
    _ek("AUTOMAILCANCEL", False, parse_bool, "send no automatic mail (bounces, notices)"),
    _ek("ALLOWDOMAINS", "", parse_domain_list, "sender domains that skip bad-mail checks"),
    _ek("LIMITDOMAINS", "", parse_domain_list, "domains never sent to"),
    _ek("RELAYIPS", "127.0.0.1,::1", parse_ip_list, "IPs that may relay without AUTH"),
    _ek("BLOCKIPS", "", parse_ip_list, "IPs refused at connect"),
    _ek("RANDSESSION", True, parse_bool, "webmail random session token"),
    _ek("MAXACCOUNTS", 0, parse_int, "most accounts (0 = no limit)"),
    _ek("SITESECRET", "", parse_text,
        "shared secret for signed site-integration links (§35; 16+ characters; empty = off)"),
    _ek("SKIN", "wow_coolwind", parse_skin,
        "webmail skin: a folder of the skins folder (§13, §19)"),
)

KEYS_BY_NAME = {k.name: k for k in KEYS}


def key(name):
    """The Key for a name (case-insensitive); raise InvalidValue."""
    try:
        return KEYS_BY_NAME[str(name).strip().upper()]
    except KeyError:
        raise InvalidValue("unknown setting %r" % (name,))


def default_of(k):
    if k.name == "DOMAIN":
        return default_domain()
    return k.default
