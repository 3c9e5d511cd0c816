# -*- test-case-name: tests.test_policy_checks -*-
"""
P5 virus (SPEC §2; seed §32): an attachment whose extension is in
data/virus.dat (one a line, without the dot; "tar.gz" style entries work).

File names come from every part of the message, nested multiparts and
attached messages included, RFC 2231 and RFC 2047 encoded names decoded
(L{zwms.policy.content}).  Trailing dots and spaces are ignored, so
"invoice.exe." and "invoice.exe " count as .exe (Windows drops them).
"""

from zwms import replies
from zwms.policy import verdict as v


def refused_extension(name, extensions):
    """The entry of C{extensions} that file name C{name} ends with, or None."""
    name = str(name).strip().rstrip(". \t").casefold()
    for ext in extensions:
        ext = ext.lstrip(".")
        if ext and name.endswith("." + ext):
            return ext
    return None


def check(facts):
    """Refuse or mark a mail with a refused attachment."""
    config = facts.config
    if not config.virusreject or facts.content is None or not facts.virus_extensions:
        return v.go()
    for name in facts.content.attachments():
        ext = refused_extension(name, facts.virus_extensions)
        if ext is not None:
            detail = "<%s> (attachment %r)" % (facts.mail.sender, name)
            return v.by_level(config.virusreject, v.VIRUS, replies.LOOKS_VIRUS,
                              replies.LOG_RECEIVE_VIRUS, detail, check="virus")
    return v.go()
