"""User calendar (SPEC W3, §29): own memos, merged admin memos and anniversaries, .ics."""

import datetime
import os

from twisted.trial.unittest import SynchronousTestCase

from zwms.errors import InvalidValue
from zwms.home import Home
from zwms.store.calendar import AdminCalendar
from zwms.store.usercal import UserCalendar

NOW = datetime.datetime(2024, 5, 1, 9, 0, tzinfo=datetime.timezone.utc)


class UserCalendarTests(SynchronousTestCase):
    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        os.makedirs(self.home.user_dir("alice"))
        self.cal = UserCalendar(self.home)
        self.admin = AdminCalendar(self.home)

    def test_memo_file_per_date(self):
        self.cal.set_memo("alice", "2024-05-05", "소풍\r\nsee https://example.test/x?a=1&b=2.")
        path = os.path.join(self.home.user_dir("alice"), "cal", "2024-05-05.txt")
        with open(path, "rb") as f:
            self.assertEqual(f.read().decode("utf-8"),
                             "소풍\nsee https://example.test/x?a=1&b=2.\n")
        self.assertEqual(self.cal.memo("alice", "2024-05-05"),
                         "소풍\nsee https://example.test/x?a=1&b=2.")
        self.cal.set_memo("alice", "2024-05-05", "   ")
        self.assertFalse(os.path.exists(path))
        self.assertEqual(self.cal.memo("alice", "2024-05-05"), "")

    def test_bad_input(self):
        for date in ("2024-02-30", "../../x", "2024-5-5", "", "2024-05-05/../../a"):
            self.assertRaises(InvalidValue, self.cal.set_memo, "alice", date, "x")
        self.assertRaises(InvalidValue, self.cal.set_memo, "alice", "2024-05-05", "a\x00b")
        self.assertRaises(InvalidValue, self.cal.set_memo, "alice", "2024-05-05", "x" * 10001)
        self.assertRaises(InvalidValue, self.cal.set_memo, "../bob", "2024-05-05", "x")
        self.assertRaises(InvalidValue, self.cal.month, "alice", 2024, 13)
        self.assertEqual(self.cal.memo_dates("alice"), [])

    def test_month_merges_admin_and_special(self):
        self.cal.set_memo("alice", "2024-05-05", "my picnic http://pic.test/")
        self.admin.set_memo("2024-05-05", "사내 공지 https://intra.test/notice")
        self.admin.set_special("2024-05-05", "어린이날", True)
        self.admin.set_special("2024-05-08", "어버이날", False)
        self.cal.set_memo("alice", "2024-04-30", "end of april")
        weeks = self.cal.month("alice", 2024, 5, today=datetime.date(2024, 5, 8))
        self.assertEqual(len(weeks), 5)
        self.assertTrue(all(len(w) == 7 for w in weeks))
        first = weeks[0][0]
        self.assertEqual((first.date, first.in_month, first.weekday), ("2024-04-28", False, 6))
        days = {d.date: d for w in weeks for d in w}
        d5 = days["2024-05-05"]
        self.assertEqual((d5.special, d5.holiday), ("어린이날", True))
        self.assertEqual(d5.memo_parts, [(False, "my picnic "), (True, "http://pic.test/")])
        self.assertEqual(d5.admin_parts, [(False, "사내 공지 "), (True, "https://intra.test/notice")])
        self.assertEqual((days["2024-05-08"].special, days["2024-05-08"].holiday,
                          days["2024-05-08"].today), ("어버이날", False, True))
        self.assertEqual(days["2024-04-30"].memo, "end of april")
        # another account sees the admin's memo but not alice's
        other = {d.date: d for w in self.cal.month("bob", 2024, 5) for d in w}
        self.assertEqual(other["2024-05-05"].memo, "")
        self.assertEqual(other["2024-05-05"].admin_memo, "사내 공지 https://intra.test/notice")

    def test_week_and_day(self):
        self.cal.set_memo("alice", "2024-05-09", "thu")
        week = self.cal.week("alice", "2024-05-09")
        self.assertEqual([d.date for d in week][0], "2024-05-05")
        self.assertEqual([d.date for d in week][-1], "2024-05-11")
        self.assertEqual(week[4].memo, "thu")
        monday_first = self.cal.week("alice", "2024-05-09", firstweekday=0)
        self.assertEqual(monday_first[0].date, "2024-05-06")
        self.assertEqual(self.cal.day("alice", "2024-05-09").memo, "thu")

    def test_link_spans_never_html(self):
        self.cal.set_memo("alice", "2024-05-01", "<b>x</b> javascript:alert(1) https://a.test/\"><script>")
        parts = self.cal.day("alice", "2024-05-01").memo_parts
        links = [t for is_link, t in parts if is_link]
        self.assertEqual(links, ["https://a.test/"])
        self.assertEqual("".join(t for _, t in parts),
                         "<b>x</b> javascript:alert(1) https://a.test/\"><script>")

    def test_ics_export(self):
        self.cal.set_memo("alice", "2024-05-05", "소풍; bring food, water\nline2 " + "가" * 40)
        self.cal.set_memo("alice", "2024-06-01", "june")
        self.admin.set_special("2024-05-05", "어린이날", True)
        self.admin.set_memo("2024-05-10", "공지")
        data = self.cal.export_ics("alice", "2024-05-01", "2024-05-31", domain="here.test",
                                   now=NOW)
        self.assertTrue(data.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"))
        self.assertTrue(data.endswith(b"END:VCALENDAR\r\n"))
        for line in data.split(b"\r\n"):
            self.assertLessEqual(len(line), 75)
            line.decode("utf-8")
        text = data.replace(b"\r\n ", b"").decode("utf-8")
        self.assertEqual(text.count("BEGIN:VEVENT"), 3)
        self.assertNotIn("june", text)
        self.assertIn("UID:20240505-memo-alice@here.test\r\n", text)
        self.assertIn("DTSTART;VALUE=DATE:20240505\r\nDTEND;VALUE=DATE:20240506\r\n", text)
        self.assertIn("SUMMARY:소풍\\; bring food\\, water\r\n", text)
        self.assertIn("DESCRIPTION:소풍\\; bring food\\, water\\nline2 ", text)
        self.assertIn("SUMMARY:어린이날\r\n", text)
        self.assertIn("CATEGORIES:HOLIDAY", text)
        self.assertIn("DTSTAMP:20240501T090000Z", text)
        own_only = self.cal.export_ics("alice", include_admin=False, now=NOW).decode("utf-8")
        self.assertEqual(own_only.count("BEGIN:VEVENT"), 2)
