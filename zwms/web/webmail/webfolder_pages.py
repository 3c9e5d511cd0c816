# -*- test-case-name: tests.test_webmail_webfolder -*-
"""
/mail/webfolder/RAND/...: the web folder (SPEC W3, seed §30).  SCOPE is
"my" (the personal folder webdir/ID) or "common" (webdir/common<N>, shared
by the accounts of board group N — always the account's own group: no
parameter names another one).  Paths travel in the query (path=a/b) and
are checked by L{zwms.store.webfolder} (no "..", absolute paths, links,
NUL, backslashes, invisible or look-alike characters).

  (GET)                       the personal folder's root
  SCOPE/?path=P               a folder: breadcrumbs, files, forms
  SCOPE/download?path=P       a file, streamed (a push producer), as an
                              attachment with an RFC 5987 filename*=
  SCOPE/upload?path=P         POST multipart/form-data, several files
                              (field "files"); see below
  SCOPE/mkdir                 POST path, name
  SCOPE/rename                POST path, item, name
  SCOPE/move                  POST path, item (several), dest (a folder path)
  SCOPE/delete                POST path, item (several)

Uploads are streamed: the Site's L{zwms.web.multipart.StreamingRequest}
keeps Twisted from parsing the body into memory; here the body (a temp
file once large) is read in a worker thread by
L{zwms.web.multipart.iter_parts}, each file written chunk by chunk to a
temp file in the target folder (L{WebFolders.open_upload}: name checked
first, quota checked as it grows and again before the rename).  The CSRF
token must come before the first file in the body (the form puts it
first): no byte of a file is written before it is checked.
"""

import functools
import urllib.parse

from klein import Klein
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from zwms.errors import InvalidValue
from zwms.store.webfolder import QuotaExceeded, WebFolders, split_path
from zwms.web.console import CSRF_FIELD, MAX_FIELD, Redirect, Refused, form_list, query_args
from zwms.web.multipart import is_multipart, iter_parts
from zwms.web.webmail.state import page

#: URL scope -> shared?
SCOPES = {"my": False, "common": True}
#: The done=... notes after a change (fixed words, never echoed text).
DONE = ("uploaded", "created", "renamed", "moved", "deleted")
#: RFC 5987 attr-char besides letters and digits.
_ATTR_SAFE = "!#$&+-.^_`|~"


def content_disposition(name):
    """
    C{attachment; filename="ascii"; filename*=UTF-8''pct} for any name:
    the plain parameter is an ASCII stand-in (old clients), the starred
    one the real name (RFC 6266, RFC 5987).
    """
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe=_ATTR_SAFE, encoding="utf-8")
    return ('attachment; filename="%s"; filename*=UTF-8\'\'%s'
            % (fallback or "download", encoded)).encode("ascii")


def crumbs(path):
    """[(name, path)] from the root to C{path} (already checked)."""
    out, parts = [], []
    for part in [p for p in path.split("/") if p]:
        parts.append(part)
        out.append((part, "/".join(parts)))
    return out


def join(folder, name):
    """A child path of a folder path."""
    return "%s/%s" % (folder, name) if folder else name


@implementer(IPushProducer)
class _FileProducer:
    """
    Writes an open file to the request a chunk at a time while the
    transport wants more (a push producer: the transport pauses it when
    its buffer is full and resumes it when drained), so a large file is
    never held in memory; closes the file and finishes the request.
    """

    CHUNK = 64 * 1024

    def __init__(self, f, request):
        self.f, self.request = f, request
        self.paused = self.done = self._looping = False

    def start(self):
        self.request.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self):
        self.paused = False
        if self._looping:
            return                   # called from inside our own write()
        self._looping = True
        try:
            while not self.paused and not self.done:
                chunk = self.f.read(self.CHUNK)
                if not chunk:
                    self._close(finish=True)
                    return
                self.request.write(chunk)
        except Exception:
            self._close(finish=False)
            self.request.loseConnection()
            raise
        finally:
            self._looping = False

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        # The client went away.
        self._close(finish=False)

    def _close(self, finish):
        if self.done:
            return
        self.done = True
        self.f.close()
        self.request.unregisterProducer()
        if finish and not self.request._disconnected:
            self.request.finish()


class _Download(Resource):
    """One open file streamed to the client, then closed."""

    isLeaf = True

    def __init__(self, f, size, name):
        Resource.__init__(self)
        self.f, self.size, self.name = f, size, name

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/octet-stream")
        request.setHeader(b"Content-Length", b"%d" % self.size)
        request.setHeader(b"Content-Disposition", content_disposition(self.name))
        request.setHeader(b"Cache-Control", b"no-store")
        _FileProducer(self.f, request).start()
        return NOT_DONE_YET


def receive_upload(folders, account, folder, shared, body, content_type, csrf):
    """
    Store the files of a multipart upload body (blocking: a worker thread).

    @return: (saved [(name, bytes)], failed [(file name, reason)]).
    @raise Refused: 403 when a file comes before a matching CSRF field.
    @raise InvalidValue: a malformed body.
    """
    import hmac
    body.seek(0)
    token = None
    saved, failed = [], []
    for part in iter_parts(body, content_type):
        if part.filename is None:
            value = part.text(MAX_FIELD)
            if part.name == CSRF_FIELD and token is None:
                token = value
            continue
        if token is None or not csrf or not hmac.compare_digest(token.encode(), csrf.encode()):
            raise Refused(403, "This form has expired or was not sent by this site. "
                               "Reload the page and try again.")
        if not part.filename:
            continue                     # a file input left empty
        try:
            upload = folders.open_upload(account, folder, part.filename, shared)
        except InvalidValue as e:
            failed.append((part.filename, str(e)))
            continue
        try:
            for chunk in part.chunks():
                upload.write(chunk)
            saved.append((upload.dest.rsplit("/", 1)[-1], upload.close()))
        except QuotaExceeded as e:
            failed.append((part.filename, str(e)))
        except BaseException:
            upload.abort()
            raise
    if token is None or not hmac.compare_digest(token.encode(), (csrf or "").encode()):
        raise Refused(403, "This form has expired or was not sent by this site. "
                           "Reload the page and try again.")
    return saved, failed


def scoped(f):
    """Check the SCOPE segment; pass C{shared} on."""
    @functools.wraps(f)
    async def route(self, request, session, scope, **kwargs):
        if scope not in SCOPES:
            raise Refused(404, "No such web folder.")
        return await f(self, request, session, SCOPES[scope], **kwargs)
    return route


class WebFolderApp:
    """The web folder pages, at /mail/webfolder."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
        services = webmail.services
        self.folders = getattr(services, "webfolders", None) or WebFolders(
            services.home, services.settings, services.mail)

    # -- helpers ----------------------------------------------------------------

    def _url(self, session, shared, path="", done=""):
        query = [(k, v) for k, v in (("path", path), ("done", done)) if v]
        return "/mail/webfolder/%s/%s/%s" % (
            self.webmail.rand(session), "common" if shared else "my",
            "?" + urllib.parse.urlencode(query) if query else "")

    def _account(self, session):
        return self.webmail.services.accounts.get(session.login)

    async def _page(self, request, session, shared, path, error="", detail="", status=200,
                    done="", failed=()):
        wm = self.webmail
        account = self._account(session)
        try:
            entries = await wm.run(self.folders.list, account, path, shared)
        except InvalidValue as e:
            if not path:
                raise
            # A bad or vanished folder: show the root with the reason.
            error, detail, status, path = "No such folder.", str(e), 404, ""
            entries = await wm.run(self.folders.list, account, "", shared)
        tree = await wm.run(self.folders.tree, account, shared)
        usage = free = None
        if not shared:
            usage = await wm.run(self.folders.usage, account)
            free = await wm.run(self.folders.quota, account)
        nav = await wm.nav(session)
        request.setResponseCode(status)
        return wm.render(request, session, "webfolder.html", scope="common" if shared else "my",
                         shared=shared, group=int(account.boardgroup or 0), path=path,
                         crumbs=crumbs(path), entries=entries, tree=tree, usage=usage,
                         free=free, error=error, detail=detail, done=done,
                         failed=list(failed), join=join, **nav)

    def _path(self, value):
        """A checked folder path as "a/b" ("" the root)."""
        return "/".join(split_path(value or ""))

    async def _change(self, request, session, shared, path, done, f, *args):
        """Run one store change in a thread; a refusal becomes the page's error."""
        wm = self.webmail
        try:
            await wm.run(f, self._account(session), *args)
        except InvalidValue as e:
            return await self._page(request, session, shared, path, status=400,
                                    error="This could not be done.", detail=str(e))
        wm.log("webfolder %s: %s %s%s %s" % (done, session.login, "common:" if shared else "",
                                             path or "/", " ".join(str(a) for a in args
                                                                   if isinstance(a, str))),
               request)
        raise Redirect(self._url(session, shared, path, done))

    async def _folder_arg(self, request, session, shared, value):
        try:
            return self._path(value)
        except InvalidValue as e:
            raise _PageError(await self._page(request, session, shared, "", status=400,
                                              error="This could not be done.", detail=str(e)))

    # -- pages --------------------------------------------------------------------

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def root(self, request, session):
        return await self._page(request, session, False, "")

    @app.route("/<rand>/<scope>/", methods=["GET"])
    @page()
    @scoped
    async def show(self, request, session, shared):
        args = query_args(request)
        done = args.get("done", "")
        try:
            path = self._path(args.get("path", ""))
        except InvalidValue as e:
            return await self._page(request, session, shared, "", status=400,
                                    error="This could not be done.", detail=str(e))
        return await self._page(request, session, shared, path,
                                done=done if done in DONE else "")

    @app.route("/<rand>/<scope>/download", methods=["GET"])
    @page()
    @scoped
    async def download(self, request, session, shared):
        wm = self.webmail
        path = query_args(request).get("path", "")
        try:
            f, size, name = await wm.run(self.folders.open_download, self._account(session),
                                         path, shared)
        except InvalidValue as e:
            return await self._page(request, session, shared, "", status=404,
                                    error="No such file.", detail=str(e))
        wm.log("webfolder download: %s %s%s (%d bytes)" % (
            session.login, "common:" if shared else "", path, size), request)
        return _Download(f, size, name)

    @app.route("/<rand>/<scope>/upload", methods=["POST"])
    @page()     # the CSRF token is checked inside the streamed body (receive_upload)
    @scoped
    async def upload(self, request, session, shared):
        wm = self.webmail
        if not is_multipart(request):
            raise Refused(400, "Send the files with the upload form (multipart/form-data).")
        try:
            path = await self._folder_arg(request, session, shared,
                                          query_args(request).get("path", ""))
        except _PageError as e:
            return e.page
        ctype = request.getHeader(b"content-type")
        try:
            saved, failed = await wm.run(receive_upload, self.folders, self._account(session),
                                         path, shared, request.content, ctype, session.csrf)
        except InvalidValue as e:
            return await self._page(request, session, shared, path, status=400,
                                    error="The upload was refused.", detail=str(e))
        wm.log("webfolder upload: %s %s%s %d file(s), %d bytes%s" % (
            session.login, "common:" if shared else "", path or "/", len(saved),
            sum(n for _, n in saved), ", %d refused" % len(failed) if failed else ""), request)
        if failed:
            return await self._page(request, session, shared, path,
                                    status=200 if saved else 400,
                                    error="Some files were not stored.", failed=failed,
                                    done="uploaded" if saved else "")
        if not saved:
            return await self._page(request, session, shared, path, status=400,
                                    error="Choose at least one file.")
        raise Redirect(self._url(session, shared, path, "uploaded"))

    @app.route("/<rand>/<scope>/mkdir", methods=["POST"])
    @page("POST")
    @scoped
    async def mkdir(self, request, session, shared, values):
        try:
            path = await self._folder_arg(request, session, shared, values.get("path", ""))
        except _PageError as e:
            return e.page
        return await self._change(request, session, shared, path, "created",
                                  self.folders.mkdir, join(path, values.get("name", "")),
                                  shared)

    async def _chosen(self, request, session, shared, values, chosen):
        """
        The folder of a change on chosen entries (the form's C{path});
        @raise _PageError: a bad folder, or nothing chosen.
        """
        path = await self._folder_arg(request, session, shared, values.get("path", ""))
        if not chosen:
            raise _PageError(await self._page(request, session, shared, path, status=400,
                                              error="Choose a file or folder."))
        return path

    @app.route("/<rand>/<scope>/rename", methods=["POST"])
    @page("POST")
    @scoped
    async def rename(self, request, session, shared, values):
        item = values.get("item", "")
        try:
            path = await self._chosen(request, session, shared, values, item)
        except _PageError as e:
            return e.page
        return await self._change(request, session, shared, path, "renamed",
                                  self.folders.rename, join(path, item),
                                  values.get("name", ""), shared)

    @app.route("/<rand>/<scope>/move", methods=["POST"])
    @page("POST")
    @scoped
    async def move(self, request, session, shared, values):
        items = form_list(request, "item")
        try:
            path = await self._chosen(request, session, shared, values, items)
        except _PageError as e:
            return e.page
        dest = values.get("dest", "")
        return await self._change(request, session, shared, path, "moved", _move_all,
                                  self.folders, [join(path, i) for i in items], dest, shared)

    @app.route("/<rand>/<scope>/delete", methods=["POST"])
    @page("POST")
    @scoped
    async def delete(self, request, session, shared, values):
        items = form_list(request, "item")
        try:
            path = await self._chosen(request, session, shared, values, items)
        except _PageError as e:
            return e.page
        return await self._change(request, session, shared, path, "deleted",
                                  self.folders.delete, [join(path, i) for i in items], shared)


class _PageError(Exception):
    """Carries an error page out of a helper."""

    def __init__(self, page):
        Exception.__init__(self, "page")
        self.page = page


def _move_all(account, folders, paths, dest, shared):
    """Move several items (all checked first, so a bad one moves none)."""
    for p in paths:
        split_path(p)
    split_path(dest)
    for p in paths:
        folders.move(account, p, dest, shared)
