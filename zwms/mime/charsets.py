# -*- test-case-name: tests.test_webmail_read -*-
"""
Text out of real-world mail bytes (SPEC W2): charsets as Korean mail
labels them (EUC-KR, ks_c_5601-1987, CP949, ISO-2022-KR, UTF-8 …), RFC 2047
encoded words (split multi-byte characters across words included) and raw
8-bit headers.  Nothing here raises on bad input: an unknown or lying
charset gives replacement characters, never an exception.
"""

import base64
import binascii
import codecs
import quopri
import re

#: Labels Korean mail uses for what Python calls cp949 (a superset of
#: EUC-KR: Outlook's "ks_c_5601-1987" is really CP949, and so is most
#: mail labelled euc-kr, which may hold the extended Hangul syllables).
ALIASES = {
    "euc-kr": "cp949", "euc_kr": "cp949", "euckr": "cp949", "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949", "ks_c_5601-1989": "cp949", "ksc5601": "cp949", "ksc_5601": "cp949",
    "x-windows-949": "cp949", "windows-949": "cp949", "ms949": "cp949", "uhc": "cp949",
    "korean": "cp949", "iso-2022-kr": "iso2022_kr", "csiso2022kr": "iso2022_kr",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "us-ascii": "utf-8", "ascii": "utf-8",
    "x-unknown": "", "unknown-8bit": "", "x-user-defined": "",
}


def codec_for(charset):
    """The Python codec for a charset label, or "" when unknown/unusable."""
    label = (charset or "").strip().strip('"').lower()
    label = ALIASES.get(label, label)
    if not label:
        return ""
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return ""
    # Text codecs only (a label like "rot13" or "base64" is no charset).
    if name in ("rot-13", "base64", "hex", "quopri", "uu", "zlib", "bz2"):
        return ""
    return name


def guess(data):
    """Unlabelled bytes: UTF-8 when they are valid UTF-8, else CP949."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x1b$)C" in data:
        return data.decode("iso2022_kr", "replace")
    return data.decode("cp949", "replace")


def decode_bytes(data, charset=None):
    """
    Bytes as text in the labelled charset; unknown label: guessed; bytes
    the charset does not know: U+FFFD.  Never raises.
    """
    if isinstance(data, str):
        return data
    data = bytes(data or b"")
    codec = codec_for(charset)
    if not codec:
        return guess(data)
    if codec == "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            # Labelled UTF-8 (or ASCII) but 8-bit Korean inside: common.
            return guess(data)
    try:
        return data.decode(codec, "replace")
    except Exception:
        return data.decode("utf-8", "replace")


def raw_header(value):
    """
    A header as the parser gave it (compat32 keeps 8-bit bytes as
    surrogate escapes) back to text: unlabelled 8-bit headers are guessed.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        # An email.header.Header object (compat32, undecodable header).
        value = str(value)
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return guess(value.encode("ascii", "surrogateescape"))
    except UnicodeEncodeError:
        return value


_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding, text):
    if encoding in "bB":
        text = re.sub(r"[^A-Za-z0-9+/]", "", text)
        text += "=" * (-len(text) % 4)
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return b""
    return quopri.decodestring(text.replace("_", " ").encode("ascii", "replace"), header=True)


def decode_header(value):
    """
    An RFC 2047 header to text.  Adjacent encoded words of one charset
    are joined as bytes before decoding (senders split a Hangul syllable's
    bytes across two words); the white space between encoded words goes.
    """
    text = raw_header(value)
    out, pending, pending_cs = [], b"", None
    pos = 0
    for m in _WORD.finditer(text):
        between = text[pos:m.start()]
        if between.strip() or pending_cs is None:
            if pending:
                out.append(decode_bytes(pending, pending_cs))
                pending = b""
            out.append(between)
            pending_cs = None
        charset = m.group(1)
        data = _word_bytes(m.group(2), m.group(3))
        if pending_cs is not None and codec_for(charset) != codec_for(pending_cs):
            out.append(decode_bytes(pending, pending_cs))
            pending = b""
        pending += data
        pending_cs = charset
        pos = m.end()
    if pending:
        out.append(decode_bytes(pending, pending_cs))
    out.append(text[pos:])
    result = "".join(out)
    # Folded headers: one line, no control characters.
    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f]+", " ", re.sub(r"\r?\n[ \t]+", " ", result)).strip()
