# -*- test-case-name: tests.test_pop3_protocol -*-
"""
The POP3 server factory: one per listener (110 with STLS, 995 implicit TLS).
Listeners themselves are made by zwms/service.py.
"""

from twisted.internet import protocol

from zwms.pop3.login import LoginCache, authenticate, default_run_blocking
from zwms.pop3.mailbox import open_mailbox
from zwms.pop3.server import IDLE_TIMEOUT, POP3Server

#: Failed logins before the connection is closed.
MAX_FAILURES = 3


class POP3Factory(protocol.ServerFactory):
    """
    Builds L{POP3Server} sessions over the service layer.

    @param services: the L{zwms.interfaces.IServices}.
    @param tls_context: a server TLS context factory; STLS is offered when it
        is set and the connection is not already secure.
    @param implicit_tls: the listener wraps connections in TLS itself (995):
        STLS is not offered.
    @param run_blocking: C{run_blocking(f, *args)} runs slow work (the
        password check) off the reactor thread; default C{deferToThread}.
        Tests pass a synchronous runner.
    @param timeout: idle seconds before a session is closed.
    @param max_failures: failed logins before a session is closed.
    @param login_cache: a L{zwms.pop3.login.LoginCache} (default: a new
        one on the services' clock that keeps a login for zwms.cfg
        POP3AUTHCACHE seconds, none when that is 0), or False to check
        every password with argon2.
    """

    protocol = POP3Server
    noisy = False

    def __init__(self, services, tls_context=None, implicit_tls=False,
                 run_blocking=None, timeout=IDLE_TIMEOUT, max_failures=MAX_FAILURES,
                 login_cache=None):
        self.services = services
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.run_blocking = run_blocking or default_run_blocking
        self.timeout = timeout
        self.max_failures = max_failures
        self.stopping = False
        if login_cache is None:
            ttl = services.settings["POP3AUTHCACHE"]
            login_cache = (LoginCache(ttl=ttl, clock=getattr(services, "clock", None))
                           if ttl > 0 else False)
        self.login_cache = None if login_cache is False else login_cache

    def buildProtocol(self, addr):
        p = protocol.ServerFactory.buildProtocol(self, addr)
        p.timeOut = self.timeout
        clock = getattr(self.services, "clock", None)
        if clock is not None:
            p.callLater = clock.callLater
        return p

    def login(self, user, password):
        """
        Check USER/PASS.

        @return: a Deferred firing with the account or failing with
            L{zwms.pop3.login.LoginRefused}.
        """
        return authenticate(self.services, user, password, self.run_blocking,
                            self.login_cache)

    def open_mailbox(self, account):
        """@return: a Deferred firing with the session's mailbox (§31 policy)."""
        return open_mailbox(self.services, account, self.run_blocking)

    def stop_accepting(self):
        """Server stopping: new sessions get -ERR and are closed."""
        self.stopping = True
