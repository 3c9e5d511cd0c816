# -*- test-case-name: tests.test_policy_checks -*-
"""
The values the checks take (DESIGN rule 3): a snapshot of the settings
(L{Config}), the mail transaction (L{Mail}) and, for one check run, all of
it together (L{Facts}).  Checks read these and nothing else: no protocol
object, no file, no socket (DNS goes through C{facts.resolver}).
"""

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Config:
    """The env.cfg and zwms.cfg values of the receive policy (§4, §11, §32)."""
    blockips: tuple = ()
    relayips: tuple = ("127.0.0.1", "::1")
    allowdomains: tuple = ()
    bombreject: int = 0
    smtpttl: int = 5
    outlawreject: int = 0
    outlawlevel: int = 3
    outlawlog: bool = False
    preoutlaw: bool = False
    spamreject: int = 0
    virusreject: int = 0
    domain: str = "localhost"
    adminid: str = ""
    local_domains: tuple = ()

    @classmethod
    def from_settings(cls, settings, local_domains=()):
        """A snapshot of C{settings} (L{zwms.config.Settings}) now."""
        return cls(
            blockips=tuple(settings.list("BLOCKIPS")),
            relayips=tuple(settings.list("RELAYIPS")),
            allowdomains=tuple(settings.list("ALLOWDOMAINS")),
            bombreject=int(settings["BOMBREJECT"]),
            smtpttl=int(settings["SMTPTTL"]),
            outlawreject=int(settings["OUTLAWREJECT"]),
            outlawlevel=int(settings["OUTLAWLEVEL"]),
            outlawlog=bool(settings["OUTLAWLOG"]),
            preoutlaw=bool(settings["PREOUTLAW"]),
            spamreject=int(settings["SPAMREJECT"]),
            virusreject=int(settings["VIRUSREJECT"]),
            domain=str(settings["DOMAIN"]),
            adminid=str(settings["ADMINID"]),
            local_domains=tuple(sorted(local_domains)))

    @property
    def admin_address(self):
        """AdminID@MailserverDomain of the outlaw reply (postmaster without ADMINID)."""
        return "%s@%s" % (self.adminid or "postmaster", self.domain)


@dataclass(frozen=True)
class Mail:
    """
    One mail transaction as the checks see it.

    C{sender} is the MAIL FROM address ("" for <>); C{authenticated} is an
    SMTP AUTH session; C{marks} are the categories that earlier stages left
    to the accounts (SPEC P7).
    """
    peer_ip: str
    helo: str = ""
    sender: str = ""
    authenticated: bool = False
    marks: tuple = ()

    def marked(self, marks):
        return replace(self, marks=tuple(marks))


@dataclass(frozen=True)
class AccountFacts:
    """
    One recipient account with its rules (L{zwms.store.rules.Rules}) and,
    for receive mode "addressbook", the lower-cased addresses of its
    address book (read in a thread by L{zwms.policy.account_rules.load_addressbooks}).
    """
    account: object
    rules: object
    addressbook: frozenset = frozenset()


@dataclass
class Facts:
    """Everything one run of the checks may read."""
    config: Config
    mail: Mail
    content: object = None  # L{zwms.policy.content.Content} after DATA
    resolver: object = None  # a dnspython resolver (outlaw)
    bomb: object = None  # L{zwms.policy.bomb.BombMemory}
    now: float = 0.0
    spam_phrases: tuple = ()
    virus_extensions: tuple = ()
    accounts: tuple = ()  # of AccountFacts, in recipient order
    notes: list = field(default_factory=list)
