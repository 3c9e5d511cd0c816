"""The POST routes of the second-round console apps (for the CSRF tests)."""

from zwms.web.admin_calendar import CalendarApp
from zwms.web.admin_files import FilesApp
from zwms.web.admin_groups import GroupsApp
from zwms.web.admin_system import SystemControlApp

#: (mount point, app class, {placeholder: sample value}).
APPS = [
    ("/admin/control", SystemControlApp, {}),
    ("/admin/groups", GroupsApp, {}),
    ("/admin/files", FilesApp, {}),
    ("/admin/calendar", CalendarApp, {}),
]


def post_routes():
    """Every POST route's path, with sample values in its placeholders."""
    out = []
    for prefix, app, samples in APPS:
        for rule in app.app.url_map.iter_rules():
            if "POST" in (rule.methods or ()):
                path = rule.rule
                for name, value in samples.items():
                    path = path.replace("<%s>" % name, value)
                out.append(prefix + path)
    return out
