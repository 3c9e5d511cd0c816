"""The admin user list: IDs listed once and cached until data/userd changes."""

import os

from twisted.trial.unittest import SynchronousTestCase

import tests.helpers  # noqa: F401 - cheap password hashing for the test
from zwms.admin import consoleops, ops


class UserPageTests(SynchronousTestCase):
    def test_cache_follows_added_and_deleted_accounts(self):
        home = os.path.abspath(self.mktemp())
        os.makedirs(home)
        ctx = ops.open_home(home)
        self.addCleanup(ctx.close)
        for aid in ("carol", "alice", "bob"):
            ops.user_add(ctx, aid, "pw")
        self.assertEqual([row[0] for row in consoleops.user_page(ctx).accounts],
                         ["alice", "bob", "carol"])
        calls = []
        real = os.listdir
        self.patch(os, "listdir", lambda p: calls.append(p) or real(p))
        consoleops.user_page(ctx)
        self.assertEqual(calls, [], "unchanged folder listed again")
        ops.user_add(ctx, "aaron", "pw")
        ops.user_del(ctx, "bob")
        self.assertEqual([row[0] for row in consoleops.user_page(ctx).accounts],
                         ["aaron", "alice", "carol"])
