"""argon2 hashing: never more than MAX_CONCURRENT hashes at once (memory)."""

import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from zwms.store import passwords


class ConcurrencyTests(SynchronousTestCase):
    def test_at_most_two_hashes_at_once(self):
        stored = passwords.hash_password("pw")
        state = {"now": 0, "most": 0}
        lock = threading.Lock()
        real = passwords._hasher

        class Slow:
            def verify(self, h, p):
                return slow_verify(h, p)

        def slow_verify(h, p):
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.02)
            with lock:
                state["now"] -= 1
            return real.verify(h, p)

        self.patch(passwords, "_hasher", Slow())
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            passwords.verify_password(stored, "pw"))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(results, [True] * 8)
        self.assertEqual(state["most"], passwords.MAX_CONCURRENT)
