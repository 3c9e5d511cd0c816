# -*- test-case-name: tests.test_policy_checks -*-
"""
P2 bomb mail (SPEC §2; seed §4 "폭탄메일거부", §32): a mail from an IP
less than SMTPTTL seconds after the last accepted mail from that IP.

Bomb mail is spam: refused with the §36 spam reply (BOMBREJECT=1) or left
to the account as "spam" (BOMBREJECT=2).  Only accepted mails restart the
clock, so a refused sender that waits SMTPTTL seconds gets through: the
check is a rate of one mail per SMTPTTL seconds per IP.

The memory is bounded (L{BombMemory}): entries older than SMTPTTL are
useless and are dropped as time passes, and at most C{cap} IPs are kept
(the oldest go first), so a flood from many addresses costs at most C{cap}
small entries.  Used from the reactor thread only.
"""

from collections import OrderedDict

from zwms import replies
from zwms.policy import verdict as v

#: Most IPs remembered; past this the oldest are forgotten (that can only
#: let a mail through, never refuse one wrongly).
DEFAULT_CAP = 100_000


class BombMemory:
    """When each IP last sent an accepted mail: an LRU ordered by time."""

    def __init__(self, cap=DEFAULT_CAP):
        self.cap = cap
        self._last = OrderedDict()

    def __len__(self):
        return len(self._last)

    def last(self, ip):
        return self._last.get(ip)

    def record(self, ip, now):
        self._last[ip] = now
        self._last.move_to_end(ip)
        while len(self._last) > self.cap:
            self._last.popitem(last=False)

    def expire(self, now, ttl):
        """Drop the entries older than C{ttl} (the front is the oldest)."""
        while self._last:
            ip, when = next(iter(self._last.items()))
            if now - when < ttl and now >= when:
                break
            self._last.popitem(last=False)


def check(facts):
    """Refuse, mark or pass a mail by the time since the IP's last one."""
    config, mail = facts.config, facts.mail
    if not config.bombreject or config.smtpttl <= 0 or facts.bomb is None:
        return v.go()
    memory, now, ip = facts.bomb, facts.now, mail.peer_ip
    memory.expire(now, config.smtpttl)
    last = memory.last(ip)
    if last is not None and 0 <= now - last < config.smtpttl:
        detail = "<%s> (%s: %.1f s after the last mail from this IP, SMTPTTL=%d)" % (
            mail.sender, v.LOG_BOMB, now - last, config.smtpttl)
        return v.by_level(config.bombreject, v.SPAM, replies.LOOKS_SPAM,
                          replies.LOG_RECEIVE_SPAM, detail, check="bomb")
    memory.record(ip, now)
    return v.go()
