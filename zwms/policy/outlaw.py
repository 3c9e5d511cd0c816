# -*- test-case-name: tests.test_policy_outlaw -*-
"""
P3 outlaw mail (SPEC §2; seed §4 "불법메일거부", §32, §36): is the sending
IP related to the sender's domain?

Three answers are asked, in this order, and the first that matches makes
the mail lawful:

1. SPF (pyspf, RFC 7208) for the MAIL FROM domain (the HELO name for the
   null sender <>).  The IP passes when SPF says "pass" with every
   pass-qualified C{ip4}/C{a}/C{mx} mechanism widened to the OUTLAWLEVEL
   leading octets (level 3 = the /24 of each allowed address; level 4 =
   RFC 7208 exactly).  IPv6 peers are compared as RFC 7208 says.
2. MX: an address of one of the domain's mail hosts shares the first three
   octets with the IP (IPv6: the /64).
3. A: an address of the domain itself does (IPv6: AAAA, the /64).

With OUTLAWLOG=1 each answer is logged (`checked SPF IP`, `checked MX IP`,
`checked A IP`, MailBlock).  When nothing matches the mail is outlaw:
OUTLAWREJECT=1 refuses with the §36 421 (`Sender is outlaw` at MAIL FROM
when PREOUTLAW=1, else `Mail receive but outlaw` after DATA); 2 leaves it
to the account (P6, P7).

DNS failures (timeouts, SERVFAIL) never refuse a mail: when no answer
matched and at least one lookup failed for now, the check is undecided.
With OUTLAWREJECT=1 that is a 451 (RFC 7208 §8.6 temperror: the sender
retries later; the connection stays open) and a MailBlock line; with 2 the
mail goes on unmarked (it reaches the Inbox), logged the same way.

All DNS goes through the injected dnspython resolver (DNS1/DNS2), never the
system's; pyspf's own lookup is replaced by one that calls it (see
L{install_spf_lookup}).  Everything here blocks: the chain runs it in a
thread (TWISTED-NOTES "DNS and SPF").
"""

import ipaddress
import threading

import dns.exception
import dns.resolver
import spf

from zwms import logs, replies
from zwms.policy import verdict as v
from zwms.policy.lists import domain_of, parse_ip

#: RFC 7208 §4.6.4 total time allowed for one SPF evaluation (seconds).
SPF_QUERY_TIME = 20
#: Most MX hosts whose addresses are looked up (RFC 7208 §4.6.4 uses 10).
MAX_MX = 10
#: Bits compared for MX and A answers: three octets (seed §4), or a /64.
MX_A_BITS_V4 = 24
MX_A_BITS_V6 = 64

LAWFUL, OUTLAWED, UNDECIDED = "lawful", "outlaw", "undecided"

_TEMPORARY = (dns.exception.Timeout, dns.resolver.NoNameservers)


class TemporaryDNS(Exception):
    """A lookup that failed for now (timeout, SERVFAIL)."""


# -- pyspf's DNS, through our resolver --------------------------------------

_local = threading.local()
_installed = []


def resolver_lookup(resolver, name, qtype):
    """
    pyspf's C{DNSLookup} contract over a dnspython resolver: a list of
    C{((name, qtype), value)}; TXT values are lists of bytes, MX values
    (preference, exchange), A/AAAA addresses, PTR names.

    @raise spf.TempError: timeout or SERVFAIL.
    """
    try:
        answer = resolver.resolve(name, qtype, search=False, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
        return []
    except _TEMPORARY as e:
        raise spf.TempError("DNS %s" % (e.__class__.__name__,))
    except dns.exception.DNSException as e:
        raise spf.TempError("DNS %s" % (e,))
    out = []
    for rdata in answer or ():
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype),
                        (rdata.preference, rdata.exchange.to_text(omit_final_dot=True))))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(omit_final_dot=True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), list(rdata.strings)))
    return out


def _dispatch(name, qtype, strict=True, timeout=None):
    resolver = getattr(_local, "resolver", None)
    if resolver is None:
        # Someone else's pyspf call in this process: its original lookup.
        return _installed[0](name, qtype, strict, timeout)
    return resolver_lookup(resolver, name, qtype)


def install_spf_lookup():
    """
    Replace C{spf.DNSLookup} (once) by a lookup that uses the resolver set
    for the calling thread by L{spf_check} (TWISTED-NOTES: pyspf otherwise
    uses the process-wide system resolver and warns on every lookup).
    """
    if not _installed:
        _installed.append(spf.DNSLookup)
        spf.DNSLookup = _dispatch


class LevelQuery(spf.query):
    """
    An SPF query whose pass-qualified address mechanisms (ip4, a, mx) match
    the peer by the first C{level} octets (IPv4 only).
    """

    level_bits = 32

    def validate_mechanism(self, mech):
        mech, m, arg, cidr, result = spf.query.validate_mechanism(self, mech)
        if (result == "pass" and self.v == "in-addr" and m in ("ip4", "a", "mx")
                and isinstance(cidr, int) and cidr > self.level_bits):
            cidr = self.level_bits
        return mech, m, arg, cidr, result


def spf_check(resolver, ip, sender, helo, level):
    """
    (result, mechanism) of SPF for the peer, with OUTLAWLEVEL widening.
    Result is one of pyspf's: pass, fail, softfail, neutral, none,
    permerror, temperror.
    """
    install_spf_lookup()
    _local.resolver = resolver
    try:
        query = LevelQuery(i=ip, s=sender, h=helo or "unknown", querytime=SPF_QUERY_TIME)
        query.level_bits = max(1, min(4, int(level))) * 8
        result, _code, _explanation = query.check()
        return result, query.mechanism or ""
    except spf.TempError:
        return "temperror", ""
    except Exception as e:  # noqa: BLE001 - pyspf on hostile records
        return "permerror", "%s: %s" % (e.__class__.__name__, e)
    finally:
        _local.resolver = None


# -- MX and A ----------------------------------------------------------------

def _resolve(resolver, name, qtype):
    try:
        return resolver.resolve(name, qtype, search=False, raise_on_no_answer=False) or ()
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
        return ()
    except dns.exception.DNSException as e:
        raise TemporaryDNS("%s %s: %s" % (name, qtype, e.__class__.__name__))


def host_addresses(resolver, name, version):
    """The IPv4 (A) or IPv6 (AAAA) addresses of a name."""
    qtype = "A" if version == 4 else "AAAA"
    return sorted({r.address for r in _resolve(resolver, name, qtype)})


def mx_addresses(resolver, domain, version):
    """The addresses of the domain's MX hosts (a null MX has none)."""
    hosts = sorted((r.preference, r.exchange.to_text(omit_final_dot=True))
                   for r in _resolve(resolver, domain, "MX"))
    out = []
    for _, host in hosts[:MAX_MX]:
        if host in ("", "."):
            continue
        for address in host_addresses(resolver, host, version):
            if address not in out:
                out.append(address)
    return out


def same_network(ip, addresses):
    """The first of C{addresses} in the peer's /24 (IPv6: /64), or None."""
    peer = parse_ip(ip)
    if peer is None:
        return None
    bits = MX_A_BITS_V4 if peer.version == 4 else MX_A_BITS_V6
    net = ipaddress.ip_network("%s/%d" % (peer, bits), strict=False)
    for address in addresses:
        other = parse_ip(address)
        if other is not None and other in net:
            return str(other)
    return None


# -- the check ---------------------------------------------------------------

def checked_domain(mail):
    """The domain the check is about: MAIL FROM's, else the HELO name's."""
    domain = domain_of(mail.sender)
    if domain:
        return domain
    helo = (mail.helo or "").strip().lower().rstrip(".")
    if helo and "." in helo and not helo.startswith("[") and parse_ip(helo) is None:
        return helo
    return ""


def examine(facts):
    """
    Ask SPF, MX and A (stopping at the first match).

    @return: (LAWFUL | OUTLAWED | UNDECIDED, notes, why) where notes are the
        `checked … IP` lines (when OUTLAWLOG=1) and why says what was found.
    """
    config, mail, resolver = facts.config, facts.mail, facts.resolver
    ip = str(parse_ip(mail.peer_ip) or mail.peer_ip)
    domain = checked_domain(mail)
    notes, failed = [], []

    def note(log, text):
        if config.outlawlog:
            notes.append((logs.MAILBLOCK, "%s %s" % (log, text)))

    if not domain:
        return OUTLAWED, notes, "no sender domain to check"
    peer = parse_ip(ip)
    if peer is None:
        return OUTLAWED, notes, "peer %r is not an IP" % (mail.peer_ip,)

    sender = mail.sender or "postmaster@" + domain
    result, mechanism = spf_check(resolver, ip, sender, mail.helo, config.outlawlevel)
    note(replies.LOG_CHECKED_SPF, "%s %s %s%s (level %d)" % (
        domain, ip, result, " " + mechanism if mechanism else "", config.outlawlevel))
    if result == "pass":
        return LAWFUL, notes, "SPF pass"
    if result == "temperror":
        failed.append("SPF")

    for name, lookup, log in (("MX", mx_addresses, replies.LOG_CHECKED_MX),
                              ("A", host_addresses, replies.LOG_CHECKED_A)):
        try:
            addresses = lookup(resolver, domain, peer.version)
        except TemporaryDNS as e:
            note(log, "%s %s temporary DNS failure (%s)" % (domain, ip, e))
            failed.append(name)
            continue
        match = same_network(ip, addresses)
        note(log, "%s %s [%s] %s" % (domain, ip, ",".join(addresses),
                                     "match " + match if match else "no match"))
        if match:
            return LAWFUL, notes, "%s %s" % (name, match)
    if failed:
        return UNDECIDED, notes, "DNS failed for %s of %s" % ("/".join(failed), domain)
    return OUTLAWED, notes, "SPF %s, no MX or A of %s near %s" % (result, domain, ip)


def _check(facts, log):
    config, mail = facts.config, facts.mail
    if not config.outlawreject:
        return v.go()
    state, notes, why = examine(facts)
    detail = "<%s> %s (%s)" % (mail.sender, mail.peer_ip, why)
    if state == LAWFUL:
        return v.go(notes=notes)
    if state == UNDECIDED:
        if config.outlawreject == 1:
            return v.refuse(v.OUTLAW_TRY_LATER, v.LOG_OUTLAW_UNDECIDED, detail,
                            check="outlaw", notes=notes)
        return v.go(notes=notes + [(logs.MAILBLOCK, v.with_detail(
            v.LOG_OUTLAW_UNDECIDED, detail))])
    pair = replies.looks_outlaw(str(parse_ip(mail.peer_ip) or mail.peer_ip),
                                config.admin_address)
    return v.by_level(config.outlawreject, v.OUTLAW, pair, log, detail,
                      check="outlaw", notes=notes)


def check_pre(facts):
    """At MAIL FROM when PREOUTLAW=1 (`Sender is outlaw`); else nothing."""
    if not facts.config.preoutlaw:
        return v.go()
    return _check(facts, replies.LOG_SENDER_OUTLAW)


def check_post(facts):
    """After DATA when PREOUTLAW=0 (`Mail receive but outlaw`); else nothing."""
    if facts.config.preoutlaw:
        return v.go()
    return _check(facts, replies.LOG_RECEIVE_OUTLAW)
