# -*- test-case-name: tests.test_store -*-
"""
The SQLite index of the mail store (home.index_db): its schema and the
upgrades of an older index.db, the connection settings, the row types, and
the SQL that rebuilds or forgets one account's rows.  The .eml files stay
the truth (L{zwms.store.mailstore}); everything here can be rebuilt from them.
"""

import collections
import functools
import os
import sqlite3

from zwms.errors import InvalidValue

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    account  TEXT    NOT NULL,
    folder   TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    size     INTEGER NOT NULL,
    received REAL    NOT NULL,
    fetched  INTEGER NOT NULL DEFAULT 0,
    seen     INTEGER NOT NULL DEFAULT 0,
    bad      INTEGER NOT NULL DEFAULT 0,
    wire     INTEGER,
    plain    INTEGER,
    PRIMARY KEY (account, folder, name)
);
"""

#: Orders of a folder page other than arrival (the primary key), the
#: date-range filter of the webmail search (issue 6), and the per-folder
#: counts the webmail shows on every page (L{COUNTS}): that index holds
#: every column the query reads, so SQLite counts in the index alone
#: instead of fetching each row of the account from the table.  Created
#: when the store opens an index.db, so an older one gets them too.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS messages_size ON messages (account, folder, size)",
    "CREATE INDEX IF NOT EXISTS messages_received ON messages (account, folder, received)",
    "CREATE INDEX IF NOT EXISTS messages_seen ON messages (account, folder, seen)",
)

#: C{(folder, messages, unseen)} of every folder of one account holding mail.
COUNTS = ("SELECT folder, COUNT(*), SUM(seen = 0) FROM messages WHERE account = ? "
          "GROUP BY folder")

#: Orders L{zwms.store.mailstore.FileMailStore.page} knows (the columns of the index).
ORDERS = {"date": "name", "size": "size, name"}

UPSERT = ("INSERT INTO messages (account, folder, name, size, received, fetched, seen, bad, "
          "wire, plain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (account, folder, name) "
          "DO UPDATE SET size = excluded.size, wire = excluded.wire, plain = excluded.plain")

#: A row of L{zwms.store.mailstore.FileMailStore.pop3_rows}: MessageInfo's
#: fields (flags as 0/1), the POP3 size and the "plain" flag.
Pop3Row = collections.namedtuple("Pop3Row",
                                 "name folder size received fetched seen bad wire plain")

#: Row tuple -> Pop3Row without Python code per row (namedtuple._make is).
new_pop3_row = functools.partial(tuple.__new__, Pop3Row)


def check_order(order):
    """An order of a folder page, checked (a key of L{ORDERS})."""
    if order not in ORDERS:
        raise InvalidValue("unknown order %r (known: %s)" % (order, ", ".join(sorted(ORDERS))))
    return order


def connect(path):
    """A SQLite connection to the index, WAL mode, waiting for locks."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA synchronous = FULL")
    return db


def prepare(db):
    """
    Make the index ready on C{db}: WAL mode, the table, the columns and
    indexes added since the first index.db (all idempotent: every process
    opening the store runs it).
    """
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(SCHEMA)
    add_wire_column(db)
    for statement in INDEXES:
        db.execute(statement)


def add_wire_column(db):
    """
    Give an index made before issue 8 the C{wire} and C{plain} columns
    (NULL: unknown).
    """
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    for column in ("wire", "plain"):
        if column not in columns:
            try:
                db.execute("ALTER TABLE messages ADD COLUMN %s INTEGER" % column)
            except sqlite3.OperationalError as e:
                # Another process (zwms-admin, the server) added it meanwhile.
                if "duplicate column" not in str(e):
                    raise


def forget_account(home, account_id):
    """
    Drop every index row of C{account_id} (its folder was removed or is new:
    rows of an earlier account of the same ID must not come back).
    """
    if not os.path.exists(home.index_db):
        return
    db = connect(home.index_db)
    try:
        db.execute(SCHEMA)
        db.execute("DELETE FROM messages WHERE account = ?", (account_id,))
    finally:
        db.close()


def replace_account(db, account_id, found):
    """
    Replace the rows of one account with those of its files, in one
    transaction (reindex).

    @param found: C{{(folder, name): (size, received)}}
        (L{zwms.store.mailfiles.scan_account}).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        # Flags are kept; the POP3 size too while the file's size is
        # unchanged (otherwise POP3 measures it again).
        flags = {(f, n): (fe, se, b) + ((w, p) if s == z else (None, None))
                 for f, n, fe, se, b, s, w, p in db.execute(
                     "SELECT folder, name, fetched, seen, bad, size, wire, plain "
                     "FROM messages WHERE account = ?", (account_id,))
                 for z in [found.get((f, n), (None,))[0]]}
        db.execute("DELETE FROM messages WHERE account = ?", (account_id,))
        db.executemany(
            "INSERT INTO messages (account, folder, name, size, received, fetched, "
            "seen, bad, wire, plain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(account_id, folder, name, size, received)
             + flags.get((folder, name), (0, 0, 0, None, None))
             for (folder, name), (size, received) in sorted(found.items())])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
