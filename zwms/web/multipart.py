# -*- test-case-name: tests.test_webmail_webfolder -*-
"""
Streaming multipart/form-data (RFC 7578) for big uploads: the web folder
(/mail/webfolder) and the form mail (/formmail); the other webmail uploads
(compose, boards, bulk lists, contacts import) are left unparsed here too.

Twisted's C{Request.requestReceived} reads a whole multipart body into
memory to fill C{request.args} (C{_getMultiPartArgs}), whatever its size.
L{StreamingRequest} (the C{requestFactory} of the web Site) skips that for
the paths in L{STREAMED_PATHS}: the body stays where Twisted put it (a
temp file once it passes 100 kB), and the page reads it with
L{iter_parts} in a worker thread, a chunk at a time, so a 200 MB upload
never sits in memory and the reactor never blocks.

C{iter_parts(fileobj, content_type)} yields one L{Part} per form field, in
the order the browser sent them; a part is read with C{part.chunks()}
(file data) or C{part.text(limit)} (a field), and whatever the caller
leaves unread is skipped before the next part.
"""

import re
import urllib.parse

from twisted.web import server

from zwms.errors import InvalidValue

#: Request paths whose multipart bodies Twisted must not parse itself.
STREAMED_PATHS = (b"/mail/webfolder/", b"/formmail",
                  # These pages parse their own uploads in a thread
                  # (zwms.web.webmail.state.upload_form).
                  b"/mail/compose/", b"/mail/boards/", b"/mail/bulk/",
                  b"/mail/contacts/")
#: Bytes read from the body at a time.
CHUNK = 64 * 1024
#: Most bytes of one part's header block.
MAX_HEADER = 16 * 1024
#: Most parts in one form.
MAX_PARTS = 1000
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class StreamingRequest(server.Request):
    """
    A Site request that leaves multipart bodies of L{STREAMED_PATHS}
    unparsed (C{request.args} then holds only the query string).
    """

    def requestReceived(self, command, path, version):
        ctype = self.requestHeaders.getRawHeaders(b"content-type") or [b""]
        if (ctype[0].lower().lstrip().startswith(b"multipart/form-data")
                and path.split(b"?", 1)[0].startswith(STREAMED_PATHS)):
            self._parsePOSTFormSubmission = False
        return server.Request.requestReceived(self, command, path, version)


def is_multipart(request):
    """True when the request's body is multipart/form-data."""
    ctype = request.getHeader(b"content-type") or b""
    return ctype.lower().lstrip().startswith(b"multipart/form-data")


def boundary_of(content_type):
    """
    The boundary of a multipart/form-data Content-Type (bytes or text).
    @raise InvalidValue: not multipart/form-data or no usable boundary.
    """
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise InvalidValue("the form was not sent as multipart/form-data")
    params = _params(";" + rest)
    boundary = params.get("boundary", "")
    if not 1 <= len(boundary) <= 200 or any(c in boundary for c in "\r\n"):
        raise InvalidValue("the form has no usable multipart boundary")
    return boundary.encode("latin-1")


def _params(text):
    """{name (lower case): value} of "; a=b; c="d"" (RFC 5987 name*= decoded)."""
    out = {}
    for name, value in _PARAM.findall(text):
        name = name.lower()
        value = value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            # Browsers send backslashes as they are (C:\\dir\\f.txt) and only
            # escape the quote: undo that alone.
            value = value[1:-1].replace('\\"', '"')
        if name.endswith("*"):
            charset, _, encoded = value.partition("'")
            _lang, _, encoded = encoded.partition("'")
            try:
                value = urllib.parse.unquote(encoded, encoding=charset or "utf-8",
                                             errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
            out[name[:-1]] = value      # name*= wins over name=
            continue
        out.setdefault(name, value)
    return out


class _Scanner:
    """A buffered reader of the body with a search for the delimiter."""

    def __init__(self, fileobj):
        self.f = fileobj
        # The body's first delimiter has no CRLF before it: lend it one so
        # that every delimiter reads "\r\n--boundary".
        self.buf = b"\r\n"
        self.eof = False

    def fill(self):
        if self.eof:
            return False
        data = self.f.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def need(self, n):
        while len(self.buf) < n and self.fill():
            pass
        if len(self.buf) < n:
            raise InvalidValue("the form's body ends too early")

    def until(self, marker, limit):
        """The bytes before C{marker} (consumed with it), at most C{limit}."""
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit + len(marker):
                raise InvalidValue("a part of the form has too long a header")
            if not self.fill():
                raise InvalidValue("the form's body ends too early")

    def data(self, delim):
        """Yield the bytes before the next C{delim} (then consumed)."""
        keep = len(delim) - 1
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                if i:
                    yield self.buf[:i]
                self.buf = self.buf[i + len(delim):]
                return
            if len(self.buf) > keep:
                # All but a tail that could begin the delimiter.
                out, self.buf = self.buf[:-keep], self.buf[-keep:]
                yield out
            if not self.fill():
                raise InvalidValue("the form's body ends too early (an upload was cut)")


class Part:
    """
    One part of the form: C{name}, C{filename} (None for a plain field, ""
    for a file input left empty), C{content_type}.
    """

    def __init__(self, scanner, delim, headers):
        self._scanner, self._delim = scanner, delim
        disposition = headers.get("content-disposition", "")
        kind, _, rest = disposition.partition(";")
        if kind.strip().lower() != "form-data":
            raise InvalidValue("a part of the form is not form-data")
        params = _params(";" + rest)
        self.name = params.get("name", "")
        self.filename = params.get("filename")
        self.content_type = headers.get("content-type", "").split(";")[0].strip().lower() \
            or "application/octet-stream"
        self._data = None

    def chunks(self):
        """
        The part's bytes, a chunk at a time: one iterator, so that a reader
        that stops early (a refused upload) leaves the rest to L{skip}.
        """
        if self._data is None:
            self._data = self._scanner.data(self._delim)
        return self._data

    def text(self, limit):
        """
        A field's value as text (UTF-8).
        @raise InvalidValue: longer than C{limit} bytes, or not UTF-8.
        """
        out = []
        size = 0
        for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise InvalidValue("a form field is too long")
            out.append(chunk)
        try:
            return b"".join(out).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue("the form was not sent as UTF-8")

    def skip(self):
        """Drop what is left of the part."""
        for _ in self.chunks():
            pass


def _headers(block):
    out = {}
    text = block.decode("utf-8", "replace")
    for line in re.split(r"\r\n(?![ \t])", text):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise InvalidValue("a part of the form has a broken header")
        out[name.strip().lower()] = re.sub(r"\r\n[ \t]+", " ", value).strip()
    return out


def iter_parts(fileobj, content_type):
    """
    The parts of a multipart/form-data body read from C{fileobj}, in order.
    Blocking (file reads): run it in a thread.

    @raise InvalidValue: a malformed or truncated body.
    """
    delim = b"\r\n--" + boundary_of(content_type)
    scanner = _Scanner(fileobj)
    for _ in scanner.data(delim):       # the preamble
        pass
    count = 0
    while True:
        scanner.need(2)
        if scanner.buf.startswith(b"--"):
            return                       # the closing delimiter; the epilogue is ignored
        padding = scanner.until(b"\r\n", 256)
        if padding.strip(b" \t"):
            raise InvalidValue("the form's body is malformed")
        scanner.need(2)
        if scanner.buf.startswith(b"\r\n"):
            scanner.buf = scanner.buf[2:]
            block = b""
        else:
            block = scanner.until(b"\r\n\r\n", MAX_HEADER)
        count += 1
        if count > MAX_PARTS:
            raise InvalidValue("the form has too many parts")
        part = Part(scanner, delim, _headers(block))
        yield part
        part.skip()
