# -*- test-case-name: tests.test_web_midadmin -*-
"""
/admin/midadmin/: a middle administrator's webmail logo and footer (SPEC
A7, seed §24: "웹메일 상단 로고 이미지를 업로드할 수 있고, 하단 문구를 편집할
수 있습니다").  Both belong to the middle admin's board group; the webmail
shows them to the accounts of that group (L{zwms.admin.midadmin.BrandCache}).

The logo is a multipart upload, accepted only as PNG, GIF or JPEG by its
first bytes (never SVG, which can carry script) and at most
L{zwms.admin.midadmin.MAX_LOGO} bytes; the footer is plain text, escaped
where it is shown.  Only a middle admin reaches these pages (the root
administrator has no board group here: 403).
"""

from klein import Klein

from zwms.admin import midadmin
from zwms.errors import InvalidValue
from zwms.i18n import N_
from zwms.web.console import MAX_FIELD, Redirect, Refused, flash, form, page

#: Largest upload body read (the logo cap plus room for the form fields).
MAX_UPLOAD = midadmin.MAX_LOGO + MAX_FIELD
ONLY_MIDADMIN = N_("This page is for middle administrators.")


def _scope(session):
    if session.scope is None:
        raise Refused(403, ONLY_MIDADMIN)
    return session.scope



class MidadminApp:
    """The logo and footer pages, mounted at /admin/midadmin."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    async def _page(self, request, session, errors=None, footer=None, status=200):
        c = self.console
        scope = _scope(session)
        brand = midadmin.BrandCache(c.services.home).get(scope.group)
        if footer is None:
            footer = await c.op(request, session, midadmin.footer_get, scope)
        request.setResponseCode(status)
        return c.render(request, session, "midadmin.html", scope=scope, brand=brand,
                        footer=footer, max_logo_kb=midadmin.MAX_LOGO // 1024,
                        max_footer=midadmin.MAX_FOOTER,
                        errors={k: c.translate(request, session, v)
                                for k, v in (errors or {}).items()},
                        flash=flash(request))

    @app.route("/", methods=["GET"])
    @page(midadmin_ok=True)
    async def brand_page(self, request, session):
        return await self._page(request, session)

    @app.route("/logo", methods=["POST"])
    @page("POST", midadmin_ok=True, upload=True)
    async def logo(self, request, session):
        scope = _scope(session)
        files = (request.args or {}).get(b"logo") or [b""]
        data = files[0] if isinstance(files[0], bytes) else b""
        if len(data) > MAX_UPLOAD:
            data = data[:midadmin.MAX_LOGO + 1]
        try:
            await self.console.op(request, session, midadmin.logo_set, scope, data)
        except InvalidValue as e:
            return await self._page(request, session, errors={"logo": str(e)}, status=400)
        raise Redirect("/admin/midadmin/?done=saved")

    @app.route("/logo/delete", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def logo_delete(self, request, session):
        await self.console.op(request, session, midadmin.logo_delete, _scope(session))
        raise Redirect("/admin/midadmin/?done=deleted")

    @app.route("/footer", methods=["POST"])
    @page("POST", midadmin_ok=True)
    async def footer(self, request, session):
        scope = _scope(session)
        text = form(request).get("footer", "")
        try:
            await self.console.op(request, session, midadmin.footer_set, scope, text)
        except InvalidValue as e:
            return await self._page(request, session, errors={"footer": str(e)},
                                    footer=text, status=400)
        raise Redirect("/admin/midadmin/?done=saved")
