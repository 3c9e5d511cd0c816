"""
The mail-routing service (L{zwms.routing.router.Router}): relaying,
forwarding, representative addresses, mailing lists and SELFRELAYSAVE, on
top of the mail store and the outbound queue.
"""
