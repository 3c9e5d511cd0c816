# -*- test-case-name: tests.test_smtp_protocol -*-
"""
The SMTP listener factory (SPEC S1, S7): one per listening endpoint, in one
of three modes:

- "smtp" (25): mail from the Internet; anonymous senders, AUTH offered over
  TLS or from loopback;
- "submission" (587): AUTH required (after STARTTLS unless on loopback);
- "smtps" (465): like submission, the endpoint does the TLS (implicit TLS),
  so the session is secure from its first byte.

The lead's service wiring calls L{SMTPFactory.stop_accepting} when the
service stops.
"""

from twisted.internet import defer
from twisted.mail import imap4, smtp

from zwms.smtp.auth import MODES, make_portal
from zwms.smtp.protocol import SMTPServer


class SMTPFactory(smtp.SMTPFactory):
    """
    @param services: the L{zwms.services.Services}.
    @param mode: "smtp", "submission" or "smtps".
    @param tls_context: a server context factory for STARTTLS (None: no
        STARTTLS).  For "smtps" the endpoint wraps the connection in TLS;
        the protocol is told it is secure.
    @param portal: a cred portal; by default L{make_portal} over services.
    @param run_in_thread: how the password check runs off the reactor
        thread (default C{deferToThread}); tests pass a synchronous one.
    """

    protocol = SMTPServer
    #: Idle seconds before "421 Timeout. Close session" (RFC 5321 §4.5.3.2
    #: asks at least 5 minutes).
    timeout = 300

    def __init__(self, services, mode, tls_context=None, portal=None, run_in_thread=None):
        if mode not in MODES:
            raise ValueError("unknown SMTP mode %r (one of %s)" % (mode, ", ".join(MODES)))
        smtp.SMTPFactory.__init__(self, portal or make_portal(services, mode, run_in_thread))
        self.services = services
        self.mode = mode
        self.tls_context = tls_context
        self.shutting_down = False
        self.connections = set()
        self.challengers = {b"PLAIN": imap4.PLAINCredentials, b"LOGIN": smtp.LOGINCredentials}

    def buildProtocol(self, addr):
        p = self.protocol(chal=dict(self.challengers), contextFactory=self.tls_context)
        p.factory = self
        p.portal = self.portal
        p.host = self.services.settings["DOMAIN"]
        p.timeout = self.timeout
        p.callLater = self.services.clock.callLater
        p.implicit_tls = self.mode == "smtps"
        p.require_auth = self.mode != "smtp"
        return p

    def max_message_size(self):
        """MAXMAILSIZE (KB) in bytes: advertised with SIZE and enforced."""
        return int(self.services.settings["MAXMAILSIZE"]) * 1024

    def stop_accepting(self):
        """
        The service is stopping: new connections and new commands get "421
        Service shutting down"; a store write in flight finishes and is
        answered first.

        @return: a Deferred that fires once no session has a pending answer
            (the service may wait for it before closing the store).
        """
        self.shutting_down = True
        waits = [p.shutdown() for p in list(self.connections)]
        return defer.DeferredList(waits).addCallback(lambda ignored: None)
