"""
The receive policy (SPEC §2 P1–P7): pure checks that take values and return
a L{zwms.policy.verdict.Verdict}; L{zwms.policy.chain} orders them.
"""
