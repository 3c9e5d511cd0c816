"""
/zwms/site: site integration by signed links (SPEC W6, seed §35).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class SiteApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, services, reactor, webmail, run=None):
        self.services = services
        self.reactor = reactor
        self.webmail = webmail
        self.run = run
