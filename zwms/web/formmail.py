"""
/formmail: the anonymous form mail to the administrator (SPEC W5, seed §20).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class FormMailApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, services, reactor, run=None, skins=None):
        self.services = services
        self.reactor = reactor
        self.run = run
        self.skins = skins
