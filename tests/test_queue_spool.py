"""The queue spool: durable entries, crash leftovers swept, nothing lost."""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from zwms.fileio import TMP_PREFIX
from zwms.home import Home
from zwms.queue.spool import (BOUNCED, PENDING, SENT, AsyncSpool, Envelope, Spool,
                              SpoolError, run_now)


class SpoolTests(SynchronousTestCase):
    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        self.spool = Spool(self.home, now=lambda: 1700000000.5)

    def files(self):
        return sorted(os.listdir(self.home.queue))

    def test_enqueue_writes_message_and_envelope(self):
        env = self.spool.enqueue("a@here.test", ["b@far.test", "B@far.test", "c@far.test"],
                                 b"Subject: x\n\nbody", auto=False, origin="smtp 127.0.0.1")
        self.assertEqual(self.files(), [env.id + ".eml", env.id + ".json"])
        self.assertTrue(env.id.startswith("1700000000."))
        self.assertEqual(self.spool.read(env.id), b"Subject: x\r\n\r\nbody\r\n")
        with open(os.path.join(self.home.queue, env.id + ".json"), "rb") as f:
            raw = json.loads(f.read())
        self.assertEqual(raw["schema"], 1)
        self.assertEqual(raw["sender"], "a@here.test")
        self.assertEqual([r["addr"] for r in raw["recipients"]], ["b@far.test", "c@far.test"])
        self.assertEqual({r["state"] for r in raw["recipients"]}, {PENDING})
        self.assertEqual(raw["created"], 1700000000.5)
        self.assertFalse(raw["auto"])
        self.assertEqual(raw["origin"], "smtp 127.0.0.1")

    def test_no_recipient_is_refused(self):
        self.assertRaises(SpoolError, self.spool.enqueue, "a@b.test", [], b"x")
        self.assertEqual(self.files(), [])

    def test_update_round_trip(self):
        env = self.spool.enqueue("", ["b@far.test", "c@far.test"], b"x", auto=True)
        env.recipients[0].state = SENT
        env.recipients[1].state = BOUNCED
        env.recipients[1].reply = "550 5.1.1 한글 reply"
        env.attempts = 3
        self.spool.update(env)
        again = self.spool.load(env.id)
        self.assertEqual(again, env)
        self.assertTrue(again.auto)
        self.assertEqual(again.pending(), [])
        self.assertEqual([r.addr for r in again.unnotified()], ["c@far.test"])

    def test_remove(self):
        env = self.spool.enqueue("a@b.test", ["c@d.test"], b"x")
        self.spool.remove(env.id)
        self.assertEqual(self.files(), [])
        self.spool.remove(env.id)  # twice is harmless

    def test_recover_sweeps_uncommitted_and_temp_files(self):
        kept = self.spool.enqueue("a@b.test", ["c@d.test"], b"x")
        orphan = self.spool.enqueue("a@b.test", ["c@d.test"], b"y")
        os.unlink(os.path.join(self.home.queue, orphan.id + ".json"))  # crash before commit
        with open(os.path.join(self.home.queue, TMP_PREFIX + "abc"), "wb") as f:
            f.write(b"half")
        entries, swept, bad = self.spool.recover()
        self.assertEqual(entries, [kept.id])
        self.assertEqual(swept, 2)
        self.assertEqual(bad, [])
        self.assertEqual(self.files(), [kept.id + ".eml", kept.id + ".json"])

    def test_recover_sets_bad_envelopes_aside(self):
        env = self.spool.enqueue("a@b.test", ["c@d.test"], b"x")
        with open(os.path.join(self.home.queue, env.id + ".json"), "wb") as f:
            f.write(b"{not json")
        entries, swept, bad = self.spool.recover()
        self.assertEqual((entries, bad), ([], [env.id + ".json.bad"]))
        self.assertIn(env.id + ".json.bad", self.files())
        self.assertIn(env.id + ".eml", self.files())  # kept for the administrator

    def test_bad_ids_never_leave_the_folder(self):
        for bad in ("../x", "0000000001.zz", ""):
            self.assertRaises(SpoolError, self.spool.load, bad)
            self.assertRaises(SpoolError, self.spool.read, bad)

    def test_envelope_schema_checked(self):
        env = self.spool.enqueue("a@b.test", ["c@d.test"], b"x")
        raw = json.loads(env.to_json())
        raw["schema"] = 99
        self.assertRaises(SpoolError, Envelope.from_json, json.dumps(raw).encode())
        raw["schema"] = 1
        raw["recipients"][0]["state"] = "lost"
        self.assertRaises(SpoolError, Envelope.from_json, json.dumps(raw).encode())

    def test_async_wrapper(self):
        calls = []

        def runner(f, *args, **kwargs):
            calls.append(f.__name__)
            return run_now(f, *args, **kwargs)
        aspool = AsyncSpool(self.spool, runner)
        env = self.successResultOf(aspool.enqueue("a@b.test", ["c@d.test"], b"x"))
        self.assertEqual(self.successResultOf(aspool.ids()), [env.id])
        self.assertEqual(calls, ["enqueue", "ids"])
