"""
/mail/boards/RAND/...: the boards, user side (SPEC W3, seed §14).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class BoardsApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
