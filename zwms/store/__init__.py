"""
The only package that reads or writes mailboxes, accounts and the index
(DESIGN.md rule 2).
"""
