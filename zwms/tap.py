# -*- test-case-name: tests.test_tap -*-
"""
`twistd zwms` options (SPEC §0) and makeService: wiring only.
"""

import os

from twisted.internet import endpoints
from twisted.python import usage

#: Listener name → default endpoint string (SPEC §0).
#: A listen queue of 1,024: Twisted's default of 50 overflowed at 500
#: connections at once (bench/README.md).
DEFAULT_LISTENERS = {
    "smtp": ["tcp:25:backlog=1024"],
    "submission": ["tcp:587:backlog=1024"],
    "smtps": ["tcp:465:backlog=1024"],
    "pop3": ["tcp:110:backlog=1024"],
    "pop3s": ["tcp:995:backlog=1024"],
    "web": ["tcp:9005:backlog=1024"],
}

LISTENER_HELP = {
    "smtp": "SMTP (MX) listener, port 25",
    "submission": "submission listener with STARTTLS, port 587",
    "smtps": "submission with implicit TLS, port 465",
    "pop3": "POP3 listener with STLS, port 110",
    "pop3s": "POP3 with implicit TLS, port 995",
    "web": "web listener (admin and webmail), port 9005",
}


def _make_opt(name):
    def opt(self, value):
        self.add_listener(name, value)
    opt.__doc__ = ("%s: a Twisted endpoint string (default %s); repeatable; "
                   "'none' disables it" % (LISTENER_HELP[name],
                                           DEFAULT_LISTENERS[name][0].split(":backlog")[0]))
    return opt


class Options(usage.Options):
    """Command-line options of `twistd zwms`."""

    synopsis = "[--home DIR] [--smtp ENDPOINT ...] [--pop3 ENDPOINT ...] ..."
    longdesc = ("zWMS: an all-in-one mail server. Listening addresses are Twisted "
                "endpoint strings such as tcp:25 or tcp:2525:interface=127.0.0.1; "
                "each option may be repeated; 'none' disables a listener. "
                "Implicit-TLS listeners (smtps, pop3s) wrap plain tcp: endpoints in "
                "TLS with the home's certificate.")
    optParameters = [
        ["home", None, None, "server home directory (default: the current directory)"],
    ]

    opt_smtp = _make_opt("smtp")
    opt_submission = _make_opt("submission")
    opt_smtps = _make_opt("smtps")
    opt_pop3 = _make_opt("pop3")
    opt_pop3s = _make_opt("pop3s")
    opt_web = _make_opt("web")

    def __init__(self):
        usage.Options.__init__(self)
        self._given = {}

    def add_listener(self, name, value):
        value = value.strip()
        if not value:
            raise usage.UsageError("--%s needs an endpoint string or 'none'" % name)
        self._given.setdefault(name, []).append(value)

    def postOptions(self):
        from twisted.internet import reactor
        listeners = {}
        for name, default in DEFAULT_LISTENERS.items():
            given = self._given.get(name, default)
            if any(v.lower() == "none" for v in given):
                if len(given) > 1:
                    raise usage.UsageError("--%s none cannot be combined with other "
                                           "endpoints" % name)
                listeners[name] = []
                continue
            for description in given:
                try:
                    endpoints.serverFromString(reactor, description)
                except (ValueError, TypeError, KeyError) as e:
                    raise usage.UsageError("--%s %r is not a valid endpoint: %s"
                                           % (name, description, e))
            listeners[name] = list(given)
        self["listeners"] = listeners
        home = self["home"] or os.getcwd()
        if os.path.exists(home) and not os.path.isdir(home):
            raise usage.UsageError("--home %r is not a directory" % home)
        self["home"] = os.path.abspath(home)


def makeService(options):
    """Build the ZWMSService from parsed options."""
    from zwms.service import ZWMSService
    return ZWMSService(options["home"], options["listeners"])
