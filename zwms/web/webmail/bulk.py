"""
/mail/bulk/RAND/...: bulk sending and delivery status (SPEC Q5, seed §21).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class BulkApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
