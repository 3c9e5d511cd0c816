# -*- test-case-name: tests.test_relay_limits -*-
"""
Per-account daily sending counters (SPEC S7, seed §16 "일일 제한통수",
"일일 제한용량"): how many messages and bytes an account has sent today.

One small file per account, data/userd/ID/sendcount, one line:

    YYYY-MM-DD COUNT BYTES

written atomically (temp, fsync, rename; L{zwms.fileio.atomic_write}).  A
line of another day reads as zero: the count starts again at local
midnight.  A damaged file reads as zero too (a counter must never stop a
user from sending for good) and is rewritten at the next message.

Every method blocks (file I/O, fsync): call them from a thread.  A lock
makes the read-modify-write of L{SendCounter.add} safe when two sessions of
the same account finish at once.
"""

import os
import threading
import time

from zwms.fileio import atomic_write

FILE_NAME = "sendcount"


class SendCounter:
    """
    @param home: a L{zwms.home.Home}.
    @param now: wall-clock seconds (an injected clock's C{seconds}).
    """

    def __init__(self, home, now=time.time):
        self.home = home
        self._now = now
        self._lock = threading.Lock()

    def _path(self, account_id):
        return os.path.join(self.home.user_dir(account_id), FILE_NAME)

    def today(self):
        """The current day as YYYY-MM-DD, local time."""
        return time.strftime("%Y-%m-%d", time.localtime(self._now()))

    def get(self, account_id):
        """@return: (messages, bytes) sent today by the account."""
        try:
            with open(self._path(account_id), "rb") as f:
                parts = f.read(200).decode("ascii", "replace").split()
        except (FileNotFoundError, NotADirectoryError):
            return 0, 0
        if len(parts) != 3 or parts[0] != self.today():
            return 0, 0
        try:
            return max(0, int(parts[1])), max(0, int(parts[2]))
        except ValueError:
            return 0, 0

    def add(self, account_id, size, count=1):
        """
        Count C{count} more messages of C{size} bytes in all for today.

        @return: the new (messages, bytes).
        """
        with self._lock:
            messages, total = self.get(account_id)
            messages, total = messages + count, total + int(size)
            folder = self.home.user_dir(account_id)
            os.makedirs(folder, exist_ok=True)
            line = "%s %d %d\n" % (self.today(), messages, total)
            atomic_write(self._path(account_id), line.encode("ascii"))
            return messages, total
