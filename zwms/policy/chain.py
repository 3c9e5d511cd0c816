# -*- test-case-name: tests.test_policy_chain -*-
"""
The receive policy as one ordered table (SPEC §2 P1–P7; DESIGN rule 3;
Mailman's chain of rules): L{CHECKS} lists every administrator check with
the SMTP stage it runs at, whether trusted senders skip it, and whether it
blocks (DNS: run in a thread).  After the table, each recipient account
decides for itself (L{zwms.policy.account_rules}, P6 and P7).

Stages:
- CONNECT (P1) when the client connects;
- MAIL (P2, P3 when PREOUTLAW=1) when MAIL FROM is accepted;
- DATA (P3 when PREOUTLAW=0, P4, P5, then P6/P7 per account) when the
  message is complete, before it is stored.

A stage stops at the first refusal.  A check set to 2 (delegate) adds its
category to the marks, which the MAIL stage hands to the DATA stage
(L{Mail.marks}) and the DATA stage to the accounts.  RELAYIPS peers, SMTP
AUTH sessions and ALLOWDOMAINS senders skip the bad-mail checks P2–P5
(seed §4, §32), not P1 and not their recipients' own rules.

L{ReceivePolicy} is the service object the SMTP layer calls: it takes a
settings snapshot, the lists, the bomb memory, the resolver and the account
rules, runs the table, and answers L{Verdict}s / a L{Decision}.  It never
talks to the client and never logs: the SMTP layer writes C{log_lines()}.
"""

from twisted.internet import defer

from zwms import logs
from zwms.policy import account_rules, block, bomb, outlaw, spam, verdict as v, virus
from zwms.policy.content import Content
from zwms.policy.facts import AccountFacts, Config, Facts, Mail
from zwms.policy.lists import WatchedList, list_path
from zwms.store.rules import EMPTY, CorruptRules, RulesStore

CONNECT, MAIL, DATA = "connect", "mail", "data"

#: The administrator's checks in order: (name, stage, skipped for trusted
#: senders, blocks (run in a thread), check(facts) -> Verdict).
CHECKS = (
    ("block", CONNECT, False, False, block.check_connect),   # P1 BLOCKIPS
    ("bomb", MAIL, True, False, bomb.check),                 # P2 BOMBREJECT, SMTPTTL
    ("outlaw", MAIL, True, True, outlaw.check_pre),          # P3 when PREOUTLAW=1
    ("outlaw", DATA, True, True, outlaw.check_post),         # P3 when PREOUTLAW=0
    ("spam", DATA, True, False, spam.check),                 # P4 data/spam.dat
    ("virus", DATA, True, False, virus.check),               # P5 data/virus.dat
)
#: Then, for each recipient account: account_rules.decide (P6, P7).

#: DNS timeouts of the outlaw lookups (seconds): per query, and in all.
DNS_TIMEOUT = 5.0
DNS_LIFETIME = 10.0


def run_stage(stage, facts, call=None):
    """
    Run the checks of one stage in table order.

    @param call: C{call(check, facts)} for blocking checks (a thread);
        synchronous when None.
    @return: a Deferred firing with a refusing L{Verdict}, or a CONTINUE one
        carrying every mark and note.
    """
    return defer.ensureDeferred(_run_stage(stage, facts, call))


async def _run_stage(stage, facts, call):
    reason = block.trusted(facts) if stage != CONNECT else ""
    marks, notes = list(facts.mail.marks), []
    for name, at, skip_trusted, blocking, check in CHECKS:
        if at != stage or (skip_trusted and reason):
            continue
        if blocking and call is not None:
            verdict = await call(check, facts)
        else:
            verdict = check(facts)
        if verdict.refused:
            return verdict.with_notes(notes)
        notes.extend(verdict.notes)
        marks = v.add_marks(marks, *verdict.marks)
    return v.go(marks=marks, notes=notes)


def decide_accounts(facts, admin):
    """
    P6/P7 for every account after the admin checks of the DATA stage
    (C{admin}, a CONTINUE verdict with its marks).

    @return: a L{Decision}: 250 when at least one account takes the mail
        (stores or deletes it), else the first account's refusal.
    """
    facts.mail = facts.mail.marked(admin.marks)
    verdicts = [(getattr(af.account, "id", "?"), account_rules.decide(facts, af))
                for af in facts.accounts]
    taken = any(verdict.action in (v.FOLDER, v.DELETE) for _, verdict in verdicts)
    reply = None
    if verdicts and not taken:
        reply = verdicts[0][1]
    return v.Decision(reply=reply, accounts=tuple(verdicts), notes=tuple(admin.notes))


def decide_message(facts, call=None):
    """
    The DATA stage: admin checks, then every account (synchronous when
    C{call} is None; used by the tests and by L{ReceivePolicy} in a thread).
    """
    d = run_stage(DATA, facts, call)

    def admin_done(admin):
        if admin.refused:
            return v.Decision(reply=admin)
        return decide_accounts(facts, admin)
    return d.addCallback(admin_done)


class ReceivePolicy:
    """
    The receive policy of one server (one bomb memory for all listeners).

    @param services: the L{zwms.services.Services}.
    @param resolver: a dnspython resolver; by default one asking DNS1/DNS2
        (built at first use).
    @param run_in_thread: C{f(*args) -> Deferred} running blocking work off
        the reactor (default C{deferToThread}); tests pass a synchronous one.
    @param rules: the L{RulesStore} (default: over the services' home).
    """

    def __init__(self, services, resolver=None, run_in_thread=None, rules=None,
                 bomb_cap=bomb.DEFAULT_CAP):
        self.services = services
        self._resolver = resolver
        if run_in_thread is None:
            from twisted.internet.threads import deferToThread
            run_in_thread = deferToThread
        self.run_in_thread = run_in_thread
        self.rules = rules or getattr(services, "rules", None) or RulesStore(services.home)
        self.bomb = bomb.BombMemory(bomb_cap)
        self.spam_list = WatchedList(list_path(services.home, "spam.dat"))
        self.virus_list = WatchedList(list_path(services.home, "virus.dat"))

    @property
    def resolver(self):
        """The DNS resolver of the outlaw check (DNS1/DNS2, zwms.cfg)."""
        if self._resolver is None:
            from zwms.queue.mx import build_resolver
            settings = self.services.settings
            self._resolver = build_resolver([settings["DNS1"], settings["DNS2"]],
                                            timeout=DNS_TIMEOUT, lifetime=DNS_LIFETIME)
        return self._resolver

    def config(self):
        """The settings snapshot for one decision."""
        return Config.from_settings(self.services.settings,
                                    self.services.directory.local_domains())

    def _facts(self, mail, config=None):
        return Facts(config=config or self.config(), mail=mail, resolver=self.resolver,
                     bomb=self.bomb, now=self.services.clock.seconds())

    def _call(self, check, facts):
        return self.run_in_thread(check, facts)

    # -- the three stages ------------------------------------------------

    def connect(self, peer_ip):
        """P1 at connect: a L{Verdict} (synchronous)."""
        facts = Facts(config=self.config(), mail=Mail(peer_ip=peer_ip or ""))
        return block.check_connect(facts)

    def mail_from(self, mail):
        """
        P2 and (PREOUTLAW=1) P3 at MAIL FROM for a L{Mail}.

        @return: a Deferred firing with a L{Verdict}: a refusal, or CONTINUE
            with the marks to hand to L{message} (C{mail.marked(v.marks)}).
        """
        return run_stage(MAIL, self._facts(mail), self._call)

    def message(self, mail, data, account_ids):
        """
        P3 (PREOUTLAW=0), P4, P5, then P6/P7 for each local account.

        @param mail: the L{Mail}, with the marks of the MAIL stage.
        @param data: the message bytes as received.
        @param account_ids: the local accounts it is for, in recipient order.
        @return: a Deferred firing with a L{Decision}.
        """
        facts = self._facts(mail)
        notes = []
        accounts = []
        for account_id in account_ids:
            account = self.services.accounts.get(account_id)
            try:
                rules = self.rules.get(account_id)
            except CorruptRules as e:
                # Broken rules must not stop mail: none applies, the admin sees why.
                rules = EMPTY
                notes.append((logs.SYSTEMERROR, "Account rules not applied: %s" % (e,)))
            accounts.append(AccountFacts(account if account is not None
                                         else _Missing(account_id), rules))
        facts.accounts = tuple(accounts)

        def work():
            # One thread hop for the whole stage: parsing a big message and
            # the DNS lookups both block.
            facts.content = Content(data)
            facts.accounts = account_rules.load_addressbooks(self.services.home,
                                                             facts.accounts, notes)
            facts.spam_phrases = self.spam_list.items() if facts.config.spamreject else ()
            facts.virus_extensions = (self.virus_list.items()
                                      if facts.config.virusreject else ())
            result = []
            decide_message(facts).addBoth(result.append)
            return result[0]

        d = self.run_in_thread(work)

        def done(decision):
            if isinstance(decision, v.Decision) and notes:
                return v.Decision(decision.reply, decision.accounts,
                                  tuple(notes) + decision.notes)
            if not isinstance(decision, v.Decision):
                decision.raiseException()
            return decision
        return d.addCallback(done)


class _Missing:
    """An account deleted since RCPT: no settings of its own (the store decides)."""

    def __init__(self, account_id):
        self.id = account_id
