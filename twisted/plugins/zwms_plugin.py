"""
The `twistd zwms` plugin.  zwms.tap is imported lazily: plugin discovery
imports this module, and must stay cheap and free of side effects.
"""

from twisted.application.service import ServiceMaker

zwms = ServiceMaker(
    "zWMS mail server",
    "zwms.tap",
    "zWMS: all-in-one mail server (SMTP, submission, POP3, web)",
    "zwms",
)
