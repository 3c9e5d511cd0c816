"""
The far side of queue_load.py, in its own process: a DNS world on 127.0.0.1
(tests/dnsworld.py: far.test MX -> mx.far.test A 127.0.0.2) and a receiving
SMTP sink on 127.0.0.2 (tests/smtpsink.py) that keeps no message bodies.

    python bench/sinkworld.py STATUSFILE     # prints "DNSPORT SINKPORT"

Every 50 ms it rewrites STATUSFILE with "TRANSACTIONS RECIPIENTS
MONOTONIC-OF-THE-LAST" when the counts changed.  SIGTERM stops it.
"""

import os
import sys
import time

from twisted.internet import defer, reactor, task

from tests.dnsworld import DNSWorld
from tests.smtpsink import SMTPSink, _Message


class CountingMessage(_Message):
    """Counts a transaction without keeping its lines."""

    def lineReceived(self, line):
        pass

    def eomReceived(self):
        if self.primary:
            self.sink.count(len(self.tx.recipients))
        return defer.succeed(None)


class CountingSink(SMTPSink):
    def __init__(self, **kw):
        SMTPSink.__init__(self, **kw)
        self.tx_count = 0
        self.rcpt_count = 0
        self.last = 0.0

    def count(self, recipients):
        self.tx_count += 1
        self.rcpt_count += recipients
        self.last = time.monotonic()


def main():
    out = sys.argv[1]
    import tests.smtpsink as smtpsink
    smtpsink._Message = CountingMessage  # the sink's delivery builds this class
    sink = CountingSink(interface="127.0.0.2").start()
    world = DNSWorld(["far.test"])
    world.mx("far.test", 10, "mx.far.test")
    world.a("mx.far.test", "127.0.0.2")
    world.start()
    written = [None]

    def flush():
        state = (sink.tx_count, sink.rcpt_count, sink.last)
        if state != written[0]:
            tmp = out + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d %d %r\n" % state)
            os.replace(tmp, out)
            written[0] = state

    task.LoopingCall(flush).start(0.05)
    print(world.port, sink.port, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
