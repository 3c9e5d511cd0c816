# -*- test-case-name: tests.test_queue_mx -*-
"""
MX lookup for outbound mail (SPEC Q2) with dnspython, against DNS1/DNS2
(SPEC §0: "IP", "IP:PORT" or "[v6]:PORT"; both empty = the system resolver).

RFC 5321 §5.1: hosts in preference order; no MX record but an A record =
the domain itself is the host (A fallback); a null MX (RFC 7505) or a name
that does not exist = permanent failure; timeouts and SERVFAIL = temporary.

dnspython blocks, so L{MXResolver.lookup} runs it in a thread
(deferToThread): calling it in the reactor thread would stall every
connection, and deadlock against a DNS server served by the same reactor
(TWISTED-NOTES "DNS and SPF").
"""

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from zwms.config.schema import split_dns_server


class MXError(Exception):
    """The lookup failed; C{permanent} says whether a retry may help."""

    def __init__(self, domain, permanent, why):
        Exception.__init__(self, "%s: %s" % (domain, why))
        self.domain = domain
        self.permanent = permanent
        self.why = why


@dataclass(frozen=True)
class MXHost:
    """One mail host of a domain: its name, preference and IPv4 addresses."""
    name: str
    preference: int
    addresses: tuple


#: "IP", "IP:PORT", "[v6]:PORT" → (ip, port): the same parser as DNS1/DNS2.
parse_server = split_dns_server


def build_resolver(servers, timeout=5.0, lifetime=15.0):
    """
    A dnspython resolver asking C{servers} (texts as DNS1/DNS2), or the
    system's resolver (/etc/resolv.conf) when none is given.
    """
    servers = [s for s in servers if s and str(s).strip()]
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_server(s))
                                for s in servers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    return resolver


_TEMPORARY = (dns.exception.Timeout, dns.resolver.NoNameservers,
              dns.resolver.LifetimeTimeout)


def _addresses(resolver, host):
    """
    IPv4 addresses of C{host}: a tuple (maybe empty when the host has none).

    @raise MXError: (temporary) when the lookup cannot be answered now.
    """
    try:
        answer = resolver.resolve(host, "A", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ()
    except _TEMPORARY as e:
        raise MXError(host, False, "A lookup failed: %s" % (e.__class__.__name__,))
    except dns.exception.DNSException as e:
        raise MXError(host, False, "A lookup failed: %s" % (e,))
    return tuple(sorted({r.address for r in answer}))


def lookup_mx(resolver, domain):
    """
    The mail hosts of C{domain}, best first (blocking: call from a thread).

    @return: a non-empty list of L{MXHost}, each with at least one address.
    @raise MXError: permanent (no such domain, null MX, no host with an
        address) or temporary (timeout, SERVFAIL, a host lookup that failed).
    """
    domain = str(domain).strip().rstrip(".").lower()
    try:
        dns.name.from_text(domain)
    except dns.exception.DNSException as e:
        raise MXError(domain, True, "bad domain name: %s" % (e,))
    try:
        answer = resolver.resolve(domain, "MX", search=False)
        records = [(r.preference, r.exchange.to_text(omit_final_dot=True).lower())
                   for r in answer]
    except dns.resolver.NXDOMAIN:
        raise MXError(domain, True, "no such domain")
    except dns.resolver.NoAnswer:
        records = None
    except _TEMPORARY as e:
        raise MXError(domain, False, "MX lookup failed: %s" % (e.__class__.__name__,))
    except dns.exception.DNSException as e:
        raise MXError(domain, False, "MX lookup failed: %s" % (e,))

    if records is None:
        # RFC 5321 §5.1: no MX, the domain itself is the host (A fallback).
        addresses = _addresses(resolver, domain)
        if not addresses:
            raise MXError(domain, True, "no MX and no A record")
        return [MXHost(domain, 0, addresses)]

    # RFC 7505: "MX 0 ." says the domain takes no mail.
    if any(name in ("", ".") for _, name in records):
        raise MXError(domain, True, "null MX: the domain takes no mail")
    hosts, temporary = [], None
    for preference, name in sorted(set(records)):
        try:
            addresses = _addresses(resolver, name)
        except MXError as e:
            temporary = e
            continue
        if addresses:
            hosts.append(MXHost(name, preference, addresses))
    if not hosts:
        if temporary is not None:
            raise MXError(domain, False, temporary.why)
        raise MXError(domain, True, "no MX host has an address")
    return hosts


def _thread_runner():
    from twisted.internet.threads import deferToThread
    return deferToThread


class MXResolver:
    """
    MX lookups against settings["DNS1"] / settings["DNS2"], in a thread.

    C{lookup(domain)} returns a Deferred firing with L{lookup_mx}'s list or
    failing with L{MXError}.
    """

    def __init__(self, settings, run=None, timeout=5.0, lifetime=15.0):
        """
        @param settings: read for DNS1 and DNS2 at each lookup.
        @param run: thread runner C{run(f, *args)} -> Deferred (deferToThread).
        """
        self.settings = settings
        self._run = run or _thread_runner()
        self._timeout = timeout
        self._lifetime = lifetime
        self._cached = (None, None)

    def resolver(self):
        """The dnspython resolver for the current DNS1/DNS2 (rebuilt on change)."""
        servers = (self.settings["DNS1"], self.settings["DNS2"])
        if self._cached[0] != servers:
            self._cached = (servers, build_resolver(servers, self._timeout, self._lifetime))
        return self._cached[1]

    def lookup(self, domain):
        """@return: a Deferred of the domain's L{MXHost} list (or L{MXError})."""
        return self._run(lookup_mx, self.resolver(), domain)
