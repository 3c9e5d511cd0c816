"""
The middle-administrator rules (SPEC A7, seed §24) of zwms.admin.midadmin,
over the file account store: who is one, which accounts it sees, what it may
create and change, and its group's webmail logo and footer.
"""

import os

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from tests.webclient import web_services
from zwms.admin import midadmin, ops
from zwms.admin.consoleops import FormErrors

MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
GIF = b"GIF89a" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


class MidadminTestCase(SynchronousTestCase):
    """Group 3: the middle admin "mid" (2 accounts, 100 MB) and "g3a"; group 4: "g4a"."""

    def setUp(self):
        clock = task.Clock()
        clock.advance(1_700_000_000)
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.services = web_services(self.root, clock=clock)
        self.accounts = self.services.accounts
        self.accounts.add("mid", "midpw1", boardgroup=3, midadmin=True, midmaxaccounts=2,
                          midcapacity=100 * MB, address="boss@cust.example")
        self.accounts.add("g3a", "pw3", boardgroup=3, capacity=10 * MB)
        self.accounts.add("g4a", "pw4", boardgroup=4, capacity=10 * MB)
        self.accounts.add("plain", "pw0")
        self.ctx = ops.context_from_services(self.services, None, "test")
        self.scope = midadmin.scope_of(self.accounts, "mid")

    def assertOut(self, f, *args, **kwargs):
        e = self.assertRaises(midadmin.OutOfScope, f, *args, **kwargs)
        return str(e)


class ScopeTests(MidadminTestCase):

    def test_scope_read_from_the_account(self):
        s = self.scope
        self.assertEqual((s.login, s.group, s.maxaccounts, s.capacity, s.domain),
                         ("mid", 3, 2, 100 * MB, "cust.example"))

    def test_not_a_middle_admin(self):
        for aid in ("g3a", "plain", "nobody", "../x"):
            self.assertOut(midadmin.scope_of, self.accounts, aid)

    def test_locked_inactive_or_groupless_middle_admin(self):
        self.accounts.set("mid", "locked", "1")
        self.assertOut(midadmin.scope_of, self.accounts, "mid")
        self.accounts.set("mid", "locked", "0")
        self.accounts.set("mid", "active", "0")
        self.assertOut(midadmin.scope_of, self.accounts, "mid")
        self.accounts.set("mid", "active", "1")
        self.accounts.set("mid", "boardgroup", "0")
        self.assertEqual(self.assertOut(midadmin.scope_of, self.accounts, "mid"),
                         midadmin.NO_GROUP)

    def test_check_login(self):
        self.assertEqual(midadmin.check_login(self.accounts, "MID", "midpw1").group, 3)
        self.assertIsNone(midadmin.check_login(self.accounts, "mid", "wrong"))
        self.assertIsNone(midadmin.check_login(self.accounts, "mid", ""))
        self.assertIsNone(midadmin.check_login(self.accounts, "g3a", "pw3"))
        self.assertIsNone(midadmin.check_login(self.accounts, "../etc", "x"))


class ListTests(MidadminTestCase):

    def test_only_the_group(self):
        page = midadmin.user_page(self.ctx, self.scope)
        self.assertEqual([aid for aid, _, _ in page.accounts], ["g3a", "mid"])
        self.assertEqual(page.total, 2)

    def test_index_follows_changes(self):
        self.patch(midadmin, "GROUP_REFRESH", 0)
        self.assertEqual(midadmin.group_ids(self.ctx, 3), ["g3a", "mid"])
        self.accounts.set("g4a", "boardgroup", "3")
        self.accounts.add("g3b", "pw", boardgroup=3)
        self.assertEqual(midadmin.group_ids(self.ctx, 3), ["g3a", "g3b", "g4a", "mid"])
        self.accounts.delete("g3a")
        self.assertEqual(midadmin.group_ids(self.ctx, 3), ["g3b", "g4a", "mid"])
        # A hand edit (no change hint) is read at the next refresh too.
        with open(os.path.join(self.services.home.userd, "g3b", "account.cfg"), "a") as f:
            f.write("BoardGroup = 07\n")
        self.patch(midadmin, "GROUP_RECHECK", 0)
        self.assertEqual(midadmin.group_ids(self.ctx, 3), ["g4a", "mid"])
        self.assertEqual(midadmin.group_ids(self.ctx, 7), ["g3b"])

    def test_stale_index_rows_are_dropped_own_changes_shown_at_once(self):
        self.patch(midadmin, "GROUP_REFRESH", 3600)
        midadmin.group_ids(self.ctx, 3)
        # Moved out by the administrator: the index has not seen it yet,
        # but the row is re-read and left out.
        self.accounts.set("g3a", "boardgroup", "9")
        self.assertIn("g3a", midadmin.group_ids(self.ctx, 3))
        page = midadmin.user_page(self.ctx, self.scope)
        self.assertEqual([aid for aid, _, _ in page.accounts], ["mid"])
        self.assertOut(midadmin.check_account, self.ctx, self.scope, "g3a")
        # The middle admin's own creations and deletions show at once.
        midadmin.user_add(self.ctx, self.scope, "new1", "pw", capacity="1M")
        self.assertIn("new1", midadmin.group_ids(self.ctx, 3))
        midadmin.user_delete(self.ctx, self.scope, "new1")
        self.assertNotIn("new1", midadmin.group_ids(self.ctx, 3))

    def test_query_and_paging(self):
        for n in range(5):
            self.accounts.add("g3x%d" % n, "pw", boardgroup=3)
        page = midadmin.user_page(self.ctx, self.scope, page=2, perpage=2, query="g3x")
        self.assertEqual([aid for aid, _, _ in page.accounts], ["g3x2", "g3x3"])
        self.assertEqual((page.total, page.pages), (5, 3))


class AccountScopeTests(MidadminTestCase):

    def test_foreign_and_missing_ids_answer_alike(self):
        foreign = self.assertOut(midadmin.check_account, self.ctx, self.scope, "g4a")
        missing = self.assertOut(midadmin.check_account, self.ctx, self.scope, "nosuch")
        self.assertEqual(foreign, missing)
        self.assertOut(midadmin.check_account, self.ctx, self.scope, "plain")
        self.assertOut(midadmin.check_account, self.ctx, self.scope, "../g4a")

    def test_other_middle_admin_of_the_group(self):
        self.accounts.add("mid2", "pw", boardgroup=3, midadmin=True)
        self.assertOut(midadmin.check_account, self.ctx, self.scope, "mid2")
        self.assertOut(midadmin.user_delete, self.ctx, self.scope, "mid2")
        self.assertIsNotNone(self.accounts.get("mid2"))

    def test_own_account(self):
        self.assertEqual(midadmin.check_account(self.ctx, self.scope, "mid").id, "mid")
        self.assertOut(midadmin.check_account, self.ctx, self.scope, "mid", allow_self=False)
        self.assertOut(midadmin.user_delete, self.ctx, self.scope, "mid")
        self.assertIsNotNone(self.accounts.get("mid"))


class CreateTests(MidadminTestCase):

    def test_created_in_the_group(self):
        account = midadmin.user_add(self.ctx, self.scope, "new1", "pw", name="N",
                                    capacity="20M")
        self.assertEqual((account.boardgroup, account.capacity), (3, 20 * MB))
        self.assertEqual(self.accounts.get("new1").boardgroup, 3)

    def test_account_limit_own_account_not_counted(self):
        midadmin.user_add(self.ctx, self.scope, "new1", "pw", capacity="10M")
        e = self.assertRaises(FormErrors, midadmin.user_add, self.ctx, self.scope,
                              "new2", "pw", capacity="10M")
        self.assertEqual(e.errors, {"id": midadmin.ACCOUNTS_OVER})
        self.assertIsNone(self.accounts.get("new2"))

    def test_zero_limits_create_nothing(self):
        self.accounts.set("mid", "midmaxaccounts", "0")
        scope = midadmin.scope_of(self.accounts, "mid")
        self.assertRaises(FormErrors, midadmin.user_add, self.ctx, scope, "new1", "pw",
                          capacity="1M")
        self.accounts.set("mid", "midmaxaccounts", "5")
        self.accounts.set("mid", "midcapacity", "0")
        scope = midadmin.scope_of(self.accounts, "mid")
        self.assertRaises(FormErrors, midadmin.user_add, self.ctx, scope, "new1", "pw",
                          capacity="1M")
        self.assertIsNone(self.accounts.get("new1"))

    def test_capacity_rules(self):
        for capacity in ("0", "91M", "lots"):
            e = self.assertRaises(FormErrors, midadmin.user_add, self.ctx, self.scope,
                                  "new1", "pw", capacity=capacity)
            self.assertIn("capacity", e.errors)
        self.assertIsNone(self.accounts.get("new1"))
        midadmin.user_add(self.ctx, self.scope, "new1", "pw", capacity="90M")

    def test_address_only_in_own_domain(self):
        e = self.assertRaises(FormErrors, midadmin.user_add, self.ctx, self.scope, "new1",
                              "pw", capacity="1M", address="ceo@other.example")
        self.assertEqual(e.errors, {"address": midadmin.OTHER_DOMAIN})
        self.assertIsNone(self.accounts.get("new1"))
        account = midadmin.user_add(self.ctx, self.scope, "new1", "pw", capacity="1M",
                                    address="Sales@Cust.Example")
        self.assertEqual(account.address, "sales@cust.example")

    def test_empty_password_and_bad_id(self):
        self.assertRaises(FormErrors, midadmin.user_add, self.ctx, self.scope, "new1", "",
                          capacity="1M")
        self.assertRaises(Exception, midadmin.user_add, self.ctx, self.scope, "../x", "pw",
                          capacity="1M")


class UpdateTests(MidadminTestCase):

    def test_ordinary_fields(self):
        midadmin.user_update(self.ctx, self.scope, "g3a", {"name": "Kim", "locked": "1"},
                             password="n3w")
        account = self.accounts.get("g3a")
        self.assertEqual((account.name, account.locked), ("Kim", True))
        self.assertTrue(self.accounts.check_password("g3a", "n3w"))

    def test_root_fields_refused(self):
        for key, value in (("midadmin", "1"), ("boardgroup", "4"), ("midcapacity", "1G"),
                           ("midmaxaccounts", "99"), ("boards", "other"),
                           ("bulksend", "1")):
            self.assertEqual(
                self.assertOut(midadmin.user_update, self.ctx, self.scope, "g3a",
                               {key: value, "name": "X"}), midadmin.ROOT_ONLY, key)
        account = self.accounts.get("g3a")
        self.assertEqual((account.name, account.boardgroup, account.midadmin), ("", 3, False))
        # Sent unchanged (the group's own number): no refusal.
        midadmin.user_update(self.ctx, self.scope, "g3a", {"boardgroup": "3", "midadmin": "0"})

    def test_foreign_account(self):
        self.assertOut(midadmin.user_update, self.ctx, self.scope, "g4a", {"name": "X"})
        self.assertEqual(self.accounts.get("g4a").name, "")

    def test_capacity_within_the_limit(self):
        midadmin.user_update(self.ctx, self.scope, "g3a", {"capacity": "100M"})
        e = self.assertRaises(FormErrors, midadmin.user_update, self.ctx, self.scope, "g3a",
                              {"capacity": "101M"})
        self.assertEqual(e.errors, {"capacity": midadmin.CAPACITY_OVER})
        self.assertRaises(FormErrors, midadmin.user_update, self.ctx, self.scope, "g3a",
                          {"capacity": "0"})
        self.assertEqual(self.accounts.get("g3a").capacity, 100 * MB)

    def test_own_capacity_and_flags(self):
        self.assertEqual(self.assertOut(midadmin.user_update, self.ctx, self.scope, "mid",
                                        {"capacity": "1G"}), midadmin.OWN_CAPACITY)
        self.assertOut(midadmin.user_update, self.ctx, self.scope, "mid",
                       {"midcapacity": "10G"})
        midadmin.user_update(self.ctx, self.scope, "mid", {"name": "Boss"})
        self.assertEqual(self.accounts.get("mid").name, "Boss")

    def test_address_domain(self):
        self.assertRaises(FormErrors, midadmin.user_update, self.ctx, self.scope, "g3a",
                          {"address": "postmaster@main.example"})
        midadmin.user_update(self.ctx, self.scope, "g3a", {"address": "a@cust.example"})
        self.assertEqual(self.accounts.get("g3a").address, "a@cust.example")


class BulkAndDeleteTests(MidadminTestCase):

    def test_bulk_with_a_foreign_id_changes_nothing(self):
        self.assertOut(midadmin.user_bulk, self.ctx, self.scope, ["g3a", "g4a"],
                       {"locked": "1"})
        self.assertFalse(self.accounts.get("g3a").locked)
        self.assertFalse(self.accounts.get("g4a").locked)
        self.assertOut(midadmin.user_bulk, self.ctx, self.scope, ["g3a", "mid"],
                       {"locked": "1"})
        self.assertFalse(self.accounts.get("mid").locked)

    def test_bulk_in_scope(self):
        self.accounts.add("g3b", "pw", boardgroup=3, capacity=MB)
        done, failed = midadmin.user_bulk(self.ctx, self.scope, ["g3a", "g3b"],
                                          {"locked": "1", "capacity": "50M"})
        self.assertEqual((done, failed), (["g3a", "g3b"], []))
        self.assertRaises(FormErrors, midadmin.user_bulk, self.ctx, self.scope,
                          ["g3a", "g3b"], {"capacity": "51M"})
        self.assertOut(midadmin.user_bulk, self.ctx, self.scope, ["g3a"], {"boardgroup": "4"})
        self.assertEqual(self.accounts.get("g3a").boardgroup, 3)

    def test_delete(self):
        self.assertOut(midadmin.user_delete, self.ctx, self.scope, "g4a")
        self.assertIsNotNone(self.accounts.get("g4a"))
        midadmin.user_delete(self.ctx, self.scope, "g3a")
        self.assertIsNone(self.accounts.get("g3a"))

    def test_zip_goes_to_zip_mid(self):
        path, _ = midadmin.account_action(self.ctx, self.scope, "g3a", "zip")
        self.assertIn(os.sep + "mid" + os.sep, path)
        self.assertOut(midadmin.account_action, self.ctx, self.scope, "g4a", "zip")


class BrandTests(MidadminTestCase):

    def test_logo_formats(self):
        cache = midadmin.BrandCache(self.services.home)
        self.assertEqual(cache.get(3), midadmin.NO_BRAND)
        self.assertEqual(midadmin.logo_set(self.ctx, self.scope, PNG), "png")
        self.assertTrue(cache.get(3).logo.startswith("data:image/png;base64,"))
        self.assertEqual(midadmin.logo_set(self.ctx, self.scope, GIF), "gif")
        self.assertTrue(cache.get(3).logo.startswith("data:image/gif;base64,"))
        folder = midadmin.brand_folder(self.services.home, 3)
        self.assertEqual(sorted(os.listdir(folder)), ["logo.gif"])
        self.assertEqual(midadmin.logo_set(self.ctx, self.scope, JPEG), "jpg")
        self.assertEqual(cache.get(4), midadmin.NO_BRAND)
        midadmin.logo_delete(self.ctx, self.scope)
        self.assertEqual(cache.get(3).logo, "")

    def test_bad_logos_refused(self):
        for data, message in ((SVG, midadmin.LOGO_TYPE), (b"", midadmin.LOGO_EMPTY),
                              (b"<html>", midadmin.LOGO_TYPE),
                              (PNG + b"\x00" * midadmin.MAX_LOGO, midadmin.LOGO_LARGE)):
            e = self.assertRaises(Exception, midadmin.logo_set, self.ctx, self.scope, data)
            self.assertEqual(str(e), message)
        self.assertFalse(os.path.exists(midadmin.brand_folder(self.services.home, 3)))

    def test_footer(self):
        cache = midadmin.BrandCache(self.services.home)
        midadmin.footer_set(self.ctx, self.scope, " (주)고객사 <b>Tel</b>\r\n02-123 ")
        self.assertEqual(midadmin.footer_get(self.ctx, self.scope), "(주)고객사 <b>Tel</b>\n02-123")
        self.assertEqual(cache.get(3).footer, "(주)고객사 <b>Tel</b>\n02-123")
        self.assertRaises(Exception, midadmin.footer_set, self.ctx, self.scope, "a\x00b")
        self.assertRaises(Exception, midadmin.footer_set, self.ctx, self.scope, "x" * 1001)
        midadmin.footer_set(self.ctx, self.scope, "")
        self.assertEqual(cache.get(3).footer, "")

    def test_group_zero_has_no_brand(self):
        cache = midadmin.BrandCache(self.services.home)
        for group in (0, -1, "x", None):
            self.assertEqual(cache.get(group), midadmin.NO_BRAND)
