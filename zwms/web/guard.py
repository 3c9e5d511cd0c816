# -*- test-case-name: tests.test_web_admin -*-
"""
Brute-force lockout of the /admin login (A1): after MAX_FAILURES failed
logins from one IP, or for one login name, within WINDOW seconds, that IP
or name is refused for LOCKOUT seconds, whatever the password.  Counts
live in memory (a restart forgets them, which only gives an attacker the
time the restart took).
"""

#: Failures allowed before the lockout.
MAX_FAILURES = 5
#: Seconds the failures are counted over, and the lockout lasts.
WINDOW = 15 * 60
LOCKOUT = 15 * 60


class LoginGuard:
    """
    Failure counts per key ("ip:1.2.3.4", "login:root").

    @param now: a callable giving seconds (the service clock).
    """

    def __init__(self, now, max_failures=MAX_FAILURES, window=WINDOW, lockout=LOCKOUT):
        self.now = now
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self._failures = {}     # key -> [times]
        self._locked = {}       # key -> until

    def _keys(self, ip, login):
        return ["ip:%s" % ip, "login:%s" % str(login).strip().lower()[:100]]

    def locked(self, ip, login):
        """True while the IP or the login is locked out."""
        now = self.now()
        for key in self._keys(ip, login):
            until = self._locked.get(key)
            if until is not None:
                if now < until:
                    return True
                del self._locked[key]
        return False

    def failed(self, ip, login):
        """
        Count a failure.  @return: the keys that became locked now (for
        the log), else an empty list.
        """
        now = self.now()
        newly = []
        for key in self._keys(ip, login):
            times = [t for t in self._failures.get(key, []) if now - t < self.window]
            times.append(now)
            if len(times) >= self.max_failures:
                self._locked[key] = now + self.lockout
                self._failures.pop(key, None)
                newly.append(key)
            else:
                self._failures[key] = times
        # Bound the memory an attacker can fill with made-up login names.
        if len(self._failures) > 100000:
            self._failures.clear()
        return newly

    def succeeded(self, ip, login):
        """A good login clears the failures of its IP and name."""
        for key in self._keys(ip, login):
            self._failures.pop(key, None)
