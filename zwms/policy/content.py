# -*- test-case-name: tests.test_policy_content -*-
"""
What the checks read from a message (SPEC P4, P5, P6): the decoded
subject, the sender's name and address of the From header, and the file
names of its attachments.

Mail is hostile input: every function here answers something for any bytes
(the hypothesis test in tests/test_policy_content.py feeds it garbage).
RFC 2047 words are decoded in UTF-8 and EUC-KR (read as CP949, its
superset, which Korean mailers really send under that name); raw 8-bit
headers are tried as UTF-8, then CP949.  Attachment names come from
Content-Disposition C{filename} (RFC 2231, continuations and charsets
included) and Content-Type C{name}, in every part of nested multiparts and
attached messages.
"""

import email.header
import email.parser
import email.utils
import re
from email import policy as email_policy

#: Charset names read as CP949 (EUC-KR's superset, also "Unified Hangul").
KOREAN = {"euc-kr", "euc_kr", "euckr", "ks_c_5601-1987", "ks_c_5601", "ksc5601",
          "ks_c_5601_1987", "korean", "cp949", "uhc", "x-windows-949", "windows-949"}

#: Most parts looked at, and deepest nesting, so that a crafted message
#: cannot make the virus check slow (the rest is scanned raw).
MAX_PARTS = 1000
MAX_DEPTH = 50

NAME_PARAM_RE = re.compile(
    rb"""(?:file)?name\*?(?:\*\d+\*?)?\s*=\s*(?:"([^"\r\n]*)"|([^;\s"]+))""", re.I)


def _codec(charset):
    charset = (charset or "").strip().lower()
    if charset in KOREAN:
        return "cp949"
    if charset in ("", "unknown-8bit", "x-unknown"):
        return None
    return charset


def decode_bytes(raw, charset=None):
    """Bytes of a header or parameter in C{charset}; UTF-8 then CP949 if unknown."""
    codec = _codec(charset)
    if codec:
        try:
            return raw.decode(codec)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp949", errors="replace")


def _unescape(text):
    """A header str from the compat32 parser: 8-bit bytes back, then decoded."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        return decode_bytes(text.encode("utf-8", "surrogateescape"))
    return text


def decode_words(value):
    """
    A header value with its RFC 2047 encoded words decoded; never raises.
    """
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    text = _unescape(str(value))
    if "=?" not in text:
        return text
    try:
        parts = email.header.decode_header(text)
    except Exception:  # noqa: BLE001 - malformed words: keep the raw text
        return text
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return "".join(out)


def _unfold(text):
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()


class Content:
    """
    The message as the checks see it.  Nothing is parsed until a check
    asks: the headers when L{subject}, L{from_name} or L{from_address} is
    first read, the MIME tree when L{attachments} is first asked for (so a
    server with no content rule on parses nothing; profiled: the header
    parse was 5 % of receiving a 1 KB message).
    """

    def __init__(self, data):
        self.data = data if isinstance(data, bytes) else bytes(data)
        self._attachments = None
        self._headers = None

    @property
    def subject(self):
        """The decoded Subject, unfolded ("" if none)."""
        return self._parsed()[0]

    @property
    def from_name(self):
        """The decoded display name of From ("" if none)."""
        return self._parsed()[1]

    @property
    def from_address(self):
        """The address of From, lower case ("" if none)."""
        return self._parsed()[2]

    def _parsed(self):
        if self._headers is None:
            self._headers = self._parse()
        return self._headers

    def _parse(self):
        try:
            headers = email.parser.BytesHeaderParser(policy=email_policy.compat32).parsebytes(
                header_block(self.data))
            # raw_items(): the values as parsed, 8-bit bytes still escaped
            # (get() would turn them into U+FFFD through a Header).
            raw = {}
            for name, value in headers.raw_items():
                raw.setdefault(name.lower(), value)
            subject = raw.get("subject", "")
            sender = raw.get("from", "")
        except Exception:  # noqa: BLE001 - the header parser is lenient; be sure
            subject = sender = ""
        return (_unfold(decode_words(subject)),) + parse_from(sender)

    def attachments(self):
        """The file names of every part that has one (decoded), a tuple."""
        if self._attachments is None:
            try:
                names = _walk_names(self.data)
            except Exception:  # noqa: BLE001 - RecursionError, parser bugs
                names = None
            if names is None:
                names = _scan_names(self.data)
            self._attachments = tuple(names)
        return self._attachments


def header_block(data):
    """The header lines of a message (the parser would decode all of it)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n", 0, crlf if crlf >= 0 else len(data))
    ends = [i for i in (crlf, lf) if i >= 0]
    return data[:min(ends) + 2] if ends else data


def parse_from(value):
    """(name, address) of a From header value, decoded, never raising."""
    try:
        raw = _unescape(str(value or ""))
        name, address = email.utils.parseaddr(_unfold(raw))
    except Exception:  # noqa: BLE001
        return "", ""
    return _unfold(decode_words(name)), address.strip().lower()


def _part_names(part):
    names = []
    for getter in (part.get_filename, lambda: part.get_param("name")):
        try:
            value = getter()
        except Exception:  # noqa: BLE001 - bad RFC 2231 values
            continue
        if isinstance(value, tuple):  # an RFC 2231 triple get_param left alone
            try:
                value = email.utils.collapse_rfc2231_value(value)
            except Exception:  # noqa: BLE001
                value = value[-1]
        if value:
            name = _unfold(decode_words(value))
            if name and name not in names:
                names.append(name)
    return names


def _walk_names(data):
    """
    File names by walking the MIME tree without recursion (a deep tree must
    not hit the interpreter's limit); None when the tree is too big, so the
    caller scans the raw bytes instead.
    """
    message = email.parser.BytesParser(policy=email_policy.compat32).parsebytes(data)
    names, stack, seen = [], [(message, 0)], 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS or depth > MAX_DEPTH:
            return None
        for name in _part_names(part):
            if name not in names:
                names.append(name)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, depth + 1) for p in reversed(payload) if hasattr(p, "get_payload"))
    return names


def _scan_names(data):
    """
    The fallback: every name= / filename= parameter in the raw bytes
    (stricter than walking: text that only talks about a file name counts
    too, which is right for a message too odd to parse).
    """
    names = []
    for m in NAME_PARAM_RE.finditer(data):
        raw = m.group(1) if m.group(1) is not None else m.group(2)
        if raw.count(b"'") >= 2 and b"*=" in m.group(0).replace(b" ", b""):
            # RFC 2231 charset'lang'%XX
            charset, _, rest = raw.split(b"'", 2)
            text = decode_bytes(_percent_decode(rest), charset.decode("ascii", "replace"))
        else:
            text = decode_words(decode_bytes(raw))
        if text and text not in names:
            names.append(text)
    return names


def _percent_decode(raw):
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
