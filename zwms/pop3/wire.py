# -*- test-case-name: tests.test_pop3_protocol -*-
"""
How a stored message goes out over POP3 (RFC 1939 §3, §11).

Twisted's POP3 server transforms each 16 KiB chunk on its own: CRLF files
go out as CR CR LF and a "." line that starts exactly at byte 16384 is not
dot-stuffed, so the client sees a truncated message (TWISTED-NOTES.md).
Here the whole message is made CRLF-clean and dot-stuffed once, before any
chunking, and the chunk transform does nothing.

Sizes (LIST, STAT, the RETR +OK line) are those of the message as the
client will store it: CRLF line ends, a final CRLF, no dot-stuffing
(RFC 1939 §11: "lines in the message which start with the termination
octet need not (and must not) be counted twice").
"""

import hashlib
import re

CRLF = b"\r\n"

#: The end of a multi-line response.
TERMINATOR = b".\r\n"

#: RFC 1939 §7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
_UID_RE = re.compile(rb"^[\x21-\x7e]{1,70}$")


def normalise(data):
    """
    Make every line end CRLF (a bare LF or a bare CR becomes CRLF) and end a
    non-empty message with CRLF.

    @param data: the stored bytes of a message.
    @return: the bytes a POP3 client stores.
    """
    crlf = data.count(CRLF)
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        # Bytes-level replaces run at C speed; a regex over a 50 MB message
        # would hold the reactor far longer.
        data = data.replace(CRLF, b"\n").replace(b"\r", b"\n").replace(b"\n", CRLF)
    if data and not data.endswith(CRLF):
        data += CRLF
    return data


def wire_size(data):
    """
    The length of C{normalise(data)}, computed without building it.

    Each bare LF or bare CR grows by one byte; a message that does not end
    with a line end gets a CRLF.
    """
    crlf = data.count(CRLF)
    size = len(data) + (data.count(b"\n") - crlf) + (data.count(b"\r") - crlf)
    if data and not data.endswith((b"\n", b"\r")):
        size += 2
    return size


def pop3_facts(data):
    """
    (POP3 size, plain) of a stored message: its length with CRLF line ends, and
    1 when the stored bytes are exactly what RETR sends before its final
    "." (CRLF-clean, no line starting with a dot), else 0.
    """
    wire = wire_size(data)
    plain = wire == len(data) and not data.startswith(b".") and b"\n." not in data
    return wire, int(plain)


def dot_stuff(data):
    """
    Double the "." that starts any line of CRLF-normalised C{data}, over the
    whole message at once (RFC 1939 §3).
    """
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data


def to_wire(normalised):
    """
    The multi-line body of a RETR or TOP response: dot-stuffed lines and the
    terminating ".".

    @param normalised: the output of L{normalise}.
    """
    return dot_stuff(normalised) + TERMINATOR


def top(normalised, lines):
    """
    The header, the blank line after it and the first C{lines} body lines
    of a CRLF-normalised message (RFC 1939 TOP).  A message without a blank
    line is all header.
    """
    if normalised.startswith(CRLF):
        end = 2
    else:
        end = normalised.find(b"\r\n\r\n")
        if end < 0:
            return normalised
        end += 4
    position = end
    for _ in range(lines):
        nl = normalised.find(CRLF, position)
        if nl < 0:
            return normalised
        position = nl + 2
    return normalised[:position]


def unique_id(name):
    """
    The UIDL of a stored message: its store name when that is a valid
    unique-id (RFC 1939 §7), else a stable hash of the name.

    @param name: C{str} or C{bytes} store name.
    @return: C{bytes}.
    """
    raw = name.encode("utf-8") if isinstance(name, str) else bytes(name)
    if _UID_RE.match(raw):
        return raw
    return hashlib.sha1(raw).hexdigest().encode("ascii")
