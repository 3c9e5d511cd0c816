"""
Folders (SPEC W2, issue 6): user folders (create, rename, delete with
names checked), several messages moved / deleted / marked at once, empty
Trash, search by sender, subject and date range, sorting, the block button
(SPEC P6), dates in the user's time zone.
"""

import re

from tests.test_webmail_session import WebmailTestCase
from zwms.store.rules import FilterEntry, RulesStore
from zwms.web.webmail import listing


def mail(subject, sender="Kim <kim@remote.example>", date="Mon, 01 Jan 2024 00:30:00 +0000",
         body=b"body"):
    return (("From: %s\r\nTo: alice@example.com\r\nSubject: %s\r\nDate: %s\r\n\r\n"
             % (sender, subject, date)).encode("utf-8") + body + b"\r\n")


class UserFolderTests(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.client.login()

    def folders(self):
        return self.services.mail.folders("alice")

    def test_create_rename_delete(self):
        r = self.client.post("/mail/folders/%s/create" % self.client.rand, {"name": "회사 일"})
        self.assertEqual(r.code, 303)
        self.assertIn("회사 일", self.folders())
        page = self.client.box("folder/Inbox").text
        self.assertIn("/folder/%ED%9A%8C%EC%82%AC%20%EC%9D%BC", page)   # in the folder bar
        self.assertEqual(self.client.box("folder/%ED%9A%8C%EC%82%AC%20%EC%9D%BC").code, 200)
        name = self.deliver(mail("hello"))
        self.successResultOf(self.services.mail.move("alice", "Inbox", [name], "회사 일"))
        r = self.client.post("/mail/folders/%s/rename/%s" % (self.client.rand,
                                                            "%ED%9A%8C%EC%82%AC%20%EC%9D%BC"),
                             {"name": "Work"})
        self.assertEqual(r.code, 303)
        self.assertEqual(self.folders()[5:], ["Work"])
        self.assertEqual([i.name for i in self.services.mail.messages("alice", "Work")], [name])
        # Deleting a folder sends its messages to Trash.
        r = self.client.post("/mail/folders/%s/delete/Work" % self.client.rand)
        self.assertEqual(r.code, 303)
        self.assertEqual(self.folders()[5:], [])
        self.assertEqual([i.name for i in self.services.mail.messages("alice", "Trash")], [name])
        self.assertIn("webmail folder deleted: alice Work (1 messages to Trash)", self.log())

    def test_bad_names_refused(self):
        for bad in ("", "Inbox", "trash", ".x", "a/b", "a\\b", "x\x01", "x" * 65):
            r = self.client.post("/mail/folders/%s/create" % self.client.rand, {"name": bad})
            self.assertEqual(r.code, 400, bad)
            self.assertIn('class="error"', r.text)
        self.assertEqual(self.folders()[5:], [])
        self.client.post("/mail/folders/%s/create" % self.client.rand, {"name": "A"})
        r = self.client.post("/mail/folders/%s/create" % self.client.rand, {"name": "A"})
        self.assertEqual(r.code, 400)
        r = self.client.post("/mail/folders/%s/rename/A" % self.client.rand, {"name": "Spam"})
        self.assertEqual(r.code, 400)

    def test_standard_folders_cannot_be_renamed_or_deleted(self):
        self.deliver(mail("x"))
        for path in ("rename/Inbox", "delete/Trash"):
            r = self.client.post("/mail/folders/%s/%s" % (self.client.rand, path), {"name": "X"})
            self.assertEqual(r.code, 400, path)
        r = self.client.post("/mail/folders/%s/delete/Nope" % self.client.rand)
        self.assertEqual(r.code, 404)
        self.assertEqual(len(self.services.mail.messages("alice")), 1)

    def test_unknown_folder_is_404_everywhere(self):
        self.assertEqual(self.client.box("folder/Nope").code, 404)
        self.assertEqual(self.client.box("folder/..").code, 404)
        r = self.client.post("/mail/folders/%s/bulk/Inbox" % self.client.rand,
                             {"action": "move", "target": "Nope", "name": "x"})
        self.assertEqual(r.code, 404)


class BulkTests(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.names = [self.deliver(mail("m%d" % i)) for i in range(4)]
        self.client.login()

    def bulk(self, folder, action, names, **extra):
        data = dict(extra, action=action, name=names)
        return self.client.post("/mail/folders/%s/bulk/%s" % (self.client.rand, folder), data)

    def inbox(self):
        return [i.name for i in self.services.mail.messages("alice")]

    def test_move_several(self):
        self.successResultOf(self.services.mail.create_folder("alice", "Old"))
        r = self.bulk("Inbox", "move", self.names[:2], target="Old")
        self.assertEqual(r.code, 303)
        self.assertIn("done=moved", r.header("location"))
        self.assertEqual(self.inbox(), self.names[2:])
        self.assertEqual([i.name for i in self.services.mail.messages("alice", "Old")],
                         self.names[:2])

    def test_delete_several_to_trash_then_empty(self):
        self.assertEqual(self.bulk("Inbox", "delete", self.names[1:3]).code, 303)
        self.assertEqual(self.inbox(), [self.names[0], self.names[3]])
        trash = self.client.box("folder/Trash").text
        self.assertIn("/mail/folders/%s/empty/Trash" % self.client.rand, trash)
        self.assertEqual(self.bulk("Trash", "delete", [self.names[1]]).code, 303)
        self.assertEqual([i.name for i in self.services.mail.messages("alice", "Trash")],
                         [self.names[2]])
        r = self.client.post("/mail/folders/%s/empty/Trash" % self.client.rand)
        self.assertEqual(r.code, 303)
        self.assertEqual(self.services.mail.messages("alice", "Trash"), [])
        self.assertEqual(self.client.post("/mail/folders/%s/empty/Inbox"
                                          % self.client.rand).code, 400)
        self.assertEqual(len(self.inbox()), 2)

    def test_mark_read_unread(self):
        self.bulk("Inbox", "read", self.names[:3])
        self.assertEqual(self.services.mail.counts("alice")["Inbox"], (4, 1))
        self.bulk("Inbox", "unread", self.names[:1])
        self.assertEqual(self.services.mail.counts("alice")["Inbox"], (4, 2))

    def test_nothing_selected_or_no_action(self):
        self.assertEqual(self.bulk("Inbox", "delete", []).code, 400)
        self.assertEqual(self.bulk("Inbox", "explode", self.names).code, 400)
        self.assertEqual(len(self.inbox()), 4)

    def test_list_has_checkboxes_and_targets(self):
        page = self.client.box("folder/Inbox").text
        self.assertEqual(len(re.findall(r'type="checkbox" name="name"', page)), 4)
        self.assertIn('<option value="Trash">', page)
        self.assertNotIn('<option value="Inbox">', page)


class SearchSortTests(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.deliver(mail("=?UTF-8?B?7ZqM7J2Y?= notes", "Lee <lee@a.example>",
                          "Tue, 02 Jan 2024 10:00:00 +0900", b"x" * 500))
        self.deliver(mail("Budget", "Park <park@b.example>"))
        self.deliver(mail("lunch", "Kim <kim@remote.example>", body=b"x" * 100))
        self.client.login()

    def subjects(self, query):
        text = self.client.box("folder/Inbox?" + query).text
        return re.findall(r'class="subject"><a [^>]*>([^<]*)<', text)

    def test_search_sender_and_subject(self):
        self.assertEqual(self.subjects("from=park"), ["Budget"])
        self.assertEqual(self.subjects("from=A.EXAMPLE"), ["회의 notes"])
        self.assertEqual(self.subjects("subject=회의"), ["회의 notes"])
        self.assertEqual(self.subjects("subject=zzz"), [])
        self.assertIn('class="empty"', self.client.box("folder/Inbox?subject=zzz").text)

    def test_sorting(self):
        self.assertEqual(self.subjects(""), ["lunch", "Budget", "회의 notes"])
        self.assertEqual(self.subjects("sort=date&dir=asc"), ["회의 notes", "Budget", "lunch"])
        self.assertEqual(self.subjects("sort=size"), ["회의 notes", "lunch", "Budget"])
        self.assertEqual(self.subjects("sort=subject&dir=asc"),
                         ["Budget", "lunch", "회의 notes"])
        # Kim, Lee, Park
        self.assertEqual(self.subjects("sort=sender&dir=asc"), ["lunch", "회의 notes", "Budget"])
        self.assertEqual(self.subjects("sort=nonsense"), ["lunch", "Budget", "회의 notes"])

    def test_date_range_is_in_the_index(self):
        # The range is on the arrival time, by the user's calendar (Asia/Seoul).
        import datetime
        import zoneinfo
        received = self.services.mail.messages("alice")[0].received
        day = datetime.datetime.fromtimestamp(received, zoneinfo.ZoneInfo("Asia/Seoul")).date()
        before, after = day - datetime.timedelta(days=1), day + datetime.timedelta(days=1)
        self.assertEqual(len(self.subjects("since=%s&until=%s" % (day, day))), 3)
        self.assertEqual(self.subjects("since=%s" % after), [])
        self.assertEqual(self.subjects("until=%s" % before), [])
        self.assertEqual(len(self.subjects("since=bogus")), 3)

    def test_scan_is_bounded(self):
        self.patch(listing, "SCAN_LIMIT", 2)
        text = self.client.box("folder/Inbox?subject=notes").text
        self.assertEqual(re.findall(r'class="subject"><a [^>]*>([^<]*)<', text), [])
        self.assertIn("2", re.search(r'<p class="note">([^<]*)</p>', text).group(1))

    def test_paging_keeps_the_search(self):
        self.services.settings._values["PERPAGE"] = 1
        text = self.client.box("folder/Inbox?subject=u").text
        self.assertIn("1 / 2", text)
        self.assertIn("subject=u", text)


class TimeZoneTests(WebmailTestCase):

    def test_dates_in_the_users_zone(self):
        name = self.deliver(mail("t", date="Mon, 01 Jan 2024 00:30:00 +0000"))
        self.client.login()
        self.assertIn("2024-01-01 09:30", self.client.box("folder/Inbox").text)
        self.assertIn("2024-01-01 09:30 KST", self.client.box("read/Inbox/" + name).text)
        r = self.client.post("/mail/settings/%s/save" % self.client.rand,
                             {"name": "Alice", "signature": "", "lang": "en",
                              "tz": "Europe/Paris"})
        self.assertEqual(r.code, 303)
        self.assertIn("2024-01-01 01:30", self.client.box("folder/Inbox").text)
        r = self.client.post("/mail/settings/%s/save" % self.client.rand,
                             {"name": "Alice", "signature": "", "lang": "en",
                              "tz": "Mars/Olympus"})
        self.assertEqual(r.code, 400)
        self.assertIn("2024-01-01 01:30", self.client.box("folder/Inbox").text)


class BlockTests(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.client.login()

    def rules(self):
        # Another instance, as the receive policy has: it sees the webmail's writes.
        return RulesStore(self.services.home).get("alice")

    def test_block_registers_sender_and_subject_and_moves_to_spam(self):
        name = self.deliver(mail("=?UTF-8?B?6rSR6rOg?= offer", "Spam <Spammer@Bad.example>"))
        self.assertIn("/block/Inbox/%s" % name, self.client.box("read/Inbox/" + name).text)
        r = self.client.post("/mail/box/%s/block/Inbox/%s" % (self.client.rand, name))
        self.assertEqual(r.code, 303)
        self.assertIn("done=blocked", r.header("location"))
        self.assertEqual(self.rules().spam_filter,
                         (FilterEntry("sender", "spammer@bad.example"),
                          FilterEntry("subject", "광고 offer")))
        self.assertEqual([i.name for i in self.services.mail.messages("alice", "Spam")], [name])
        self.assertIn("webmail block: alice sender spammer@bad.example subject '광고 offer'",
                      self.log())
        # The spam filter page lists them, and one can be removed.
        page = self.client.get("/mail/filters/%s/" % self.client.rand).text
        self.assertIn("spammer@bad.example", page)
        r = self.client.post("/mail/filters/%s/spam/remove" % self.client.rand,
                             {"field": "subject", "pattern": "광고 offer"})
        self.assertEqual(r.code, 303)
        self.assertEqual(self.rules().spam_filter, (FilterEntry("sender", "spammer@bad.example"),))

    def test_block_with_a_broken_sender_blocks_the_subject(self):
        name = self.deliver(mail("hello", "not an address"))
        r = self.client.post("/mail/box/%s/block/Inbox/%s" % (self.client.rand, name))
        self.assertEqual(r.code, 303)
        self.assertEqual(self.rules().spam_filter, (FilterEntry("subject", "hello"),))

    def test_block_in_spam_stays(self):
        name = self.deliver(mail("x", "a@b.example"), folder="Spam")
        r = self.client.post("/mail/box/%s/block/Spam/%s" % (self.client.rand, name))
        self.assertIn("/read/Spam/%s?done=blocked" % name, r.header("location"))
        self.assertIn("스팸필터에 등록했습니다", self.client.get(r.header("location")).text)

    def test_nothing_to_block(self):
        name = self.deliver(b"X-Nothing: 1\r\n\r\nbody\r\n")
        r = self.client.post("/mail/box/%s/block/Inbox/%s" % (self.client.rand, name))
        self.assertEqual(r.code, 400)
        self.assertEqual(self.rules().spam_filter, ())


class ListingCostTests(WebmailTestCase):
    """
    What one list page reads (issue 6 speed): the page's messages only,
    their header block only, each once while cached; no folder counts.
    """

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.heads = []
        mail = self.services.mail
        real = mail.head

        def head(account_id, folder, name, limit=65536):
            self.heads.append((folder, name, limit))
            return real(account_id, folder, name, limit)
        self.patch(mail, "head", head)

    def page(self, folder="Inbox", offset=0, limit=100, **query):
        return listing.listing(self.services.mail, "alice", folder, listing.Query(**query),
                               offset, limit)

    def test_only_the_page_is_read_and_then_cached(self):
        names = [self.deliver(mail("m%d" % i)) for i in range(250)]
        self.patch(self.services.mail, "counts", lambda *a: self.fail("counts asked"))
        result = self.page(limit=100)
        self.assertEqual(result.total, 250)
        self.assertEqual([info.name for info, _ in result.rows], names[::-1][:100])
        self.assertEqual(result.rows[0][1].subject, "m249")
        self.assertEqual(len(self.heads), 100)
        self.assertEqual({limit for _, _, limit in self.heads}, {listing.HEAD_FIRST})
        # The same page again, and page 2: only page 2's messages are read.
        self.page(limit=100)
        self.assertEqual(len(self.heads), 100)
        second = self.page(offset=100, limit=100)
        self.assertEqual(second.rows[0][1].subject, "m149")
        self.assertEqual(len(self.heads), 200)

    def test_a_long_header_block_is_read_further(self):
        received = b"".join(b"Received: from relay%d.example by mx.example; "
                            b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i for i in range(200))
        self.assertGreater(len(received), listing.HEAD_FIRST)
        name = self.deliver(received + mail("=?UTF-8?B?64qm7J2A?= subject", "Late <l@x.example>"))
        [(info, summary)] = self.page().rows
        self.assertEqual(info.name, name)
        self.assertEqual((summary.subject, summary.sender, summary.sender_address),
                         ("늦은 subject", "Late", "l@x.example"))
        self.assertEqual([limit for _, _, limit in self.heads],
                         [listing.HEAD_FIRST, listing.HEAD_BYTES])

    def test_a_moved_message_is_listed_in_its_new_folder(self):
        name = self.deliver(mail("moving"))
        self.page()
        self.successResultOf(self.services.mail.move("alice", "Inbox", [name], "Trash"))
        [(info, summary)] = self.page("Trash").rows
        self.assertEqual((info.name, summary.subject), (name, "moving"))
        self.assertEqual(self.page().rows, [])

    def test_caches_are_per_store(self):
        # The memory store names messages 1, 2, ...: another store, other
        # messages under the same names and sizes.
        first = self.services.mail
        self.deliver(mail("store one"))
        [(info1, _)] = self.page().rows
        WebmailTestCase.setUp(self)     # a new home, a new store
        self.assertIsNot(self.services.mail, first)
        self.deliver(mail("store two"))
        [(info2, summary)] = self.page().rows
        self.assertEqual((info2.name, info2.size), (info1.name, info1.size))
        self.assertEqual(summary.subject, "store two")

    def test_the_cache_is_bounded(self):
        cache = listing.SummaryCache(size=2)
        for key in "abc":
            cache.put(key, key.upper())
        self.assertEqual(len(cache), 2)
        self.assertIsNone(cache.get("a"))
        cache.get("b")
        cache.put("d", "D")
        self.assertEqual((cache.get("b"), cache.get("c"), cache.get("d")), ("B", None, "D"))

    def test_row_summary_of_broken_headers(self):
        self.assertEqual(listing.row_summary(b"").subject, "")
        s = listing.row_summary(b"From: \xb1\xe8 <k@x.example>\r\nDate: not a date\r\n"
                                b"Subject: =?euc-kr?B?x9GxuQ==?=\r\n\r\nbody")
        self.assertEqual((s.subject, s.sender_address, s.date), ("한국", "k@x.example", None))
