"""The admin calendar (seed §29): memos in data/cal, anniversaries in data/cal/special."""

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.test_web_admin import ConsoleTestCase
from zwms.errors import InvalidValue
from zwms.home import Home
from zwms.store.calendar import AdminCalendar, check_date, link_parts


class StoreTests(SynchronousTestCase):

    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        self.cal = AdminCalendar(self.home)

    def test_files_per_date(self):
        self.cal.set_memo("2024-05-05", "소풍 https://example.com/a?b=1")
        self.cal.set_special("2024-05-05", "어린이날", True)
        with open(self.home.path("data", "cal", "2024-05-05.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "소풍 https://example.com/a?b=1\n")
        with open(self.home.path("data", "cal", "special", "2024-05-05.txt"),
                  encoding="utf-8") as f:
            self.assertEqual(f.read(), "어린이날\nholiday=1\n")
        self.assertEqual(self.cal.month(2024, 5),
                         {5: ("소풍 https://example.com/a?b=1", "어린이날", True)})
        self.cal.set_memo("2024-05-05", "")
        self.cal.set_special("2024-05-05", " ", True)
        self.assertEqual(os.listdir(self.home.path("data", "cal", "special")), [])
        self.assertEqual(self.cal.month(2024, 5), {})

    def test_bad_dates(self):
        for bad in ("2024-02-30", "../x", "2024-5-5", "2024-05-05/../../x", "", "2024-05-05\x00"):
            self.assertRaises(InvalidValue, check_date, bad)
            self.assertRaises(InvalidValue, self.cal.set_memo, bad, "x")
        self.assertRaises(InvalidValue, self.cal.set_special, "2024-05-05", "a\nb", False)

    def test_link_parts(self):
        self.assertEqual(link_parts("see http://a.example/x and more"),
                         [(False, "see "), (True, "http://a.example/x"), (False, " and more")])
        self.assertEqual(link_parts("javascript:alert(1)"), [(False, "javascript:alert(1)")])


class PageTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.client.login()

    def test_month_and_day(self):
        r = self.client.get("/admin/calendar/?m=2024-05")
        self.assertEqual(r.code, 200)
        self.assertIn("달력", r.text)
        self.assertIn('href="/admin/calendar/day?d=2024-05-05"', r.text)
        r = self.client.post("/admin/calendar/day", {
            "d": "2024-05-05", "memo": '<b>x</b> https://example.com/q?a=1&b="2"',
            "name": "어린이날", "holiday": "1"})
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/calendar/?m=2024-05&done=saved")
        text = self.client.get("/admin/calendar/?m=2024-05").text
        self.assertIn("어린이날", text)
        self.assertIn("&lt;b&gt;x&lt;/b&gt;", text)
        self.assertNotIn("<b>x</b>", text)
        self.assertIn('<a href="https://example.com/q?a=1&amp;b=" rel="noopener noreferrer">',
                      text)
        day = self.client.get("/admin/calendar/day?d=2024-05-05").text
        self.assertIn("checked", day)
        self.client.post("/admin/lang", {"lang": "en", "back": "/admin/calendar/"})
        self.assertIn("Anniversary", self.client.get("/admin/calendar/day?d=2024-05-05").text)
        self.assertIn("Calendar", self.client.get("/admin/calendar/").text)

    def test_bad_input(self):
        self.assertEqual(self.client.get("/admin/calendar/?m=2024-13").code, 400)
        self.assertEqual(self.client.get("/admin/calendar/day?d=../../etc").code, 400)
        r = self.client.post("/admin/calendar/day", {"d": "2024-02-30", "memo": "x"})
        self.assertEqual(r.code, 400)
        r = self.client.post("/admin/calendar/day", {"d": "2024-05-05", "memo": "x",
                                                     "name": "n" * 101})
        self.assertEqual(r.code, 400)
        self.assertEqual(os.listdir(self.services.home.path("data", "cal")), ["special"])
