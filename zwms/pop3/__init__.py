"""
POP3 server (SPEC O1-O3, seed §31): factory.POP3Factory builds
server.POP3Server sessions; mailbox.py holds the §31 policy, wire.py the
on-the-wire form of messages, login.py USER/PASS over the service layer.
"""
