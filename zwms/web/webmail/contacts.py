"""
/mail/contacts/RAND/...: the address book (SPEC W3, seed §28).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class ContactsApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
