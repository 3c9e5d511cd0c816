# -*- test-case-name: tests.test_webmail_help -*-
"""
/mail/help/RAND/...: the help pages (SPEC W9; Nmail IV, V, VI).

  (index)       the contents
  setup         mail client setup (Outlook, Thunderbird, iPhone/iPad Mail,
                Android Gmail / Samsung Email) with this server's values
                filled in: the host name the user came in on (else DOMAIN),
                the SMTP and POP3 ports and TLS modes the server really
                listens on, the login (ID or address), the POP3 policy
  faq           questions of users (webmail and a mail program together,
                quota, sizes, return mail, passwords)
  admin-faq     questions of the administrator (ports and firewall, DNS,
                relay, backups, moving the server, sizes, site
                integration); only the account named by ADMINID
  returnmail    every return-mail category with what to do (L{zwms.bounces})

The listening ports come from run/listen, which the service writes once
every listener is up (L{zwms.service}: lines "NAME HOST:PORT"): the pages
show what the server bound, not what a manual says.  When the file is
missing (the server is started by other means), the standard ports are
shown with a note saying so.
"""

import ipaddress
import os
from dataclasses import dataclass, field

from klein import Klein

from zwms.bounces import rules as bounce_rules
from zwms.web.webmail.state import HOST_RE, page

#: Ports a server started with the defaults listens on (zwms.tap).
STANDARD_PORTS = {"smtp": [25], "submission": [587], "smtps": [465], "pop3": [110],
                  "pop3s": [995], "web": [9005]}
#: How each listener protects the connection, as mail programs name it.
TLS_MODE = {"smtp": "STARTTLS", "submission": "STARTTLS", "smtps": "SSL/TLS",
            "pop3": "STARTTLS", "pop3s": "SSL/TLS"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class Endpoint:
    """One way in: listener name, port, TLS mode, reachable only from this machine."""
    name: str
    port: int
    tls: str
    local_only: bool = False


@dataclass
class ServerFacts:
    """What the setup guide fills in."""
    host: str
    address: str
    login: str
    outgoing: list = field(default_factory=list)    # [Endpoint], best first
    incoming: list = field(default_factory=list)    # [Endpoint], best first
    recorded: bool = True                           # run/listen was read
    pop3_on: bool = True
    pop3_share: bool = False
    pop3_count: int = 100
    max_kb: int = 0
    relay_auth: bool = True
    web_port: int = 9005

    @property
    def phone_incoming(self):
        """Phone apps have one "Use SSL" switch: an implicit-TLS port when there is one."""
        return _ssl_first(self.incoming)

    @property
    def phone_outgoing(self):
        return _ssl_first(self.outgoing)


def _ssl_first(endpoints):
    """The first reachable SSL/TLS endpoint, else the first endpoint, else None."""
    for e in endpoints:
        if e.tls == "SSL/TLS" and not e.local_only:
            return e
    return endpoints[0] if endpoints else None


def read_listeners(home):
    """
    {name: [(host, port)]} from run/listen, or None when the file is
    missing (blocking: a thread).
    """
    from zwms.scripts.handoff import parse_listen
    try:
        with open(os.path.join(home.run, "listen"), "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    out = {}
    for name, host, port in parse_listen(text):
        out.setdefault(name, []).append((host, port))
    return out


def endpoints(listeners, names):
    """The L{Endpoint}s of the listeners C{names}, in that order, one per port."""
    out = []
    for name in names:
        ports = {}
        for host, port in listeners.get(name, []):
            local = host in LOOPBACK or host.startswith("127.")
            ports[port] = ports.get(port, True) and local
        for port in sorted(ports):
            out.append(Endpoint(name, port, TLS_MODE[name], ports[port]))
    # Ports reachable from other machines first.
    out.sort(key=lambda e: e.local_only)
    return out


def request_host(request, domain):
    """
    The host name to configure: the Host the user came in on when it is a
    DNS name or an IP address, else the default domain.
    """
    raw = (request.getHeader(b"host") or b"").decode("ascii", "replace").strip().lower()
    if raw.startswith("["):
        host = raw[1:].split("]", 1)[0]
    else:
        host = raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw
    host = host.rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if HOST_RE.match(host) and ".." not in host:
        return host
    return domain


def server_facts(services, account_id, host):
    """The L{ServerFacts} of this server for one account (blocking: a thread)."""
    settings = services.settings
    domain = settings["DOMAIN"]
    listeners = read_listeners(services.home)
    recorded = listeners is not None
    if listeners is None:
        listeners = {name: [("0.0.0.0", p) for p in ports]
                     for name, ports in STANDARD_PORTS.items()}
    try:
        account = services.accounts.get(account_id)
    except Exception:
        account = None
    address = (getattr(account, "address", "") or "%s@%s" % (account_id, domain))
    web = [port for _, port in listeners.get("web", [])]
    return ServerFacts(
        host=host or domain, address=address, login=account_id,
        outgoing=endpoints(listeners, ("submission", "smtps", "smtp")),
        incoming=endpoints(listeners, ("pop3s", "pop3")),
        recorded=recorded, pop3_on=bool(settings["POP3"]),
        pop3_share=bool(settings["POP3SHARE"]), pop3_count=int(settings["POP3COUNT"] or 0),
        max_kb=int(settings["MAXMAILSIZE"] or 0), relay_auth=bool(settings["RELAYAUTH"]),
        web_port=web[0] if web else 9005)


def is_admin(services, session):
    """The webmail account the environment page names as the administrator's (ADMINID)."""
    admin = str(services.settings["ADMINID"] or "").strip().lower()
    return bool(admin) and session.login == admin


class HelpApp:
    """The help pages, at /mail/help."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail

    async def _render(self, request, session, topic, **values):
        wm = self.webmail
        return wm.render(request, session, "help.html", topic=topic,
                         admin=is_admin(wm.services, session), **values,
                         **(await wm.nav(session)))

    async def _facts(self, request, session):
        """This server's client settings as the user reached it (read in a thread)."""
        wm = self.webmail
        host = request_host(request, wm.services.settings["DOMAIN"])
        return await wm.run(server_facts, wm.services, session.login, host)

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def index(self, request, session):
        return await self._render(request, session, "index")

    @app.route("/<rand>/setup", methods=["GET"])
    @page()
    async def setup(self, request, session):
        facts = await self._facts(request, session)
        return await self._render(request, session, "setup", facts=facts)

    @app.route("/<rand>/faq", methods=["GET"])
    @page()
    async def faq(self, request, session):
        facts = await self._facts(request, session)
        return await self._render(request, session, "faq", facts=facts)

    @app.route("/<rand>/admin-faq", methods=["GET"])
    @page()
    async def admin_faq(self, request, session):
        wm = self.webmail
        if not is_admin(wm.services, session):
            request.setResponseCode(403)
            return await self._render(request, session, "forbidden")
        facts = await self._facts(request, session)
        return await self._render(request, session, "admin-faq", facts=facts,
                                  home=wm.services.home.root)

    @app.route("/<rand>/returnmail", methods=["GET"])
    @page()
    async def returnmail(self, request, session):
        wm = self.webmail
        lang = wm.language(request, session)
        categories = []
        for category in bounce_rules.CATEGORIES:
            ko_title, en_title, ko_text, en_text = bounce_rules.ADVICE[category]
            categories.append((category, en_title if lang == "en" else ko_title,
                               en_text if lang == "en" else ko_text))
        return await self._render(request, session, "returnmail", categories=categories)
