"""
A small DNS world for tests (TWISTED-NOTES "DNS and SPF"): in-memory zones
served by twisted.names on 127.0.0.1, UDP and TCP on one free port.

    world = DNSWorld(["example.test"])
    world.mx("example.test", 10, "mx1.example.test")
    world.a("mx1.example.test", "127.0.0.1")
    world.start(); self.addCleanup(world.stop)
    write_dns_config(home, world)   # DNS1=127.0.0.1:PORT in data/zwms.cfg

dnspython blocks: call it from a thread (deferToThread) while this server
runs in the reactor, or the two wait for each other forever.
"""

from twisted.internet import defer
from twisted.names import authority, dns, server
from twisted.python import failure


class ServFail(Exception):
    """Raised by a zone for a name scripted to answer SERVFAIL."""


class MemoryZone(authority.FileAuthority):
    """One zone's records in a dict (FileAuthority with no file)."""

    def __init__(self, zone):
        self.zone = zone.encode("ascii")
        self.servfail = set()
        authority.FileAuthority.__init__(self, zone)

    def loadFile(self, zone):
        self.soa = (self.zone, dns.Record_SOA(
            mname=b"ns." + self.zone, rname=b"root." + self.zone, serial=1,
            refresh=60, retry=60, expire=60, minimum=1, ttl=1))
        self.records = {}

    def add(self, name, record):
        self.records.setdefault(name.lower().encode("ascii"), []).append(record)

    def _lookup(self, name, cls, type, timeout=None):
        if name.lower() in self.servfail:
            return defer.fail(failure.Failure(ServFail(name)))
        return authority.FileAuthority._lookup(self, name, cls, type, timeout)


class _Factory(server.DNSServerFactory):
    def gotResolverError(self, reason, protocol, message, address):
        if reason.check(ServFail):
            response = self._responseFromMessage(message=message, rCode=dns.ESERVER)
            self.sendReply(protocol, response, address)
            return
        return server.DNSServerFactory.gotResolverError(self, reason, protocol, message,
                                                        address)


class DNSWorld:
    """Zones, records, and a server for them on 127.0.0.1."""

    def __init__(self, zones):
        self.zones = [MemoryZone(z) for z in zones]
        self.port = None
        self._udp = self._tcp = None

    def _zone(self, name):
        name = name.lower()
        best = None
        for z in self.zones:
            zn = z.zone.decode()
            if name == zn or name.endswith("." + zn):
                if best is None or len(zn) > len(best.zone):
                    best = z
        if best is None:
            raise ValueError("no zone for %r" % (name,))
        return best

    def mx(self, name, preference, exchange):
        self._zone(name).add(name, dns.Record_MX(preference, exchange.encode("ascii"), ttl=1))

    def a(self, name, address):
        self._zone(name).add(name, dns.Record_A(address, ttl=1))

    def txt(self, name, *texts):
        self._zone(name).add(name, dns.Record_TXT(*[t.encode() for t in texts], ttl=1))

    def fail(self, name):
        """Answer SERVFAIL for every query about C{name}."""
        self._zone(name).servfail.add(name.lower().encode("ascii"))

    @property
    def server(self):
        """The DNS1 value: 127.0.0.1:PORT."""
        return "127.0.0.1:%d" % self.port

    def start(self, reactor=None):
        """Listen on UDP and TCP of one free port of 127.0.0.1."""
        if reactor is None:
            from twisted.internet import reactor
        factory = _Factory(authorities=self.zones)
        for _ in range(20):
            # a new protocol each try: a stopped port keeps its transport
            proto = dns.DNSDatagramProtocol(factory)
            udp = reactor.listenUDP(0, proto, interface="127.0.0.1")
            try:
                tcp = reactor.listenTCP(udp.getHost().port, factory, interface="127.0.0.1")
            except Exception:
                udp.stopListening()
                continue
            self._udp, self._tcp, self.port = udp, tcp, udp.getHost().port
            return self
        raise RuntimeError("no free port for the DNS world")

    def stop(self):
        return defer.gatherResults([defer.maybeDeferred(self._udp.stopListening),
                                    defer.maybeDeferred(self._tcp.stopListening)])


def write_dns_config(home, world, extra=""):
    """Point DNS1 (data/zwms.cfg) at the world; call before Settings(home)."""
    import os
    os.makedirs(home.data, exist_ok=True)
    with open(home.zwms_cfg, "a", encoding="utf-8") as f:
        f.write("DNS1=%s\n%s" % (world.server, extra))
