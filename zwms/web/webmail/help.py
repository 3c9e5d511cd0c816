"""
/mail/help/RAND/...: mail client setup guide and FAQ (SPEC W9).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class HelpApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
