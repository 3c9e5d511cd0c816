# -*- test-case-name: tests.test_policy_checks -*-
"""
P4 spam (SPEC §2; seed §12, §32): a phrase of data/spam.dat (one a line,
UTF-8) in the subject, the sender's name or the sender's address.

The subject and name are decoded first (RFC 2047 in UTF-8 or EUC-KR, raw
8-bit headers, see L{zwms.policy.content}), so a Korean phrase matches a
Korean subject however it was encoded.  Matching ignores case (casefold).
The "sender's address" is the From header's and the envelope's (MAIL FROM).
"""

from zwms import replies
from zwms.policy import verdict as v


def find_phrase(phrases, fields):
    """(phrase, field name) of the first phrase found, or None."""
    folded = [(name, (text or "").casefold()) for name, text in fields]
    for phrase in phrases:
        for name, text in folded:
            if phrase and phrase in text:
                return phrase, name
    return None


def fields_of(facts):
    """The (name, text) pairs that P4 looks into."""
    content, mail = facts.content, facts.mail
    return (("subject", content.subject), ("sender name", content.from_name),
            ("sender address", content.from_address), ("sender address", mail.sender))


def check(facts):
    """Refuse or mark a mail whose subject or sender holds a spam phrase."""
    config = facts.config
    if not config.spamreject or facts.content is None or not facts.spam_phrases:
        return v.go()
    found = find_phrase(facts.spam_phrases, fields_of(facts))
    if found is None:
        return v.go()
    phrase, where = found
    detail = "<%s> (%s has %r)" % (facts.mail.sender, where, phrase)
    return v.by_level(config.spamreject, v.SPAM, replies.LOOKS_SPAM,
                      replies.LOG_RECEIVE_SPAM, detail, check="spam")
