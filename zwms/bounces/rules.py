# -*- test-case-name: tests.test_bounces -*-
"""
Return-mail categories (SPEC W8, Nmail VI): the patterns that put a remote
server's reply into a category, and the advice shown for each, in Korean
and English.

The order of L{RULES} matters: the specific causes (a loop, a virus, a
portal's IP block, an RBL) are tried before the generic ones (unknown user,
temporary failure), because a portal's block often carries a 5.1.1-looking
code or the word "user".  The RFC 3463 status code decides only when no
text pattern matched (L{by_status}).
"""

import re

TEMPORARY = "temporary"
UNKNOWN_USER = "unknown_user"
BAD_DOMAIN = "bad_domain"
DISABLED = "disabled"
MAILBOX_FULL = "mailbox_full"
SPAM = "spam"
RELAY_DENIED = "relay_denied"
IP_BLOCKED = "ip_blocked"
RBL = "rbl"
VIRUS = "virus"
ATTACHMENT = "attachment"
LOOP = "loop"
SIZE = "size"
OTHER = "other"

#: Every category, in the order the help page lists them (Nmail VI).
CATEGORIES = (TEMPORARY, UNKNOWN_USER, BAD_DOMAIN, DISABLED, MAILBOX_FULL, SPAM,
              RELAY_DENIED, IP_BLOCKED, RBL, VIRUS, ATTACHMENT, LOOP, SIZE, OTHER)

#: category -> (Korean title, English title, Korean advice, English advice)
ADVICE = {
    TEMPORARY: (
        "일시적인 전송 실패",
        "Temporary delivery failure",
        "받는 메일서버가 응답하지 않거나 일시적인 오류로 정해진 시간 안에 전달하지 못했습니다. "
        "받는 사람의 주소가 맞는지 확인한 다음 잠시 후 다시 보내 보세요. "
        "같은 곳으로 계속 실패하면 상대방 메일서버 관리자에게 문의하세요.",
        "The receiving server did not answer or failed for a while, and the message could "
        "not be delivered in time. Check the address and send it again later; if mail to "
        "this place keeps failing, ask the recipient's mail administrator.",
    ),
    UNKNOWN_USER: (
        "받는 사람이 존재하지 않음",
        "Recipient does not exist",
        "받는 메일서버에 그런 계정이 없습니다. 받는 사람의 메일 주소(아이디의 철자, "
        "점과 밑줄, 도메인)를 다시 확인하고 올바른 주소로 보내세요.",
        "The receiving server has no such mailbox. Check the spelling of the address "
        "(the part before @, dots and underscores, the domain) and send it to the "
        "right address.",
    ),
    BAD_DOMAIN: (
        "받는 도메인을 찾을 수 없음",
        "Recipient domain not found",
        "받는 사람 주소의 도메인(@ 뒤)에 메일서버가 없거나 도메인이 존재하지 않습니다. "
        "도메인 철자를 확인하세요. 맞다면 상대방 도메인의 DNS(MX) 설정 문제이니 "
        "상대방에게 다른 방법으로 알려 주세요.",
        "The domain after @ has no mail server or does not exist. Check its spelling; "
        "if it is right, the recipient's DNS (MX) is broken: tell them another way.",
    ),
    DISABLED: (
        "받는 사람 계정이 사용 중지됨",
        "Recipient account disabled",
        "받는 사람의 계정이 휴면, 정지 또는 해지 상태여서 메일을 받을 수 없습니다. "
        "다른 연락 방법으로 새 주소를 확인하세요.",
        "The recipient's account is dormant, suspended or closed and takes no mail. "
        "Ask the recipient for a current address another way.",
    ),
    MAILBOX_FULL: (
        "받는 사람의 메일함 용량 초과",
        "Recipient's mailbox is full",
        "받는 사람의 메일함이 가득 찼습니다. 받는 사람이 메일을 정리해야 받을 수 있으니 "
        "다른 방법으로 알리고 나중에 다시 보내세요. 큰 첨부파일은 줄여서 보내세요.",
        "The recipient's mailbox is full. They must delete mail before they can receive "
        "more: tell them another way and send again later, with smaller attachments.",
    ),
    SPAM: (
        "스팸으로 차단됨",
        "Refused as spam",
        "받는 사람의 수신거부 설정이나 상대 서버의 스팸 필터가 이 메일을 스팸으로 "
        "판단했습니다. 제목과 본문에 광고성 문구나 짧은 주소(URL)가 많지 않은지 확인하고, "
        "보내는 도메인의 SPF/DKIM 설정을 점검하세요. 받는 사람에게 수신 허용을 요청하세요.",
        "The recipient's block list or the remote spam filter judged this message spam. "
        "Avoid advertising phrases and many short links, check the SPF/DKIM records of "
        "your domain, and ask the recipient to allow your address.",
    ),
    RELAY_DENIED: (
        "발송 권한 없음 (릴레이 거부)",
        "Relay denied",
        "메일을 보낼 권한이 없거나 메일서버 설정이 맞지 않습니다. 메일 프로그램에서 "
        "보내는 메일 서버(SMTP) 인증을 켜고 아이디와 비밀번호를 확인하세요. 받는 쪽 "
        "서버가 그 도메인의 메일을 받지 않는다면 상대방 관리자에게 문의하세요.",
        "You may not send through this server, or a server is misconfigured. Turn on "
        "outgoing (SMTP) authentication in your mail program and check the ID and "
        "password; if the receiving server does not accept mail for that domain, ask "
        "its administrator.",
    ),
    IP_BLOCKED: (
        "대형 포털이 보내는 서버의 IP를 차단함",
        "Sending server's IP blocked by the portal",
        "짧은 시간에 많은 메일을 보냈거나 스팸 신고가 있어 상대 포털(네이버, 다음, "
        "야후, 구글 등)이 이 메일서버의 IP를 차단했습니다. 보통 24시간 뒤 풀리며, 관리자는 "
        "포털의 화이트도메인/IP 등록(예: realip.naver.com) 절차를 밟고 대량 발송을 "
        "나누어 보내야 합니다.",
        "The portal (Naver, Daum, Yahoo, Google ...) blocked this server's IP after too "
        "many messages in a short time or spam complaints. It is usually lifted after 24 "
        "hours; the administrator should register the IP with the portal (e.g. "
        "realip.naver.com) and spread bulk mail over time.",
    ),
    RBL: (
        "RBL(스팸 차단 목록)에 등록됨",
        "Listed on an RBL (block list)",
        "이 메일서버의 IP가 공개 스팸 차단 목록(RBL)에 올라 있습니다. 관리자는 응답에 "
        "나온 RBL 사이트에서 등록 사유를 확인하고 원인(열린 릴레이, 감염된 PC)을 없앤 "
        "다음 해제를 요청하세요. 동적 IP(DUL)라면 고정 IP나 ISP의 메일서버를 쓰세요.",
        "This server's IP is on a public block list (RBL). The administrator should look "
        "the IP up on the list named in the reply, remove the cause (open relay, infected "
        "PC) and ask for delisting; on a dynamic IP (DUL), use a static IP or the ISP's "
        "relay.",
    ),
    VIRUS: (
        "바이러스로 차단됨",
        "Refused as a virus",
        "상대 서버가 이 메일(주로 첨부파일)에서 바이러스를 찾았습니다. 보낸 PC를 백신으로 "
        "검사하고, 깨끗한 파일로 다시 보내세요.",
        "The receiving server found a virus in the message, usually in an attachment. "
        "Scan the sending PC and send a clean file again.",
    ),
    ATTACHMENT: (
        "허용되지 않는 첨부파일",
        "Attachment type not allowed",
        "상대 서버(예: 구글)는 실행 파일(.exe, .scr, .js 등)이나 그런 파일이 든 압축 파일을 "
        "받지 않습니다. 파일을 웹폴더나 클라우드에 올리고 링크를 보내세요.",
        "The receiving server (e.g. Google) refuses executables (.exe, .scr, .js ...) "
        "and archives holding them. Put the file in a web folder or cloud storage and "
        "send a link.",
    ),
    LOOP: (
        "메일 순환(루프) 발생",
        "Mail loop",
        "받는 사람이나 보내는 사람의 전달(포워딩)·자동응답 설정, 또는 MX 설정 때문에 "
        "메일이 서버 사이를 돌고 있습니다. 자신과 상대의 전달 설정을 확인하고, 관리자는 "
        "MX와 도메인 설정을 점검하세요.",
        "The message went round between servers because of a forward or auto-reply "
        "setting on either side, or a wrong MX. Check both forwarding settings; the "
        "administrator should check the MX and domain settings.",
    ),
    SIZE: (
        "메일 크기 제한 초과",
        "Message too large",
        "받는 서버가 허용하는 최대 메일 크기를 넘었습니다. 첨부파일을 줄이거나 나누어 "
        "보내고, 큰 파일은 웹폴더에 올려 링크로 보내세요.",
        "The message is larger than the receiving server accepts. Send smaller or split "
        "attachments, or put big files in a web folder and send a link.",
    ),
    OTHER: (
        "기타 오류",
        "Other error",
        "아래의 상대 서버 응답을 확인하세요. 원인을 알기 어려우면 이 반송 메일을 "
        "관리자에게 전달하세요.",
        "Read the remote server's reply below. If the cause is unclear, forward this "
        "returned mail to your administrator.",
    ),
}


def _rx(*patterns):
    return re.compile("|".join(patterns), re.IGNORECASE)


#: (category, pattern) tried in order on the reply text.
RULES = (
    (LOOP, _rx(r"mail loop", r"loop(s|ing)? (back|detected)", r"routing loop",
               r"too many hops", r"hop count exceeded", r"too many (received|delivered-to)",
               r"\b5\.4\.6\b", r"메일 ?루프", r"순환")),
    (VIRUS, _rx(r"virus", r"malware", r"infected", r"trojan", r"worm\b", r"바이러스",
                r"악성 ?코드")),
    (ATTACHMENT, _rx(r"illegal attachment", r"attachment.{0,40}(not allowed|prohibited|"
                     r"blocked|refused)", r"(executable|blocked) (file|attachment)",
                     r"potential security issue", r"file type.{0,20}not allowed",
                     r"첨부 ?파일.{0,20}(허용|차단|금지)", r"실행 ?파일")),
    (RBL, _rx(r"\brbl\b", r"\bdnsbl\b", r"spamhaus", r"spamcop", r"sorbs", r"dsbl\.org",
              r"mail-abuse", r"barracuda", r"\bin DUL\b", r"black ?list", r"block ?list(ed)?",
              r"listed (at|on|in)", r"\bspews\b", r"kisarbl", r"rbl\.", r"블랙리스트")),
    (IP_BLOCKED, _rx(r"realip\.naver", r"cleanip", r"IP_CONTROL", r"too many (e-?mails|messages|"
                     r"mails|connections)", r"send too many", r"sent too many",
                     r"your ip.{0,40}(filtered|blocked|banned)", r"ip.{0,30}is filtered",
                     r"access was denied", r"\[#4\.16\.\d", r"\[TS0\d\]", r"\[TSS0\d\]",
                     r"temporarily deferred", r"unusual rate", r"rate limit",
                     r"not allowed to send", r"IP.{0,20}(차단|제한)", r"발송량", r"대량 ?발송",
                     r"poor reputation", r"\bRP-00\d\b", r"connection refused by policy")),
    (SIZE, _rx(r"size exce", r"exceeds?.{0,30}(size|limit)", r"too (large|big)",
               r"message size", r"size limit", r"maximum (message )?size", r"\b5\.3\.4\b",
               r"\b5\.2\.3\b", r"메일 ?크기", r"크기.{0,10}(초과|제한)")),
    (MAILBOX_FULL, _rx(r"mailbox (is )?full", r"over ?quota", r"quota exceeded",
                       r"exceeded storage", r"storage allocation", r"insufficient (system )?storage",
                       r"mailbox.{0,20}(exceeded|over).{0,20}(size|limit|quota)", r"full mailbox",
                       r"disk quota", r"\b5\.2\.2\b", r"\b4\.2\.2\b",
                       r"(메일함|편지함|사서함|메일박스).{0,15}(용량|가득|초과)", r"용량.{0,10}초과",
                       r"용량이 부족")),
    (DISABLED, _rx(r"disabled", r"inactive", r"suspended", r"discontinued", r"deactivated",
                   r"account.{0,20}(locked|closed|expired|blocked)", r"dormant",
                   r"no longer (active|in use|available)", r"\b5\.2\.1\b",
                   r"휴면", r"사용 ?중지", r"정지(된|되었)", r"비활성", r"해지(된|되었)",
                   r"중지된 (계정|사용자)")),
    (SPAM, _rx(r"spam", r"junk", r"unsolicited", r"reject list", r"blocked by (the )?recipient",
               r"your message was rejected", r"mail is denied", r"content (rejected|filter)",
               r"\b5\.7\.26\b", r"dmarc", r"not authenticated", r"suspicious", r"수신 ?거부",
               r"스팸", r"광고")),
    (RELAY_DENIED, _rx(r"relay", r"not permitted to send", r"not (a )?local (user|recipient|domain)",
                       r"we do not (accept|serve)", r"not accept mail for",
                       r"authentication required", r"sender verify failed",
                       r"limited receiver domain", r"제한된 수신자", r"발송 ?권한",
                       r"릴레이")),
    (BAD_DOMAIN, _rx(r"host or domain name not found", r"domain (not found|does not exist)",
                     r"no mx", r"can not find mx", r"cannot find mx", r"invalid domain",
                     r"nxdomain", r"no such domain", r"unrouteable", r"unroutable",
                     r"dns 응답 오류", r"도메인.{0,10}(없|존재하지)", r"\b5\.1\.2\b",
                     r"mx record", r"dns error")),
    (UNKNOWN_USER, _rx(r"user unknown", r"unknown user", r"no such (user|mailbox|recipient|person)",
                       r"mailbox unavailable", r"mailbox not found", r"does not exist",
                       r"doesn't exist", r"doesn't have a", r"does not have a",
                       r"couldn't be found", r"could not be found", r"not found",
                       r"address rejected", r"invalid recipient", r"unknown recipient",
                       r"recipient unknown", r"bad destination mailbox", r"unknown address",
                       r"no mailbox", r"not our customer", r"addressee unknown",
                       r"address not found", r"recipnotfound",
                       r"\b5\.1\.1\b", r"\b5\.1\.0\b", r"\b5\.1\.10\b",
                       r"존재하지 않", r"없는 (사용자|아이디|계정|주소|메일)", r"찾을 수 없",
                       r"(계정|아이디|사용자).{0,10}없")),
    (TEMPORARY, _rx(r"temporar", r"try again later", r"delivery attempts",
                    r"end of socket", r"socket", r"invalid server address", r"bad server response",
                    r"timed? ?out", r"connection (refused|reset|lost)", r"no response",
                    r"no connection", r"invalid smtp server", r"time over",
                    r"resources? (temporarily )?unavailable", r"service unavailable",
                    r"greylist", r"deferred", r"retry timeout", r"could not connect",
                    r"전송 대기시간", r"일시적", r"서버오류", r"\b417\b", r"\b4\.\d\.\d+\b")),
)


def by_text(text):
    """The first category whose pattern matches C{text}, or None."""
    if not text:
        return None
    for category, pattern in RULES:
        if pattern.search(text):
            return category
    return None


#: RFC 3463 status (class.subject.detail, or class.subject) -> category.
_STATUS = {
    "5.1.1": UNKNOWN_USER, "5.1.0": UNKNOWN_USER, "5.1.10": UNKNOWN_USER,
    "5.1.6": UNKNOWN_USER, "5.1.2": BAD_DOMAIN, "5.2.1": DISABLED,
    "5.2.2": MAILBOX_FULL, "4.2.2": MAILBOX_FULL, "5.2.3": SIZE, "5.3.4": SIZE,
    "5.4.6": LOOP, "4.4.6": LOOP, "5.7.1": RELAY_DENIED, "5.4.4": BAD_DOMAIN,
    "5.7.0": SPAM,
}


def by_status(status):
    """The category an RFC 3463 status implies alone, or None."""
    if not status:
        return None
    if status in _STATUS:
        return _STATUS[status]
    if status.startswith("4."):
        return TEMPORARY
    return None


_LEAD = re.compile(r"^\s*([245]\d\d)([ -])(?:([245]\.\d{1,3}\.\d{1,3})\s)?")


def unwrap(text):
    """
    A multi-line reply joined on one line ("552-5.7.0 a potential 552-5.7.0
    security issue") without the repeated code, so that phrases split over
    the reply's lines match ("a potential security issue").
    """
    m = _LEAD.match(text or "")
    if not m:
        return text or ""
    code, detail = m.group(1), m.group(3)
    repeat = r"\s+%s[ -]%s" % (code, r"%s\s" % re.escape(detail) if detail else "")
    return text[:m.end()] + re.sub(repeat, " ", text[m.end():])


def classify(texts, status=""):
    """
    The category for a failure: the first of C{texts} (most specific first,
    e.g. the remote reply, then the whole explanation) that a rule matches,
    else the status code, else OTHER.  A 4.x.x status with nothing more
    specific than an unknown-user pattern stays TEMPORARY: the remote server
    said to try again.
    """
    for text in texts:
        category = by_text(unwrap(text))
        if category is not None:
            if status.startswith("4.") and category in (UNKNOWN_USER, BAD_DOMAIN, OTHER):
                return TEMPORARY
            return category
    return by_status(status) or OTHER
