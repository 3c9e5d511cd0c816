# -*- test-case-name: tests.test_web_admin2_files -*-
"""
The file viewer (SPEC A6, seed §10), at /admin/files: browse, download
and delete the files of the server home — only when DFV=1 in
data/zwms.cfg (§11), and never outside the home.

Every path comes from the client as a "/"-separated path relative to the
home; it is built with L{zwms.home.safe_join}, which resolves links, so
".." parts, absolute parts, NUL bytes and symbolic links that point out of
the home are refused (400).  Only regular files are downloaded; delete
removes one file (a link inside the home: the link itself), never a folder.

Downloads stream through a push producer (L{PacedSender}): the reactor
reads a chunk, writes it, and with DOWNSLEEP (ms per KB, §11) waits
C{callLater(size_in_KB * DOWNSLEEP / 1000)} before the next chunk, so a
slowed download never blocks the reactor; a slow client pauses it.
"""

import os
import stat
import time

from klein import Klein
from twisted.internet import defer
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from zwms import logs as logchannels
from zwms.errors import InvalidValue
from zwms.home import safe_join
from zwms.web.console import Redirect, Refused, client_ip, flash, form, page, query_args

#: Bytes read and written per step of a download.
CHUNK = 16 * 1024


def split_rel(text):
    """A relative path from the client as its parts ("" or "/": the home)."""
    text = str(text or "")
    if "\x00" in text or "\\" in text:
        raise InvalidValue("invalid path %r" % (text,))
    parts = [p for p in text.split("/") if p]
    for p in parts:
        if p in (".", ".."):
            raise InvalidValue("the path %r leaves its folder" % (text,))
    return parts


def resolve(root, text):
    """(parts, real path) of a client path inside the home.  @raise InvalidValue"""
    parts = split_rel(text)
    path = safe_join(root, *parts) if parts else os.path.realpath(root)
    return parts, path


def listing(root, text):
    """
    The entries of one folder of the home: [(name, is folder, size,
    mtime, is link)], folders first.  @raise InvalidValue: not a folder.
    """
    parts, path = resolve(root, text)
    if not os.path.isdir(path):
        raise InvalidValue("%r is not a folder" % ("/".join(parts) or "/",))
    out = []
    for name in os.listdir(path):
        full = os.path.join(path, name)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        link = stat.S_ISLNK(st.st_mode)
        out.append((name, stat.S_ISDIR(st.st_mode), st.st_size, st.st_mtime, link))
    out.sort(key=lambda e: (not e[1], e[0]))
    return parts, out


def open_download(root, text):
    """(name, open file, size) of a regular file inside the home."""
    parts, path = resolve(root, text)
    if not parts or not os.path.isfile(path):
        raise InvalidValue("%r is not a file" % ("/".join(parts) or "/",))
    f = open(path, "rb")
    return parts[-1], f, os.fstat(f.fileno()).st_size


def delete_file(root, text):
    """
    Delete one file of the home (a link: the link, not its target).
    @raise InvalidValue: a folder, the home, or outside it.
    """
    parts = split_rel(text)
    if not parts:
        raise InvalidValue("the home itself cannot be deleted")
    folder = safe_join(root, *parts[:-1]) if parts[:-1] else os.path.realpath(root)
    target = os.path.join(folder, parts[-1])
    st = os.lstat(target)  # FileNotFoundError: shown as "no such file"
    if stat.S_ISDIR(st.st_mode):
        raise InvalidValue("%r is a folder; only files are deleted here" % "/".join(parts))
    os.unlink(target)
    return "/".join(parts)


@implementer(IPushProducer)
class PacedSender:
    """
    Write a file to a request in chunks, waiting C{ms_per_kb} per KB
    between chunks (DOWNSLEEP).  C{start()} returns a Deferred that fires
    when the file was sent or the client went away.

    @param clock: IReactorTime for the waits (the services clock).
    """

    def __init__(self, f, request, clock, ms_per_kb, chunk=CHUNK):
        self.file = f
        self.request = request
        self.clock = clock
        self.ms_per_kb = max(0, int(ms_per_kb))
        self.chunk = chunk
        self.paused = False
        self.done = False
        self.call = None
        # Cancelled when the client goes away (Klein cancels the route).
        self.deferred = defer.Deferred(lambda d: self._finish(cancelled=True))

    def start(self):
        self.request.registerProducer(self, True)
        self._run()
        return self.deferred

    def _run(self):
        """Send chunks until paused, done, or a wait is due."""
        self.call = None
        while not self.paused and not self.done:
            data = self.file.read(self.chunk)
            if not data:
                self._finish()
                return
            self.request.write(data)
            if self.ms_per_kb:
                delay = len(data) / 1024.0 * self.ms_per_kb / 1000.0
                if not self.paused and not self.done:
                    self.call = self.clock.callLater(delay, self._run)
                return

    def _finish(self, cancelled=False):
        if self.done:
            return
        self.done = True
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        self.file.close()
        if getattr(self.request, "channel", True) is not None:
            self.request.unregisterProducer()
        if not cancelled:
            self.deferred.callback(b"")

    def pauseProducing(self):
        self.paused = True
        if self.call is not None and self.call.active():
            self.call.cancel()
            self.call = None

    def resumeProducing(self):
        if self.done or not self.paused:
            return
        self.paused = False
        if self.call is None:
            self._run()

    def stopProducing(self):
        self._finish()


def _ascii_name(name):
    return "".join(c if 32 < ord(c) < 127 and c not in '"\\;' else "_" for c in name) or "file"


class FilesApp:
    """The file viewer, mounted at /admin/files."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    def _enabled(self):
        if not self.console.services.settings["DFV"]:
            raise Refused(403, "The file viewer is off. Set DFV=1 in the basic settings "
                               "and restart the server to use it.")
        return self.console.services.home.root

    async def files(self, request, session, errors=None):
        c = self.console
        root = self._enabled()
        where = query_args(request).get("p", "")
        try:
            parts, entries = await c.run(listing, root, where)
        except (InvalidValue, FileNotFoundError) as e:
            raise Refused(400 if isinstance(e, InvalidValue) else 404, str(e))
        here = "/".join(parts)
        crumbs = [("/".join(parts[:i + 1]), parts[i]) for i in range(len(parts))]
        return c.render(request, session, "files.html", here=here, crumbs=crumbs,
                        entries=entries, errors=errors or {}, flash=flash(request),
                        parent="/".join(parts[:-1]),
                        stamp=lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)))

    @app.route("/download", methods=["GET"])
    @page()
    async def download(self, request, session):
        c = self.console
        root = self._enabled()
        where = query_args(request).get("p", "")
        try:
            name, f, size = await c.run(open_download, root, where)
        except (InvalidValue, OSError) as e:
            raise Refused(400 if isinstance(e, InvalidValue) else 404, str(e))
        c.services.logs.write(logchannels.WEBMAIL, "admin %s: file download %s"
                              % (session.login, "/".join(split_rel(where))), client_ip(request))
        request.setHeader(b"Content-Type", b"application/octet-stream")
        request.setHeader(b"Content-Length", str(size).encode("ascii"))
        request.setHeader(b"Content-Disposition",
                          ('attachment; filename="%s"' % _ascii_name(name)).encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        sender = PacedSender(f, request, c.services.clock, c.services.settings["DOWNSLEEP"])
        return await sender.start()

    @app.route("/delete", methods=["POST"])
    @page("POST")
    async def delete(self, request, session):
        c = self.console
        root = self._enabled()
        where = form(request).get("p", "")
        try:
            gone = await c.run(delete_file, root, where)
        except FileNotFoundError:
            raise Refused(404, "no such file")
        except InvalidValue as e:
            raise Refused(400, str(e))
        c.services.logs.write(logchannels.WEBMAIL, "admin %s: file delete %s"
                              % (session.login, gone), client_ip(request))
        parent = gone.rsplit("/", 1)[0] if "/" in gone else ""
        raise Redirect("/admin/files/?p=%s&done=deleted" % _quote(parent))


def _quote(text):
    from urllib.parse import quote
    return quote(text, safe="/")
