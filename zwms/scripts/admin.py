# -*- test-case-name: tests.test_admin_cli -*-
"""
zwms-admin: the command-line console (SPEC §0; N§16 domain_add, mbr_add;
N§19 mail/DB sync).  It only parses arguments and prints: every operation
is in L{zwms.admin.ops}, shared with the web console.

It works whether or not the server runs: both write the same files (the
server's stores notice them by file stamp), and mail is stored through the
same FileMailStore, whose writer thread hands results back through a small
call pump instead of a reactor (L{zwms.admin.ops._CallPump}).

Exit codes: 0 done, 1 the operation failed, 2 bad usage or a bad value.
Errors are one line on stderr, never a traceback.
"""

import argparse
import os
import sys

from zwms.account import SETTABLE_KEYS
from zwms.admin import ops
from zwms.admin.archive import ZIP_BY
from zwms.errors import InvalidValue, ZWMSError

PROG = "zwms-admin"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises instead of exiting the process."""

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


class _Exit(Exception):
    def __init__(self, status):
        Exception.__init__(self, status)
        self.status = status


def build_parser():
    """The argument parser of every subcommand."""
    p = _Parser(prog=PROG, description="zWMS command-line console. "
                "Works whether or not the server is running.")
    p.add_argument("--home", metavar="DIR",
                   help="server home (default: $ZWMS_HOME, else the current folder)")
    top = p.add_subparsers(dest="command", metavar="COMMAND", required=True,
                           parser_class=_Parser)

    user = top.add_parser("user", help="accounts").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    a = user.add_parser("add", help="create an account ('-' reads the password from stdin)")
    a.add_argument("id")
    a.add_argument("password")
    a.add_argument("--name", help="display name")
    a.add_argument("--address", help="hosting address (§23), a full address")
    user.add_parser("del", help="delete an account (its mail too when EMLDEL=1)"
                    ).add_argument("id")
    user.add_parser("show", help="print an account as key: value lines").add_argument("id")
    user.add_parser("list", help="list account IDs")
    s = user.add_parser("set", help="set one account key (%s)" % ", ".join(SETTABLE_KEYS))
    s.add_argument("id")
    s.add_argument("key")
    s.add_argument("value", help="the value ('-' for password reads it from stdin)")

    domain = top.add_parser("domain", help="served domains (DOMAIN + MULTIDOMAINS)"
                            ).add_subparsers(dest="action", metavar="ACTION",
                                             required=True, parser_class=_Parser)
    domain.add_parser("add", help="add a domain to MULTIDOMAINS").add_argument("domain")
    domain.add_parser("del", help="remove a domain from MULTIDOMAINS").add_argument("domain")
    domain.add_parser("list", help="list the domains, DOMAIN first")

    alias = top.add_parser("alias", help="virtual addresses (§9)").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    a = alias.add_parser("add", help="VIRTUAL (full address) -> REAL (ID or address)")
    a.add_argument("virtual")
    a.add_argument("real")
    d = alias.add_parser("del", help="remove a virtual address (or one of its targets)")
    d.add_argument("virtual")
    d.add_argument("real", nargs="?")
    alias.add_parser("list", help="list virtual addresses")

    config = top.add_parser("config", help="settings of data/zwms.cfg and data/env.cfg"
                            ).add_subparsers(dest="action", metavar="ACTION",
                                             required=True, parser_class=_Parser)
    config.add_parser("get", help="print one setting").add_argument("key")
    s = config.add_parser("set", help="validate and write one setting")
    s.add_argument("key")
    s.add_argument("value")
    config.add_parser("list", help="print every setting as KEY=VALUE")

    admin = top.add_parser("admin", help="the /admin login").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    a = admin.add_parser("passwd", help="set the /admin password ('-' reads it from stdin)")
    a.add_argument("password")
    a.add_argument("--login", help="also change the /admin login name (default root)")

    welcome = top.add_parser("welcome", help="the welcome message of new accounts (§5)"
                             ).add_subparsers(dest="action", required=True)
    welcome.add_parser("show", help="print data/welcome.txt (first line: the subject)")
    welcome.add_parser("set", help="write it from FILE ('-' reads stdin; an empty file "
                       "turns it off)").add_argument("file")
    welcome.add_parser("clear", help="remove it: no welcome mail is sent")

    top.add_parser("reindex", help="rebuild the mail index from the .eml files (N§19)"
                   ).add_argument("id", nargs="?", default="ALL", help="an ID or ALL")
    top.add_parser("import", help="store import/userd/ID/*.eml in the Inbox (§27)"
                   ).add_argument("id")
    top.add_parser("backup", help="copy the account files to backup/userd/ID/ (§25)"
                   ).add_argument("id")
    z = top.add_parser("zip", help="zip the mailbox into ZIPDIR/BY/ID-STAMP.zip (§26)")
    z.add_argument("id")
    z.add_argument("--by", choices=ZIP_BY, default="root",
                   help="who asks: root (default), mid or user")
    return p


def _secret(text):
    """'-' means: read the secret from stdin (keeps it out of `ps`)."""
    if text != "-":
        return text
    return sys.stdin.readline().rstrip("\r\n")


def _out(*lines):
    for line in lines:
        print(line)


def run(ctx, args):
    """Carry out one parsed command against an open context; return the exit code."""
    cmd, action = args.command, getattr(args, "action", None)
    if cmd == "user":
        if action == "add":
            acct = ops.user_add(ctx, args.id, _secret(args.password),
                                name=args.name, address=args.address)
            _out("account %s added" % acct.id)
        elif action == "del":
            kept = "" if ops.user_del(ctx, args.id) else " (mail kept: EMLDEL=0)"
            _out("account %s deleted%s" % (args.id.lower(), kept))
        elif action == "show":
            _out(*ops.user_show(ctx, args.id).show_lines())
        elif action == "list":
            _out(*ops.user_list(ctx))
        elif action == "set":
            key = args.key.strip().lower()
            value = _secret(args.value) if key == "password" else args.value
            acct = ops.user_set(ctx, args.id, key, value)
            if key == "password":
                _out("password of %s changed" % acct.id)
            else:
                _out(*[line for line in acct.show_lines() if line.startswith(key + ": ")])
    elif cmd == "domain":
        if action == "add":
            _out("domain %s added" % ops.domain_add(ctx, args.domain))
        elif action == "del":
            _out("domain %s deleted" % ops.domain_del(ctx, args.domain))
        else:
            _out(*ops.domain_list(ctx))
    elif cmd == "alias":
        if action == "add":
            _out("alias %s -> %s added" % ops.alias_add(ctx, args.virtual, args.real))
        elif action == "del":
            ops.alias_del(ctx, args.virtual, args.real)
            _out("alias %s deleted" % args.virtual.lower())
        else:
            _out(*["%s %s" % pair for pair in ops.alias_list(ctx)])
    elif cmd == "config":
        if action == "get":
            _out(ops.config_get(ctx, args.key)[1])
        elif action == "set":
            key, text = ops.config_set(ctx, args.key, args.value)
            _out("%s=%s" % (key.name, text))
            if key.restart:
                _out("note: %s is a data/zwms.cfg key: restart zWMS to apply it" % key.name)
        else:
            _out(*["%s=%s" % (k.name, text) for k, text in ops.config_list(ctx)])
    elif cmd == "admin":
        ops.admin_passwd(ctx, _secret(args.password), login=args.login)
        _out("/admin password changed (login %s)" % ops.admin_login(ctx.home))
    elif cmd == "welcome":
        if action == "show":
            text = ops.welcome_get(ctx)
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        elif action == "set":
            if args.file == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(args.file, "rb") as f:
                    raw = f.read()
            text = ops.welcome_set(ctx, raw.decode("utf-8", "replace"))
            _out("welcome message %s" % ("set" if text.strip() else "cleared"))
        else:
            ops.welcome_set(ctx, "")
            _out("welcome message cleared")
    elif cmd == "reindex":
        counts, total = ops.reindex(ctx, args.id)
        _out(*["%s: %d messages" % pair for pair in counts])
        _out("reindexed %d messages" % total)
    elif cmd == "import":
        result = ops.import_eml(ctx, args.id)
        for filename, reason in result.refused:
            sys.stderr.write("%s: not imported: %s: %s\n" % (PROG, filename, reason))
        _out("imported %d messages into %s/Inbox from %s; %d left in place"
             % (len(result.imported), args.id.lower(), result.folder, len(result.refused)))
        return EXIT_FAILED if result.refused else EXIT_OK
    elif cmd == "backup":
        folder, copied = ops.backup(ctx, args.id)
        _out("backed up %d files of %s to %s" % (len(copied), args.id.lower(), folder))
    elif cmd == "zip":
        path, count = ops.zip_mailbox(ctx, args.id, args.by)
        _out("%s (%d messages)" % (path, count))
    return EXIT_OK


def _fail(message, status):
    sys.stderr.write("%s: error: %s\n" % (PROG, message))
    return status


def main(argv=None):
    """
    Run zwms-admin with C{argv} (default: sys.argv[1:]).

    @return: the exit code (0, 1 or 2); nothing is raised.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except _Exit as e:
        return e.status
    home = args.home or os.environ.get("ZWMS_HOME") or os.getcwd()
    ctx = None
    try:
        ctx = ops.open_home(home)
        for error in ctx.settings.errors:
            sys.stderr.write("%s: warning: %s (default or last good value used)\n"
                             % (PROG, error))
        return run(ctx, args)
    except InvalidValue as e:
        return _fail(e, EXIT_USAGE)
    except ZWMSError as e:
        return _fail(e, EXIT_FAILED)
    except OSError as e:
        return _fail("%s%s" % (e.strerror or e, ": %s" % e.filename if e.filename else ""),
                     EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_FAILED)
    except Exception as e:  # never a traceback for the operator (SPEC X4)
        return _fail("unexpected %s: %s" % (type(e).__name__, e), EXIT_FAILED)
    finally:
        if ctx is not None:
            try:
                ctx.close()
            except Exception as e:
                sys.stderr.write("%s: warning: closing the mail store: %s\n" % (PROG, e))


if __name__ == "__main__":
    sys.exit(main())
