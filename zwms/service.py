# -*- test-case-name: tests.test_service -*-
"""
ZWMSService: owns the home, the settings, the stores and the listeners.

Start: create the home's folders, sweep crash leftovers (auto recovery, §2),
open the stores, make the TLS certificate if there is none, listen on every
endpoint, write run/listen.  Stop (SIGTERM): refuse new commands (421),
close the listeners, let the mail writer finish what it has acknowledged
or is about to, close the logs.
"""

import os

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import log

from zwms import logs as logchannels
from zwms.config import Settings
from zwms.fileio import atomic_write
from zwms.home import Home
from zwms.services import Services

#: Listener names whose plain tcp: endpoints are wrapped in TLS.
IMPLICIT_TLS = ("smtps", "pop3s")


def describe_address(address):
    """host:port of an IListeningPort's address ([v6]:port for IPv6)."""
    host = getattr(address, "host", "?")
    port = getattr(address, "port", "?")
    if ":" in str(host):
        return "[%s]:%s" % (host, port)
    return "%s:%s" % (host, port)


class ZWMSService(service.MultiService):
    """The whole server in one Twisted service."""

    def __init__(self, home, listeners, reactor=None):
        service.MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.home = Home(home)
        self.listeners = listeners
        self.layer = None
        self.ports = []
        self.factories = []
        self.bound = []

    # -- start ---------------------------------------------------------------

    def build_services(self):
        """Open the home and its stores (also used by tests in-process)."""
        from zwms.store.accounts import FileAccounts
        from zwms.store.directory import Directory
        from zwms.store.mailstore import FileMailStore
        from zwms.store.relay_memory import RelayMemory

        self.home.create()
        logs = logchannels.FileLogs(self.home.logs)
        settings = Settings(self.home, on_error=lambda e: logs.write(
            logchannels.SYSTEMERROR, "Config error: %s (last good value kept)" % (e,)))
        accounts = FileAccounts(self.home, settings)
        mail = FileMailStore(self.home, reactor=self.reactor)
        swept = mail.recover()
        if swept:
            logs.write(logchannels.SYSTEMSTATUS, "Auto recovery removed %d leftover files" % swept)
        directory = Directory(settings, accounts, self.home)
        self.layer = Services(
            home=self.home, settings=settings, accounts=accounts, directory=directory,
            mail=mail, logs=logs, relay_memory=RelayMemory(settings, self.reactor),
            clock=self.reactor)
        self.layer.queue = self.build_queue(self.layer)
        from zwms.routing.router import Router
        self.layer.router = Router(self.layer)
        from zwms.policy.chain import ReceivePolicy
        # One for every listener: one bomb memory (SPEC P2).
        self.layer.policy = ReceivePolicy(self.layer)
        return self.layer

    def build_queue(self, services):
        """The outbound queue runner over data/queue (SPEC Q1, Q2)."""
        from zwms.queue.mx import MXResolver
        from zwms.queue.runner import QueueRunner
        from zwms.queue.spool import Spool

        settings = services.settings
        return QueueRunner(
            services, Spool(self.home), self.reactor, MXResolver(settings),
            self.reactor.connectTCP, port=settings["REMOTEPORT"],
            lifetime=settings["QUEUELIFETIME"] * 24 * 3600,
            loopback_is_me=not settings["LOOPBACKMX"])

    def _factory(self, name, tls):
        from zwms.pop3.factory import POP3Factory
        from zwms.smtp.factory import SMTPFactory
        from zwms.web.site import make_site

        s = self.layer
        if name in ("smtp", "submission", "smtps"):
            return SMTPFactory(s, name, tls_context=tls)
        if name in ("pop3", "pop3s"):
            return POP3Factory(s, tls_context=tls, implicit_tls=(name == "pop3s"))
        return make_site(s, reactor=self.reactor)

    def startService(self):
        service.MultiService.startService(self)
        self._started = self._start()
        self._started.addErrback(self._failed_start)
        return self._started

    @defer.inlineCallbacks
    def _start(self):
        from zwms.tls import ensure_certificate, server_context

        s = self.build_services()
        tls = server_context(ensure_certificate(self.home.tls, s.settings["DOMAIN"]))
        for name, descriptions in self.listeners.items():
            for description in descriptions:
                factory = self._factory(name, tls)
                self.factories.append(factory)
                wrapped = factory
                if name in IMPLICIT_TLS and not description.startswith("ssl:"):
                    wrapped = TLSMemoryBIOFactory(tls, False, factory)
                endpoint = endpoints.serverFromString(self.reactor, description)
                port = yield endpoint.listen(wrapped)
                self.ports.append(port)
                self.bound.append((name, describe_address(port.getHost())))
        # "Me" for loop detection (SPEC S8): the addresses SMTP listens on.
        s.queue.own_addresses.update(
            port.getHost().host for port, (name, _) in zip(self.ports, self.bound)
            if name in ("smtp", "submission", "smtps"))
        # The router resumes mailing fan-outs around the queue's own start.
        yield s.router.start()
        lines = "".join("%s %s\n" % pair for pair in self.bound)
        atomic_write(os.path.join(self.home.run, "listen"), lines.encode("ascii"))
        s.logs.write(logchannels.SYSTEMSTATUS, "zWMS started: " + ", ".join(
            "%s %s" % pair for pair in self.bound))

    def _failed_start(self, failure):
        log.err(failure, "zWMS could not start")
        if self.layer is not None:
            self.layer.logs.write(logchannels.SYSTEMERROR,
                                     "Start failed: %s" % failure.getErrorMessage())
        if self.reactor.running:
            self.reactor.stop()

    # -- stop ----------------------------------------------------------------

    @defer.inlineCallbacks
    def stopService(self):
        yield defer.maybeDeferred(service.MultiService.stopService, self)
        # New commands get 421; stores already under way finish (their 250
        # follows), then the listeners close.
        draining = [defer.maybeDeferred(factory.stop_accepting) for factory in self.factories
                    if getattr(factory, "stop_accepting", None) is not None]
        yield defer.DeferredList([defer.maybeDeferred(p.stopListening) for p in self.ports])
        self.ports = []
        yield defer.DeferredList(draining)
        try:
            os.unlink(os.path.join(self.home.run, "listen"))
        except FileNotFoundError:
            pass
        if self.layer is not None:
            if self.layer.router is not None:
                yield self.layer.router.stop()
            yield defer.maybeDeferred(self.layer.mail.stop)
            self.layer.logs.write(logchannels.SYSTEMSTATUS, "zWMS stopped")
            self.layer.logs.close()
