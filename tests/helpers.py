"""
Shared test fixtures: a whole service layer over a scratch home.
"""

from twisted.internet import task

from zwms.config import Settings
from zwms.home import Home
from zwms.logs import MemoryLogs
from zwms.services import Services
from zwms.store import passwords
from zwms.store.directory import Directory
from zwms.store.relay_memory import RelayMemory

# argon2 with production parameters costs ~0.1 s a hash: tests hash with
# cheap ones (still argon2id; verification reads the parameters from the hash).
passwords.use_test_hasher()


def make_services(root, clock=None, memory=True, threads=None):
    """
    A L{Services} over a new home at C{root}.

    @param clock: an IReactorTime; a new C{task.Clock()} when None.
    @param memory: True for the in-memory account and mail stores, False for
        the file stores (the FileMailStore's writer thread is then running:
        the test must C{return services.mail.stop()} or add it as cleanup).
    @param threads: the router's and the receive policy's thread runner
        (default: run at once, so that synchronous tests see its file
        writes finished).
    """
    home = Home(root)
    home.create()
    settings = Settings(home)
    if clock is None:
        clock = task.Clock()
    if memory:
        from zwms.store.memory import MemoryAccounts, MemoryMailStore
        accounts, mail = MemoryAccounts(), MemoryMailStore()
    else:
        from twisted.internet import reactor
        from zwms.store.accounts import FileAccounts
        from zwms.store.mailstore import FileMailStore
        accounts = FileAccounts(home, settings)
        mail = FileMailStore(home, reactor=reactor)
    directory = Directory(settings, accounts, home)
    from twisted.internet import defer
    from zwms.routing.router import Router
    services = Services(home=home, settings=settings, accounts=accounts,
                        directory=directory, mail=mail, logs=MemoryLogs(),
                        relay_memory=RelayMemory(settings, clock), clock=clock)
    services.router = Router(services, threads=threads or defer.maybeDeferred)
    from zwms.policy.chain import ReceivePolicy
    # No DNS is asked unless a test turns the outlaw check on (it then
    # injects a resolver: services.policy._resolver, or its own policy).
    services.policy = ReceivePolicy(services, resolver=_NoDNS(),
                                    run_in_thread=threads or defer.maybeDeferred)
    return services


class _NoDNS:
    """The policy's resolver until a test injects one: never the system's."""

    def resolve(self, name, *args, **kwargs):
        raise AssertionError("DNS asked for %r without a test resolver" % (name,))
