"""
The reply and log texts of seed §36, word for word (SPEC §0 "Replies", X3).

Each reply is (code, text); each log line is a plain string.  Protocol code
and tests both use these names, so there is one spelling.
"""

# ---- [수신] receiving: SMTP replies ------------------------------------------

USER_NOT_FOUND = (550, "Error. User not found")
EMAIL_REQUIRED = (501, "Error. Email is required")
INVALID_EMAIL = (553, "Error. Invalid Email address format")
UNKNOWN_QUERY = (502, "Error. Unknown query message")
RELAY_REFUSED = (551, "Error. Relay is refused")
LOOPS_BACK = (551, "Error. Mail loops back to me by MX problem")
AUTH_FAILED = (535, "authorization failed")
FILE_HANDLE = (451, "Error. File handle not assigned")
FILESYSTEM_ERROR = (421, "filesystem error. Close session")
ACCOUNT_LOCKED = (450, "Error. User account is locked. Try again")
ACCOUNT_UNREADABLE = (450, "Error. Can not read user account. Try again")
ACCOUNT_INACTIVE = (450, "Error. User account is inactive")
OVER_QTY = (552, "Error. User account over max mail qty")
OVER_CAPA = (552, "Error. User account over max mail capa")
OVER_WORK_SIZE = (552, "Error. Mail size over max system work size")
LOOKS_SPAM = (421, "Error. This mail looks like a spam")
LOOKS_VIRUS = (421, "Error. This mail looks like a virus")
LOOKS_JUNK_BY_USER = (421, "Error. This mail looks like a junk by user")
LOOKS_SPAM_BY_USER = (421, "Error. This mail looks like a spam by user")
OUTLAW_TEMPLATE = ("Error. This mail looks like an outlaw. Set SPF for sender "
                   "domain or Register your SMTP IP {ip} on me. {admin}")


def looks_outlaw(ip, admin):
    """The outlaw 421 with the sending IP and AdminID@MailserverDomain."""
    return (421, OUTLAW_TEMPLATE.format(ip=ip, admin=admin))


# Our own, where §36 is silent (RFC 5321 texts).
TEMPORARY_FAILURE = (451, "Error. Local error in processing. Try again")
LINE_TOO_LONG = (500, "Error. Line too long")
TOO_MANY_RECIPIENTS = (452, "Error. Too many recipients")
SHUTTING_DOWN = (421, "Service shutting down. Close session")
IDLE_TIMEOUT = (421, "Timeout. Close session")

# ---- [수신] receiving: log lines ---------------------------------------------

LOG_RCPT_TO = "RCPT TO"
LOG_USER_NOT_FOUND = "User not found"
LOG_EMAIL_EMPTY = "Email address empty"
LOG_INVALID_EMAIL = "Invalid Email address"
LOG_RECEIVER_NOT_DEFINED = "Receiver not defined"
LOG_UNKNOWN_MESSAGE = "Unknown message"
LOG_AUTH_NULL_USER = "Auth required but null user"
LOG_AUTH_CONVERT_USER = "Auth required but cannot convert username"
LOG_AUTH_UNKNOWN_USER = "Auth required but unknown user"
LOG_AUTH_INVALID_USER = "Auth required but invalid user"
LOG_AUTH_NULL_PASSWORD = "Auth required but null password"
LOG_AUTH_CONVERT_PASSWORD = "Auth required but cannot convert password"
LOG_AUTH_LOCKED_USER = "Auth required but locked user"
LOG_AUTH_DISALLOWED_USER = "Auth required but disallowed user"
LOG_AUTH_INVALID_PASSWORD = "Auth required but invalid password"
LOG_AUTH_ACCEPTED = "Auth is accepted"
LOG_RELAY_REFUSED = "Relay is refused"
LOG_RELAY_WORK_LIMIT = "Relaymail receive but work limit"
LOG_RELAY_SUCCESS = "Relaymail receive success"
LOG_LOOPS_BACK = "mail loops back to me"
LOG_LOCKED_HEAD = "Mail receive but locked head"
LOG_CHECKED_SPF = "checked SPF IP"
LOG_CHECKED_MX = "checked MX IP"
LOG_CHECKED_A = "checked A IP"
LOG_RECEIVE_OUTLAW = "Mail receive but outlaw"
LOG_RECEIVE_SPAM = "Mail receive but spam"
LOG_RECEIVE_VIRUS = "Mail receive but virus"
LOG_SENDER_OUTLAW = "Sender is outlaw"
LOG_CANNOT_CREATE = "Can not create new file"
LOG_LOCKED_USER = "Mail receive but locked user"
LOG_UNKNOWN_USER = "Mail receive but unknown user"
LOG_NOT_IN_ALLOW = "Mail receive but not in user allow"
LOG_USER_IP_DENY = "Mail receive but user ip deny"
LOG_USER_SPAM_FILTER = "Mail receive but user spam filter"
LOG_USER_REFUSE = "Mail receive but user refuse"
LOG_CLASSIFIED_OUTLAW = "Mail classified as outlaw"
LOG_CLASSIFIED_SPAM = "Mail classified as spam"
LOG_CLASSIFIED_VIRUS = "Mail classified as virus"
LOG_USER_FILTER = "Mail receive but user filter"
LOG_INVALID_USER = "Mail receive but invalid user"
LOG_LICENSE_OVER = "Mail receive but license over"
LOG_QTY_LIMIT = "Mail receive but qty limit"
LOG_CAPA_LIMIT = "Mail receive but capa limit"
LOG_WORK_LIMIT = "Mail receive but work limit"
LOG_RECEIVE_SUCCESS = "Mail receive success"

# ---- [발송] sending: log lines -----------------------------------------------

LOG_FIRST_MESSAGE_ERROR = "First message error"
LOG_HELO_ERROR = "HELO response error"
LOG_MAIL_ERROR = "MAIL response error"
LOG_ALL_RCPT_ERROR = "All RCPT response error"
LOG_DATA_ERROR = "DATA response error"
LOG_WRITE_DATA_ERROR = "Write data error"
LOG_NORMAL_PARTIAL_SUCCESS = "Normal Mail send partial success"
LOG_AUTO_PARTIAL_SUCCESS = "Auto Mail send partial success"
LOG_DATA_PERIOD_ERROR = "DATA Period response error"
LOG_QUIT_ERROR = "QUIT response error"
LOG_LIMITED_DOMAIN = "Limited receiver domain"
LOG_TIME_OVER = "Send mail time over"
LOG_CATCH_SEND = "Catch send mail"
LOG_NO_MX = "Can not find MX"
LOG_CONNECTING = "Connecting"
LOG_CONNECT_FAIL = "Connect fail"
LOG_SOCKET_FAULT = "Socket fault"
LOG_CANNOT_TALK = "Can not talk with SMTP server"
LOG_CANNOT_CONNECT = "Can not connect to SMTP server"
LOG_TIMEOUT = "Timeout"

# ---- [발송] bounce reasons (numbered, Korean and English, as §36) ----------

BOUNCE_LIMITED_DOMAIN = "8 제한된 수신자임 Limited receiver domain"
BOUNCE_TIME_OVER = "1 전송 대기시간 초과"
BOUNCE_NO_MX = "2 DNS 응답 오류 (메일서버를 찾을 수 없음) Invalid domain"
BOUNCE_CONNECT_FAIL = "0 알 수 없는 오류 Invalid SMTP server"
BOUNCE_NO_RESPONSE = "451 서버오류 No response"
BOUNCE_NO_CONNECTION = "451 서버오류 No connection"

# ---- Korean second lines of the multi-recipient replies (§36) --------------

KO_MAILBOX_LOCKED = "우편함이 잠겨 있음"
KO_SERVICE_UNAVAILABLE = "서비스 활용 불가능"
KO_STORAGE_EXCEEDED = "클라이언트가 할당 저장용량을 초과했음"
