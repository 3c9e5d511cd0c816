"""
/admin/boards/...: board management (SPEC A6, seed §14).

(Being built; the routes come with this module's own change.)
"""

from klein import Klein


class BoardsAdminApp:
    """Mounted by its parent app; holds its services, no module globals."""

    app = Klein()

    def __init__(self, console):
        self.console = console
