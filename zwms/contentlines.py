"""
Content lines shared by vCard (RFC 6350) and iCalendar (RFC 5545): TEXT
escaping and folding at 75 octets.
"""


def escape_text(text):
    """A TEXT value escaped (RFC 5545 §3.3.11, RFC 6350 §3.4)."""
    return (str(text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\n").replace("\n", "\\n"))


def fold_line(line):
    """One content line as CRLF bytes, folded at 75 octets, never inside a UTF-8 character."""
    raw = line.encode("utf-8")
    parts, limit = [], 75
    while len(raw) > limit:
        cut = limit
        while cut > 0 and (raw[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(raw[:cut])
        raw = raw[cut:]
        limit = 74  # continuation lines start with a space
    parts.append(raw)
    return b"\r\n ".join(parts) + b"\r\n"
