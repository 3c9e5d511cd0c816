# -*- test-case-name: tests.test_policy_checks -*-
"""
P1 (SPEC §2; seed §4, §32): BLOCKIPS refused at connect, and who skips
the bad-mail checks P2–P5: RELAYIPS, senders of ALLOWDOMAINS, and SMTP AUTH
sessions (the server's own users).
"""

from zwms.policy import verdict as v
from zwms.policy.lists import domain_in, domain_of, ip_in


def check_connect(facts):
    """
    A connection from a BLOCKIPS address is refused at once: 554 (RFC 5321
    §3.1) and the session is closed; logged to MailBlock.
    """
    ip = facts.mail.peer_ip
    if facts.config.blockips and ip_in(ip, facts.config.blockips):
        return v.refuse(v.BLOCKED_IP, v.LOG_BLOCKED_IP, "(BLOCKIPS)", check="block")
    return v.go()


def trusted(facts):
    """
    Why this mail skips the bad-mail checks, or "" when it does not:
    "auth" (SMTP AUTH), "relayips" (a RELAYIPS peer), "allowdomains" (the
    MAIL FROM domain is in ALLOWDOMAINS).
    """
    mail, config = facts.mail, facts.config
    if mail.authenticated:
        return "auth"
    if ip_in(mail.peer_ip, config.relayips):
        return "relayips"
    if config.allowdomains and domain_in(domain_of(mail.sender), config.allowdomains):
        return "allowdomains"
    return ""
