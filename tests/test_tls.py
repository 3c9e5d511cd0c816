"""The home's certificate is made once and loads as a server context."""

import os

from twisted.trial.unittest import SynchronousTestCase

from zwms.tls import ensure_certificate, server_context


class CertificateTests(SynchronousTestCase):
    def test_made_once_private_and_loadable(self):
        d = self.mktemp()
        path = ensure_certificate(d, "mail.example.com")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path, "rb") as f:
            first = f.read()
        self.assertIn(b"BEGIN CERTIFICATE", first)
        self.assertEqual(ensure_certificate(d, "other"), path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), first)
        self.assertIsNotNone(server_context(path).getContext())
