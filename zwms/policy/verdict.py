# -*- test-case-name: tests.test_policy_checks -*-
"""
What a check answers (DESIGN rule 3: policy is data in, a Verdict out).

A check never talks to the client and never writes a log: it returns a
L{Verdict}; the SMTP layer carries it out (sends C{code text}, writes
C{log} to C{channel} and every line of C{notes}, stores the mail where it
says).  Actions:

- C{CONTINUE}: nothing against this mail here; C{marks} lists the
  categories ("outlaw", "spam", "virus") that a check set to 2 (delegate)
  found, for the account to decide (SPEC P6, P7);
- C{REFUSE}: answer C{code text} (a §36 reply) and log C{log};
- C{FOLDER}: store for this account in C{folder} (with the index's C{bad}
  flag when C{bad});
- C{DELETE}: accept and drop silently (the user's sort-to-delete rule).
"""

from dataclasses import dataclass, replace

from zwms import logs

CONTINUE = "continue"
REFUSE = "refuse"
FOLDER = "folder"
DELETE = "delete"

OUTLAW = "outlaw"
SPAM = "spam"
VIRUS = "virus"
#: The delegated categories in the order the checks run (P3, P4, P5); a
#: bomb (P2) is spam.
CATEGORIES = (OUTLAW, SPAM, VIRUS)

# Our own replies where §36 is silent.
#: P1: a connection from BLOCKIPS (RFC 5321 §3.1: 554 at the greeting).
BLOCKED_IP = (554, "Error. Your IP is blocked on this server")
#: P3: the outlaw check could not be decided because DNS failed for now.
OUTLAW_TRY_LATER = (451, "Error. Can not check sender domain now (DNS). Try again")

# Our own log lines where §36 is silent (MailBlock).
LOG_BLOCKED_IP = "Connection refused from blocked IP"
LOG_BOMB = "bomb mail"
LOG_OUTLAW_UNDECIDED = "Outlaw check undecided (DNS temporary failure)"


@dataclass(frozen=True)
class Verdict:
    """The answer of one check (or of the chain for one stage)."""
    action: str = CONTINUE
    code: int = 0
    text: str = ""
    log: str = ""
    channel: str = logs.MAILBLOCK
    folder: str = "Inbox"
    bad: bool = False
    category: str = ""
    marks: tuple = ()
    notes: tuple = ()  # (channel, text) lines to write whatever the outcome
    check: str = ""  # the name of the check that decided

    @property
    def refused(self):
        return self.action == REFUSE

    def with_notes(self, notes):
        """This verdict with more note lines before its own."""
        if not notes:
            return self
        return replace(self, notes=tuple(notes) + self.notes)

    def log_lines(self):
        """Every (channel, text) line to write for this verdict, in order."""
        lines = list(self.notes)
        if self.log:
            lines.append((self.channel, self.log))
        return lines


def go(marks=(), notes=()):
    """Nothing against the mail (maybe categories left to the account)."""
    return Verdict(marks=tuple(marks), notes=tuple(notes))


def refuse(pair, log, detail="", check="", channel=logs.MAILBLOCK, notes=()):
    """A refusal with a C{(code, text)} pair of L{zwms.replies} and its log."""
    code, text = pair
    return Verdict(REFUSE, code=code, text=text, log=with_detail(log, detail),
                   channel=channel, check=check, notes=tuple(notes))


def with_detail(log, detail):
    """A §36 log line followed by its detail (addresses, reasons)."""
    return "%s %s" % (log, detail) if detail else log


def add_marks(marks, *new):
    """C{marks} with C{new} categories, in L{CATEGORIES} order, no repeats."""
    have = set(marks) | set(new)
    return tuple(c for c in CATEGORIES if c in have)


@dataclass(frozen=True)
class Decision:
    """
    The outcome of the checks after DATA for one mail.

    C{reply}: None to answer 250 (the mail is accepted for at least one
    account), or the refusing L{Verdict} whose C{code text} answers DATA.
    C{accounts}: (account_id, L{Verdict}) pairs, one per local account, in
    recipient order: FOLDER (store there), DELETE (drop), REFUSE (this
    account refused; logged, and bounced when others accepted).
    C{notes}: lines to write first (checked … IP, classified, …).
    """
    reply: object = None
    accounts: tuple = ()
    notes: tuple = ()

    def stored(self):
        """(account_id, folder, bad) for each account that stores the mail."""
        return [(aid, v.folder, v.bad) for aid, v in self.accounts if v.action == FOLDER]

    def refused(self):
        """(account_id, Verdict) for each account that refused."""
        return [(aid, v) for aid, v in self.accounts if v.action == REFUSE]

    def log_lines(self):
        """Every (channel, text) line to write, in order."""
        lines = list(self.notes)
        for _, verdict in self.accounts:
            lines.extend(verdict.log_lines())
        if self.reply is not None and self.reply.log and not self.accounts:
            lines.extend(self.reply.log_lines())
        return lines


def by_level(level, category, pair, log, detail="", check="", notes=()):
    """
    What a REJECT key (0 off, 1 refuse, 2 delegate, SPEC §0) makes of a
    finding: nothing, a refusal, or a mark left for the account (P6, P7).
    """
    if level == 1:
        return refuse(pair, log, detail, check=check, notes=notes)
    if level == 2:
        return Verdict(marks=(category,), notes=tuple(notes), check=check)
    return go(notes=notes)
