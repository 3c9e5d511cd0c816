# -*- test-case-name: tests.test_web_admin2_groups -*-
"""
Group operations (seed §8, SPEC A5) over L{zwms.store.groups.GroupStore}:
the same rules as L{zwms.admin.ops} (an AdminContext in, a WebMail log
line for each change, blocking: the web runs them in a thread).
"""

from dataclasses import dataclass, field

from zwms.admin import consoleops, ops
from zwms.errors import InvalidValue
from zwms.store.groups import GroupStore, join_path, split_path


def store(ctx):
    return GroupStore(ctx.home)


@dataclass
class GroupPage:
    """What the groups page shows."""
    current: str
    tree: list
    members: list                 # [(ID, upper, account exists)]
    users: object                 # consoleops.UserPage of all accounts
    where: dict = field(default_factory=dict)   # {ID: (group, upper)} of the page's users


def group_page(ctx, current="", page=1, query=""):
    """The tree, the current group's members and one page of all accounts."""
    groups = store(ctx)
    current = join_path(split_path(current))
    tree = groups.tree()
    members = []
    if current:
        for aid, upper in groups.members(current):
            members.append((aid, upper, ctx.accounts.get(aid) is not None))
    users = consoleops.user_page(ctx, page=page, query=query)
    where = groups.memberships()
    shown = {aid for aid, _, _ in users.accounts}
    return GroupPage(current=current, tree=tree, members=members, users=users,
                     where={k: v for k, v in where.items() if k in shown})


def group_create(ctx, parent, name):
    path = store(ctx).create(parent, name)
    ctx.log("group create %s" % path)
    return path


def group_rename(ctx, path, new_name=None, new_parent=None):
    new = store(ctx).rename(path, new_name, new_parent)
    ctx.log("group rename %s -> %s" % (join_path(split_path(path)), new))
    return new


def group_delete(ctx, path):
    released = store(ctx).delete(path)
    ctx.log("group delete %s (%d accounts released)" % (join_path(split_path(path)),
                                                         len(released)))
    return released


def group_join(ctx, path, aids):
    """Put existing accounts into a group (§8: their upper group is cleared)."""
    for aid in aids:
        ops.get_account(ctx, aid)
    done = store(ctx).join(path, aids)
    ctx.log("group %s: joined %s" % (join_path(split_path(path)), ",".join(done)))
    return done


def group_release(ctx, aids):
    done = store(ctx).release(aids)
    if done:
        ctx.log("group release %s" % ",".join(done))
    return done


def group_set_upper(ctx, aid, upper):
    group, upper = store(ctx).set_upper(aid, upper)
    ctx.log("group upper %s: %s (in %s)" % (aid, upper or "-", group))
    return upper


def group_of(ctx, aid):
    """(group, upper) of an account or None."""
    return store(ctx).group_of(aid)


def check_group(ctx, path):
    """The normalised path of an existing group.  @raise InvalidValue"""
    path = join_path(split_path(path))
    if path and not store(ctx).exists(path):
        raise InvalidValue("no group %r" % path)
    return path
