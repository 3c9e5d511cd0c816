# -*- test-case-name: tests.test_smtp_protocol -*-
"""
The SMTP server's session modes and its own replies, where seed §36 is
silent (texts after RFC 5321, 1870, 3207 and 4954).  The §36 replies are in
L{zwms.replies}.
"""

COMMAND, DATA, AUTH = "COMMAND", "DATA", "AUTH"

# Replies of our own where §36 is silent (RFC 5321, 3207, 4954 texts).
SEND_HELO_FIRST = (503, "Error. Send HELO or EHLO first")
BAD_HELO = (501, "Error. HELO and EHLO need a valid domain name")
NESTED_MAIL = (503, "Error. Nested MAIL command")
MAIL_SYNTAX = (501, "Error. Syntax: MAIL FROM:<address>")
RCPT_SYNTAX = (501, "Error. Syntax: RCPT TO:<address>")
NEED_MAIL = (503, "Error. Need MAIL command")
NO_VALID_RECIPIENTS = (554, "Error. No valid recipients")
BAD_PARAMETER = (555, "Error. Parameter not recognized")
NO_ARGUMENTS = (501, "Error. No arguments allowed")
AUTH_REQUIRED = (530, "Error. Authentication required")
STARTTLS_FIRST = (530, "Error. Must issue a STARTTLS command first")
TLS_ACTIVE = (503, "Error. TLS already active")
TLS_UNAVAILABLE = (454, "Error. TLS not available")
ALREADY_AUTHENTICATED = (503, "Error. Already authenticated")
AUTH_IN_TRANSACTION = (503, "Error. AUTH not allowed during a mail transaction")
AUTH_SYNTAX = (501, "Error. Syntax: AUTH mechanism [initial-response]")
AUTH_MECHANISM = (504, "Error. Unrecognized authentication type")
AUTH_ABORTED = (501, "Error. Authentication aborted")
AUTH_MALFORMED = (501, "Error. Malformed authentication response")
AUTH_TEMPORARY = (454, "Error. Temporary authentication failure. Try again")
TOO_MANY_ERRORS = (421, "Error. Too many bad commands. Close session")

#: Replies that count towards the bad-command limit.
ERROR_CODES = frozenset((500, 501, 502, 503, 504, 530, 535, 555))

# Sending limits of an account (SPEC S7, seed §16 "일일 제한통수/용량"): our own
# texts, §36 has none.  452 (RFC 5321 "insufficient storage": try tomorrow)
# for the count, 552 for bytes.
DAY_COUNT_OVER = (452, "Error. Daily send count limit reached. Try again tomorrow")
DAY_SIZE_OVER = (552, "Error. Daily send size limit exceeded")
LOG_DAY_LIMIT = "Mail receive but day limit"

# Mailing lists (SPEC Q5, seed §21).
LISTS_UNAVAILABLE = (451, "Error. Mailing lists are not available now. Try again")
LOG_LIST_REFUSED = "Mailing list refused"
