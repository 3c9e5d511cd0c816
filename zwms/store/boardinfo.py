# -*- test-case-name: tests.test_boards_store -*-
"""
A board's info and who may do what on it (seed §14; SPEC W3, A6): the
checked name, the board.json values (L{Board}, L{make_board}) and the
access rules the user pages and the store's tests share.  No files here:
L{zwms.store.boards} stores what this module checks.
"""

import re
from dataclasses import dataclass

from zwms.errors import InvalidValue

#: A board name: a folder name and a URL segment, nothing to escape.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
#: Who may write: every account that sees the board, or its administrators.
WRITE_MODES = ("all", "admin")
MAX_TITLE = 100
MAX_DESCRIPTION = 2000


def check_name(name):
    """The board name, stripped and lower-cased; raise InvalidValue if bad."""
    text = str(name if name is not None else "").strip().lower()
    if not NAME_RE.match(text):
        raise InvalidValue("invalid board name %r: use a-z, 0-9, '_' and '-' (up to 32, "
                           "starting with a letter or digit)" % (name,))
    return text


def clean_text(value, limit, what, required=False):
    """A text field, stripped; no NUL, at most C{limit} characters.  @raise InvalidValue."""
    text = str(value if value is not None else "")
    if "\x00" in text:
        raise InvalidValue("the %s may not hold NUL characters" % what)
    text = text.strip()
    if required and not text:
        raise InvalidValue("the %s is empty" % what)
    if len(text) > limit:
        raise InvalidValue("the %s is longer than %d characters" % (what, limit))
    return text


def clean_line(value, limit, what, required=False):
    """A one-line text field (line breaks and tabs become spaces), as L{clean_text}."""
    return re.sub(r"[\r\n\t]+", " ", clean_text(value, limit, what, required))


def _number(value, what):
    try:
        n = int(str(value).strip() or "0")
    except (TypeError, ValueError):
        raise InvalidValue("the %s must be a number, got %r" % (what, value))
    if n < 0 or n > 2 ** 31:
        raise InvalidValue("the %s must be 0 or more" % what)
    return n


@dataclass(frozen=True)
class Board:
    """
    A board's info (board.json).

    @ivar group: the board group number (0 = every account).
    @ivar write: "all" (every account that sees it) or "admin".
    @ivar maxattach: largest attachment total of one post (KB; 0 = only
        the server's MAXMAILSIZE applies).
    """
    name: str
    title: str
    group: int = 0
    description: str = ""
    write: str = "all"
    maxattach: int = 0
    created: float = 0.0


def make_board(name, title, group=0, description="", write="all", maxattach=0, created=0.0):
    """A checked L{Board} from form-like values.  @raise InvalidValue."""
    write = str(write or "all").strip().lower()
    if write not in WRITE_MODES:
        raise InvalidValue("who may write must be one of %s" % ", ".join(WRITE_MODES))
    return Board(name=check_name(name), title=clean_line(title, MAX_TITLE, "title", True),
                 group=_number(group, "group number"),
                 description=clean_text(description, MAX_DESCRIPTION, "description"),
                 write=write, maxattach=_number(maxattach, "attachment size"),
                 created=float(created or 0))


# -- access (seed §14) -----------------------------------------------------------


def allowed_names(account):
    """The board names of the account's C{boards} field (commas or spaces)."""
    return {n.strip().lower() for n in re.split(r"[,\s]+", str(account.boards or "")) if n.strip()}


def can_see(board, account):
    """Seed §14: the group number is 0 or the account's, or the account names the board."""
    return (board.group == 0 or board.group == int(account.boardgroup or 0)
            or board.name in allowed_names(account))


def is_moderator(board, account, adminid=""):
    """
    The administrator's own account (env.cfg ADMINID) on every board, and a
    middle administrator (§24) on the boards of its own nonzero group number.
    """
    if adminid and account.id == str(adminid).strip().lower():
        return True
    return bool(account.midadmin) and board.group != 0 and board.group == int(
        account.boardgroup or 0)


def can_write(board, account, adminid=""):
    """May the account post (and reply) on a board it sees?"""
    if not can_see(board, account):
        return False
    return board.write == "all" or is_moderator(board, account, adminid)


def can_change(board, info, account, adminid=""):
    """May the account edit or delete this post: its author, or a moderator."""
    return can_see(board, account) and (info.author == account.id
                                        or is_moderator(board, account, adminid))
