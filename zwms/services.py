"""
The service layer in one object (IServices), handed to every front end.
"""

from dataclasses import dataclass

from zope.interface import implementer

from zwms.interfaces import IServices


@implementer(IServices)
@dataclass
class Services:
    """
    home, settings, accounts, directory, mail, logs, relay_memory, clock, and
    queue (the outbound QueueRunner; None where nothing is sent out),
    router (the mail-routing service, zwms.routing.router.Router; None:
    SMTP makes a local-only one), policy (the receive policy,
    zwms.policy.chain.ReceivePolicy, one for every listener; None: SMTP
    applies no receive checks).
    """
    home: object
    settings: object
    accounts: object
    directory: object
    mail: object
    logs: object
    relay_memory: object
    clock: object
    queue: object = None
    router: object = None
    policy: object = None
