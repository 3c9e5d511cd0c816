# -*- test-case-name: tests.test_policy_checks -*-
"""
P6 and P7 (SPEC §2; seed §16, §32, §36 [수신] 4): each recipient
account's own rules, after the administrator's checks, and where delegated
mail goes.

For one account, in this order (the first that decides wins):

1. IP deny ("IP 관리"): the peer IP is in deny_ips and not in allow_ips →
   421 junk by user, `Mail receive but user ip deny`.
2. Receive mode ("수신모드"): "domain" takes senders of the server's own
   domains (and allowed ones); "allow" only allowed senders;
   "addressbook" allowed senders and senders whose address is in the
   account's address book (SPEC W3, L{zwms.store.addressbook}; read in a
   thread by L{load_addressbooks} before the checks run) → 421 junk by
   user, `Mail receive but not in user allow`.  A damaged address book
   does not stop mail: the mode then takes everything and the SystemError
   log says why (as broken rules do).
3. Address deny ("메일주소관리"): the sender is in deny_addresses and not in
   allow_addresses → 421 junk by user, `Mail receive but user refuse`.
4. Delegated refusal: mail an admin check left to the account (value 2)
   as outlaw is refused when the account's outlawreject is on (the §36
   outlaw 421, `Mail receive but outlaw`), as spam or virus when junkreject
   is on (`… a spam` / `… a virus`, `Mail receive but spam|virus`).
5. The user's spam filter ("스팸필터", from the block button): the sender
   or the subject matches an entry, and the sender is not allowed →
   421 spam by user, `Mail receive but user spam filter`.
6. P7: delegated mail not refused goes to the Spam folder, flagged bad in
   the index (POP3 withholds it when badmailpop3 is on, §31/§32),
   `Mail classified as outlaw|spam|virus`.
7. Sorting rules ("편지분류설정"), first match: to a folder, or delete
   silently (`Mail receive but user filter`).
8. Otherwise the Inbox.

§36 gives a reply only for the IP deny and spam filter lines; the receive
mode and address refusals answer the same "junk by user" 421 rather than
dropping mail silently (nothing is lost without a trace).  "The sender" is
the MAIL FROM address and the From header's address: either may match.
"""

from zwms import logs, replies
from zwms.policy import verdict as v
from zwms.policy.lists import (address_matches, any_address_matches, domain_in, domain_of,
                               ip_in, parse_ip)

_CLASSIFIED = {v.OUTLAW: replies.LOG_CLASSIFIED_OUTLAW, v.SPAM: replies.LOG_CLASSIFIED_SPAM,
               v.VIRUS: replies.LOG_CLASSIFIED_VIRUS}


def senders(facts):
    """The sender addresses to compare: MAIL FROM and the From header's."""
    out = []
    for address in (facts.mail.sender, getattr(facts.content, "from_address", "")):
        address = (address or "").strip().lower()
        if address and address not in out:
            out.append(address)
    return out


def spam_filter_match(entries, addresses, subject):
    """The first spam filter entry matching the sender or subject, or None."""
    subject = (subject or "").casefold()
    for entry in entries:
        if entry.field == "sender":
            if any(address_matches(a, entry.pattern) for a in addresses):
                return entry
        elif entry.pattern.casefold() in subject:
            return entry
    return None


def sort_match(rules, addresses, subject):
    """The first sorting rule matching the sender or subject, or None."""
    return spam_filter_match(rules, addresses, subject)


def load_addressbooks(home, accounts, notes):
    """
    The L{AccountFacts} of C{accounts} with the address book of each
    account in receive mode "addressbook" filled in.  Opens files: call it
    in a thread (L{zwms.policy.chain.ReceivePolicy.message} does).

    @param notes: a list; a damaged book adds a (channel, text) note and
        leaves that account's mode off (C{addressbook=None}).
    """
    from dataclasses import replace

    from zwms.errors import InvalidValue
    from zwms.store.addressbook import AddressBook

    book = AddressBook(home)
    out = []
    for af in accounts:
        if getattr(af.account, "receivemode", "") == "addressbook":
            try:
                af = replace(af, addressbook=frozenset(book.addresses(af.account.id)))
            except (InvalidValue, OSError) as e:
                notes.append((logs.SYSTEMERROR, "Receive mode addressbook not applied to %s: %s"
                              % (getattr(af.account, "id", "?"), e)))
                af = replace(af, addressbook=None)
        out.append(af)
    return tuple(out)


def _refuse(pair, log, detail):
    return v.refuse(pair, log, detail, check="account")


def decide(facts, account_facts):
    """The L{zwms.policy.verdict.Verdict} of one account for this mail."""
    account, rules = account_facts.account, account_facts.rules
    mail, config = facts.mail, facts.config
    addresses = senders(facts)
    subject = getattr(facts.content, "subject", "")
    account_id = getattr(account, "id", "?")
    detail = "<%s> -> %s" % (mail.sender, account_id)

    ip_allowed = bool(rules.allow_ips) and ip_in(mail.peer_ip, rules.allow_ips)
    address_allowed = any_address_matches(addresses, rules.allow_addresses) is not None
    allowed = ip_allowed or address_allowed

    if rules.deny_ips and not ip_allowed and ip_in(mail.peer_ip, rules.deny_ips):
        return _refuse(replies.LOOKS_JUNK_BY_USER, replies.LOG_USER_IP_DENY, detail)

    mode = getattr(account, "receivemode", "all")
    if mode == "addressbook" and account_facts.addressbook is None:
        mode = "all"  # the book could not be read: see load_addressbooks
    if mode != "all" and not allowed:
        if mode == "domain":
            own = any(domain_in(domain_of(a), config.local_domains) for a in addresses)
        elif mode == "addressbook":
            own = any(a in account_facts.addressbook for a in addresses)
        else:
            own = False
        if not own:
            return _refuse(replies.LOOKS_JUNK_BY_USER, replies.LOG_NOT_IN_ALLOW,
                           "%s (receive mode %s)" % (detail, mode))

    if rules.deny_addresses and not address_allowed:
        pattern = any_address_matches(addresses, rules.deny_addresses)
        if pattern is not None:
            return _refuse(replies.LOOKS_JUNK_BY_USER, replies.LOG_USER_REFUSE,
                           "%s (%s)" % (detail, pattern))

    marks = mail.marks
    if v.OUTLAW in marks and getattr(account, "outlawreject", False):
        pair = replies.looks_outlaw(str(parse_ip(mail.peer_ip) or mail.peer_ip),
                                    config.admin_address)
        return _refuse(pair, replies.LOG_RECEIVE_OUTLAW, detail + " (delegated)")
    if getattr(account, "junkreject", False):
        if v.VIRUS in marks:
            return _refuse(replies.LOOKS_VIRUS, replies.LOG_RECEIVE_VIRUS,
                           detail + " (delegated)")
        if v.SPAM in marks:
            return _refuse(replies.LOOKS_SPAM, replies.LOG_RECEIVE_SPAM,
                           detail + " (delegated)")

    if rules.spam_filter and not allowed:
        entry = spam_filter_match(rules.spam_filter, addresses, subject)
        if entry is not None:
            return _refuse(replies.LOOKS_SPAM_BY_USER, replies.LOG_USER_SPAM_FILTER,
                           "%s (%s %r)" % (detail, entry.field, entry.pattern))

    if marks:
        return v.Verdict(v.FOLDER, folder="Spam", bad=True, category=marks[0],
                         log=v.with_detail(_CLASSIFIED[marks[0]], detail),
                         channel=logs.MAILBLOCK, check="account")

    rule = sort_match(rules.sort, addresses, subject)
    if rule is not None:
        if rule.delete:
            return v.Verdict(v.DELETE, log=v.with_detail(
                replies.LOG_USER_FILTER, "%s (%s %r)" % (detail, rule.field, rule.pattern)),
                channel=logs.MAILBLOCK, check="account")
        return v.Verdict(v.FOLDER, folder=rule.folder, check="account")
    return v.Verdict(v.FOLDER, folder="Inbox", check="account")
