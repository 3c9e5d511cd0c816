"""
The webmail (SPEC W1-W4, W7, W10), mounted at /mail by L{zwms.web.site}:
L{app} (login, skin files), L{mailbox} (folders, reading), L{compose}
(writing and sending), L{settings}; L{state} holds what they share.
"""
