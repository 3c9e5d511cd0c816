"""
The calendar pages (SPEC W3, seed §29; issue 7): month, week and day views,
the user's memos (data/userd/ID/cal) edited on the day view, the admin's
public memos and anniversaries/holidays on their days, URLs in memos as
safe links, prev/next, the user's time zone, .ics export; CSRF, other
users' memos, non-dates.
"""

import os
import re

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import MailClient
from zwms.store import userprefs
from zwms.store.calendar import AdminCalendar
from zwms.store.usercal import UserCalendar

# The test clock is 1_700_000_000: 2023-11-14 22:13 UTC, 2023-11-15 07:13 in Seoul.
TODAY = "2023-11-15"


class CalendarTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.client.login()
        self.base = "/mail/calendar/%s/" % self.client.rand
        self.admin = AdminCalendar(self.services.home)
        self.cal = UserCalendar(self.services.home)

    def cell(self, text, date):
        """The month table cell of one date."""
        m = re.search(r'<td class="([^"]*)">\s*<a class="num" href="[^"]*day/%s"[^>]*>'
                      r'(.*?)</td>' % date, text, re.S)
        self.assertIsNotNone(m, date)
        return m.group(1), m.group(2)


class ViewTests(CalendarTestCase):

    def test_this_month_and_bare_url(self):
        r = self.client.get(self.base)
        self.assertEqual(r.code, 200)
        self.assertIn("2023년 11월", r.text)
        self.assertIn('href="/mail/css/contacts.css"', r.text)
        classes, _ = self.cell(r.text, TODAY)
        self.assertIn("today", classes)
        self.assertNotIn("today", self.cell(r.text, "2023-11-14")[0])
        self.assertIn("out", self.cell(r.text, "2023-10-29")[0])  # the Sunday before the 1st
        self.assertIn("sun", self.cell(r.text, "2023-11-12")[0])
        self.assertIn(self.base + "month/2023-10", r.text)
        self.assertIn(self.base + "month/2023-12", r.text)
        r = self.client.get(self.base.rstrip("/"))
        self.assertEqual((r.code, r.header("location")), (303, self.base))

    def test_time_zone_of_the_user(self):
        userprefs.save(self.services.home, "bob", tz="America/New_York")
        bob = MailClient(self.services)
        bob.login("bob", "secret2")
        r = bob.get("/mail/calendar/%s/" % bob.rand)
        self.assertIn("today", self.cell(r.text, "2023-11-14")[0])
        self.assertNotIn("today", self.cell(r.text, TODAY)[0])

    def test_admin_memos_and_holidays_on_their_days(self):
        self.admin.set_memo("2023-11-20", "전체 회의 10시")
        self.admin.set_special("2023-12-25", "성탄절", True)
        self.admin.set_special("2023-11-11", "빼빼로데이", False)
        self.cal.set_memo("alice", "2023-11-21", "치과 예약")
        r = self.client.get(self.base + "month/2023-11")
        self.assertIn("전체 회의 10시", self.cell(r.text, "2023-11-20")[1])
        self.assertIn("공용", self.cell(r.text, "2023-11-20")[1])
        self.assertIn("치과 예약", self.cell(r.text, "2023-11-21")[1])
        classes, body = self.cell(r.text, "2023-11-11")
        self.assertIn("빼빼로데이", body)
        self.assertNotIn("휴일", body)
        self.assertNotIn("전체 회의", self.cell(r.text, "2023-11-21")[1])
        r = self.client.get(self.base + "month/2023-12")
        classes, body = self.cell(r.text, "2023-12-25")
        self.assertIn("성탄절", body)
        self.assertIn("휴일", body)
        self.assertIn("sun", classes)  # holidays are red like Sundays
        r = self.client.get(self.base + "week/2023-11-20")
        self.assertIn("전체 회의 10시", r.text)
        self.assertIn("치과 예약", r.text)
        r = self.client.get(self.base + "day/2023-11-20")
        self.assertIn("전체 회의 10시", r.text)
        self.assertIn("공용 메모", r.text)

    def test_week_view(self):
        r = self.client.get(self.base + "week/" + TODAY)
        self.assertEqual(r.code, 200)
        days = re.findall(r'<h2><a href="[^"]*day/(\d{4}-\d\d-\d\d)">', r.text)
        self.assertEqual(days, ["2023-11-%02d" % d for d in range(12, 19)])
        self.assertIn("2023-11-12 (일)", r.text)
        self.assertIn(self.base + "week/2023-11-08", r.text)
        self.assertIn(self.base + "week/2023-11-22", r.text)

    def test_prev_next_across_years_and_ends(self):
        r = self.client.get(self.base + "month/2023-12")
        self.assertIn(self.base + "month/2024-01", r.text)
        r = self.client.get(self.base + "month/2024-01")
        self.assertIn(self.base + "month/2023-12", r.text)
        r = self.client.get(self.base + "day/2024-01-01")
        self.assertIn(self.base + "day/2023-12-31", r.text)
        self.assertIn(self.base + "day/2024-01-02", r.text)
        r = self.client.get(self.base + "month/9999-11")
        self.assertEqual(r.code, 200)
        self.assertNotIn("month/9999-12", r.text)
        self.assertEqual(self.client.get(self.base + "month/9999-12").code, 400)
        self.assertEqual(self.client.get(self.base + "month/0001-01").code, 400)
        self.assertEqual(self.client.get(self.base + "week/0001-01-01").code, 400)

    def test_go_to_a_date(self):
        for view, target in (("day", "day/2024-02-29"), ("week", "week/2024-02-29"),
                             ("month", "month/2024-02")):
            r = self.client.get(self.base + "go?date=2024-02-29&view=" + view)
            self.assertEqual((r.code, r.header("location")), (303, self.base + target))

    def test_not_a_date(self):
        for path, text in (("month/2023-13", "없는 달입니다"), ("month/abc", "날짜가 아닙니다"),
                           ("month/23-1", "날짜가 아닙니다"), ("day/2023-02-30", "없는 날짜입니다"),
                           ("day/tomorrow", "날짜가 아닙니다"), ("week/2023-1-1", "날짜가 아닙니다"),
                           ("go?date=next+friday", "날짜가 아닙니다"),
                           ("export.ics?from=yesterday", "날짜가 아닙니다")):
            r = self.client.get(self.base + path)
            self.assertEqual(r.code, 400, path)
            self.assertIn(text, r.text, path)
            if text == "날짜가 아닙니다":
                self.assertIn("날짜는 2026-05-05처럼 씁니다", r.text, path)
        r = self.client.post(self.base + "day/2023-02-30", {"memo": "x"})
        self.assertEqual(r.code, 400)
        self.assertEqual(os.listdir(self.services.home.user_dir("alice")).count("cal"), 0)

    def test_no_session(self):
        anon = MailClient(self.services)
        self.assertEqual(anon.get(self.base).code, 303)
        self.assertEqual(anon.get(self.base + "export.ics").code, 303)
        self.assertEqual(anon.post(self.base + "day/" + TODAY, {"memo": "x"}).code, 403)


class MemoTests(CalendarTestCase):

    def test_write_and_remove_memo(self):
        r = self.client.get(self.base + "day/" + TODAY)
        self.assertEqual(r.code, 200)
        self.assertIn('action="%sday/%s"' % (self.base, TODAY), r.text)
        r = self.client.post(self.base + "day/" + TODAY, {"memo": "점심 약속\r\n12시"})
        self.assertEqual((r.code, r.header("location")),
                         (303, self.base + "day/%s?done=saved" % TODAY))
        path = os.path.join(self.services.home.user_dir("alice"), "cal", TODAY + ".txt")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "점심 약속\n12시\n")
        page = self.client.get(r.header("location"))
        self.assertIn("저장했습니다", page.text)
        self.assertIn("점심 약속", page.text)
        self.assertIn("점심 약속", self.client.get(self.base).text)
        r = self.client.post(self.base + "day/" + TODAY, {"memo": "  "})
        self.assertEqual(r.header("location"), self.base + "day/%s?done=deleted" % TODAY)
        self.assertFalse(os.path.exists(path))
        self.assertIn("webmail calendar memo saved: alice " + TODAY, self.log())

    def test_memo_too_long_keeps_the_text(self):
        r = self.client.post(self.base + "day/" + TODAY, {"memo": "가" * 10001})
        self.assertEqual(r.code, 400)
        self.assertIn("메모가 10000자보다 깁니다", r.text)
        self.assertIn("가" * 100, r.text)
        self.assertEqual(self.cal.memo("alice", TODAY), "")

    def test_urls_become_safe_links(self):
        memo = ('회의록 https://example.org/a?b=1&c=2 참고 <script>alert(1)</script> '
                'javascript:alert(2) "><img src=x onerror=alert(3)> http://x.test/"y"')
        self.cal.set_memo("alice", TODAY, memo)
        self.admin.set_memo(TODAY, "공지 https://notice.example.com/1")
        for path in ("", "week/" + TODAY, "day/" + TODAY):
            text = self.client.get(self.base + path).text
            self.assertIn('<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer '
                          'nofollow" target="_blank">https://example.org/a?b=1&amp;c=2</a>', text)
            self.assertIn('<a href="https://notice.example.com/1"', text)
            self.assertIn('<a href="http://x.test/"', text)  # the quote ends the link
            self.assertNotIn("<script>alert", text)
            self.assertNotIn("<img src=x", text)
            self.assertNotIn('href="javascript', text)
            self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", text)

    def test_csrf_refused(self):
        r = self.client.post(self.base + "day/" + TODAY, {"memo": "x"}, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.cal.memo("alice", TODAY), "")

    def test_other_users_memos_not_shown(self):
        self.cal.set_memo("bob", TODAY, "bob의 비밀")
        for path in ("", "week/" + TODAY, "day/" + TODAY, "export.ics"):
            self.assertNotIn("bob의 비밀", self.client.get(self.base + path).body.decode())
        self.client.post(self.base + "day/" + TODAY, {"memo": "alice 메모"})
        self.assertEqual(self.cal.memo("bob", TODAY), "bob의 비밀")
        self.assertEqual(self.cal.memo("alice", TODAY), "alice 메모")


class ExportTests(CalendarTestCase):

    def test_ics(self):
        self.cal.set_memo("alice", "2023-11-20", "치과, 예약; 3시")
        self.cal.set_memo("alice", "2024-01-05", "새해 계획")
        self.admin.set_memo("2023-11-21", "전체 회의")
        self.admin.set_special("2023-12-25", "성탄절", True)
        r = self.client.get(self.base + "export.ics")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.header("content-type"), "text/calendar; charset=utf-8")
        self.assertIn('filename="calendar.ics"', r.header("content-disposition"))
        text = r.body.decode("utf-8")
        self.assertTrue(text.startswith("BEGIN:VCALENDAR\r\n"))
        self.assertEqual(text.count("BEGIN:VEVENT"), 4)
        self.assertIn("SUMMARY:치과\\, 예약\\; 3시", text)
        self.assertIn("DTSTART;VALUE=DATE:20231225", text)
        self.assertIn("CATEGORIES:HOLIDAY", text)
        self.assertIn("DTSTAMP:20231114T221320Z", text)
        self.assertIn("@example.com", text)
        r = self.client.get(self.base + "export.ics?from=2023-11-01&to=2023-11-30")
        self.assertEqual(r.body.count(b"BEGIN:VEVENT"), 2)
        month = self.client.get(self.base + "month/2023-11").text
        self.assertIn("export.ics?from=2023-11-01&amp;to=2023-11-30", month)
        r = self.client.get(self.base + "export.ics?from=2023-12-01&to=2023-11-01")
        self.assertEqual(r.code, 400)
        self.assertIn("시작 날짜가 끝 날짜보다 뒤입니다", r.text)
