"""
/mail/calendar/RAND/...: the user's calendar (SPEC W3, seed §29).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class CalendarApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
