"""The six log channels: one file each, lines kept across rotation."""

import os

from twisted.trial.unittest import SynchronousTestCase

from zwms import logs, replies


class FileLogsTests(SynchronousTestCase):
    def test_one_file_per_channel_word_for_word(self):
        d = self.mktemp()
        channels = logs.FileLogs(d)
        self.addCleanup(channels.close)
        channels.write(logs.MAILSERVER, replies.LOG_RECEIVE_SUCCESS, peer="127.0.0.1")
        channels.write(logs.MAILBLOCK, "line\r\ninjected")
        self.assertEqual(sorted(os.listdir(d)), sorted("%s.log" % c for c in logs.CHANNELS))
        with open(channels.path(logs.MAILSERVER)) as f:
            line = f.read()
        self.assertTrue(line.endswith(" [127.0.0.1] Mail receive success\n"), line)
        with open(channels.path(logs.MAILBLOCK)) as f:
            self.assertEqual(len(f.read().splitlines()), 1)  # no log injection

    def test_rotation_loses_no_line(self):
        d = self.mktemp()
        channels = logs.FileLogs(d, rotate_bytes=200, keep=100)
        self.addCleanup(channels.close)
        for i in range(50):
            channels.write(logs.POP, "line %03d" % i)
        seen = []
        for name in os.listdir(d):
            if name.startswith("POP.log"):
                with open(os.path.join(d, name)) as f:
                    seen += [l.rsplit(" ", 1)[1] for l in f.read().splitlines()]
        self.assertEqual(sorted(seen), ["%03d" % i for i in range(50)])
        self.assertTrue(os.path.exists(os.path.join(d, "POP.log.1")))

    def test_append_line_from_another_process(self):
        d = self.mktemp()
        logs.append_line(d, logs.WEBMAIL, "user add alice")
        with open(os.path.join(d, "WebMail.log")) as f:
            self.assertIn("user add alice", f.read())
