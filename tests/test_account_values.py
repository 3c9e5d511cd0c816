"""The value checks of zwms.account that every front end relies on."""

from twisted.trial.unittest import SynchronousTestCase

from zwms.account import check_id, is_address
from zwms.errors import InvalidValue


class AddressAndIdTests(SynchronousTestCase):

    def test_plain_addresses(self):
        self.assertTrue(is_address("kim@example.co.kr"))
        self.assertTrue(is_address("a.b-c_d+e@mail.example.com"))

    def test_line_breaks_and_relay_tricks_refused(self):
        # A trailing newline would reach a header (injection); "$" alone allows it.
        for bad in ("kim@example.com\n", "kim@example.com\r\n", "kim\n@example.com",
                    "user%remote@example.com", "a!b@example.com", "\"q\"@example.com",
                    "@relay:kim@example.com", "kim@@example.com", "kim@"):
            self.assertFalse(is_address(bad), repr(bad))

    def test_ids(self):
        self.assertEqual(check_id(" Kim "), "kim")
        for bad in ("kim\nroot", "../x", "a..b", "", "-x", "a/b", "가나"):
            self.assertRaises(InvalidValue, check_id, bad)
