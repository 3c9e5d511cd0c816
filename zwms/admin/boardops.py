# -*- test-case-name: tests.test_boards_store -*-
"""
Board administration (SPEC A6; seed §14, §25, §26), shared by the /admin
boards page and anything else that manages boards: list (brief or
detailed), create, edit, delete, backup of the board info file into
backup/board/NAME/, zip of the board's posts into ZIPDIR/root/, and
moderation (delete any post).

Each operation takes an L{zwms.admin.ops.AdminContext}, blocks (files,
SQLite, fsync: run it in a thread) and logs what it changed to the
WebMail channel, like the rest of L{zwms.admin.ops}.  Form values arrive
as text and are checked by the store (L{zwms.store.boards.make_board}).
"""

import os
from dataclasses import dataclass

from zwms.admin.archive import write_zip, zip_dir
from zwms.errors import InvalidValue
from zwms.fileio import atomic_write
from zwms.store.boardinfo import check_name
from zwms.store.boards import INFO_FILE, BoardStore

#: Fields of the board form.
FORM_FIELDS = ("title", "group", "description", "write", "maxattach")


@dataclass
class BoardRow:
    """A board of the list, with its counts (detailed view) or without (brief)."""
    board: object
    threads: int = 0
    posts: int = 0
    size: int = 0


def store(ctx):
    """The board store of the context's home."""
    return BoardStore(ctx.home)


def _values(values):
    return {k: values[k] for k in FORM_FIELDS if k in values}


def board_list(ctx, detailed=False):
    """Every board (L{BoardRow}s, by name); C{detailed} adds the post counts."""
    boards = store(ctx)
    rows = []
    for board in boards.boards():
        row = BoardRow(board)
        if detailed:
            row.threads, row.posts, row.size = boards.stats(board.name)
        rows.append(row)
    return rows


def board_get(ctx, name):
    """One board's info.  @raise NoSuchBoard."""
    return store(ctx).get(name)


def board_create(ctx, values):
    """
    Make a board from form values {name, title, group, description, write,
    maxattach}.  @raise InvalidValue, BoardExists.
    """
    board = store(ctx).create(values.get("name", ""), **_values(dict(
        {"title": ""}, **values)))
    ctx.log("board create %s (group %d, write %s)" % (board.name, board.group, board.write))
    return board


def board_edit(ctx, name, values):
    """Change a board's info from form values.  @raise InvalidValue, NoSuchBoard."""
    board = store(ctx).update(name, **_values(values))
    ctx.log("board edit %s (group %d, write %s)" % (board.name, board.group, board.write))
    return board


def board_delete(ctx, name):
    """Delete a board with all its posts."""
    store(ctx).delete(name)
    ctx.log("board delete %s" % check_name(name))


def board_backup(ctx, name):
    """
    Copy the board info file into backup/board/NAME/ (§25: "게시판정보파일을
    backup 폴더에 백업"), overwriting the previous backup.

    @return: (backup folder, names copied).
    """
    boards = store(ctx)
    source = os.path.join(boards.folder(name), INFO_FILE)
    boards.get(name)
    # A checked name: a plain join is safe, and backup/ may link to another disk.
    target = os.path.join(ctx.home.root, "backup", "board", check_name(name))
    with open(source, "rb") as f:
        atomic_write(os.path.join(target, INFO_FILE), f.read())
    ctx.log("board backup %s" % check_name(name))
    return target, [INFO_FILE]


def board_zip(ctx, name):
    """
    Zip the board's info and its post .eml files into a new
    ZIPDIR/root/board-NAME-YYYYmmdd-HHMMSS.zip (§26), written as the
    mailbox zips are (L{zwms.admin.archive.write_zip}).

    @return: (zip path, number of posts).
    """
    boards = store(ctx)
    name = boards.get(name).name

    def fill(add):
        for arcname, path in ([(INFO_FILE, os.path.join(boards.folder(name), INFO_FILE))]
                              + [("posts/" + os.path.basename(p), p)
                                 for _, p in boards.post_files(name)]):
            with open(path, "rb") as f:
                add(arcname, f.read(), os.stat(path).st_mtime)

    path, count = write_zip(zip_dir(ctx, "root"), "board-" + name, fill)
    count -= 1  # the info file is no post
    ctx.log("board zip %s: %d posts" % (name, count))
    return path, count


def board_reindex(ctx, name):
    """Rebuild a board's listing index from its .eml files.  @return: posts indexed."""
    count = store(ctx).reindex(name)
    ctx.log("board reindex %s: %d posts" % (check_name(name), count))
    return count


def post_page(ctx, name, page=1):
    """A page of a board's threads, for moderation (L{zwms.store.boards.PostPage})."""
    return store(ctx).page(name, page)


def admin_author(ctx, login):
    """
    Whom a post written in the console is by: the administrator's own
    account (env.cfg ADMINID, which then may change it from the webmail),
    else the console login when it is a valid ID, else "admin".
    """
    from zwms.account import check_id
    for candidate in (ctx.settings["ADMINID"], login):
        try:
            return check_id(candidate)
        except (InvalidValue, TypeError):
            continue
    return "admin"


def post_add(ctx, name, login, subject, body):
    """
    A post written in the console (a notice on an admin-only board, say):
    text only, by L{admin_author}.  @return: its L{PostInfo}.
    """
    author = admin_author(ctx, login)
    info = store(ctx).add(name, author, "", subject, body, domain=ctx.settings["DOMAIN"])
    ctx.log("board %s: post %d written by %s" % (check_name(name), info.number, author))
    return info


def post_delete(ctx, name, number):
    """Moderation: delete any post (a top post with its replies)."""
    gone = store(ctx).delete_post(name, number)
    ctx.log("board %s: post %s deleted (%d with replies)" % (check_name(name), number,
                                                              len(gone)))
    return gone
