# -*- test-case-name: tests.test_web_config -*-
"""
The settings pages of the console, at /admin/config: the environment page
(§4, every data/env.cfg key with its help text from the config schema),
basic settings (§11, data/zwms.cfg, applied at restart), the welcome
message (§5, data/welcome.txt) and the notice (§6),
the spam filter (§12, data/spam.dat) and virus extensions (data/virus.dat),
virtual addresses (§9) and domains (N§16).  Every value is validated by the
schema; a bad one is shown on the form with its message and nothing of the
form is written.
"""

from klein import Klein

from zwms.admin import consoleops, ops
from zwms.admin.consoleops import FormErrors
from zwms.config import format_setting
from zwms.config.schema import ENV_CFG, KEYS, ZWMS_CFG
from zwms.errors import InvalidValue, NoSuchAlias
from zwms.web.console import Redirect, flash, form, page


def _keys(file):
    return [k for k in KEYS if k.file == file]


class ConfigApp:
    """The settings pages, mounted at /admin/config."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    # -- env.cfg (§4) and zwms.cfg (§11) ---------------------------------------

    def _settings_page(self, request, session, file, values=None, errors=None):
        c = self.console
        keys = _keys(file)
        running = {k.name: format_setting(c.services.settings[k.name]) for k in keys}
        written = consoleops.zwms_cfg_values(c.context(request, session)) \
            if file == ZWMS_CFG else {}
        if values is None:
            values = {k.name: written.get(k.name, running[k.name]) for k in keys}
        pending = [k.name for k in keys if file == ZWMS_CFG
                   and written.get(k.name, running[k.name]) != running[k.name]]
        return c.render(request, session, "settings.html", keys=keys, values=values,
                        errors=errors or {}, pending=pending,
                        kind="env" if file == ENV_CFG else "basic", flash=flash(request))

    async def _settings_save(self, request, session, file, url):
        c = self.console
        posted = form(request)
        values = {k.name: posted.get(k.name, "") for k in _keys(file)}
        try:
            await c.op(request, session, consoleops.config_set_many, values)
        except FormErrors as e:
            request.setResponseCode(400)
            return self._settings_page(request, session, file, values, e.errors)
        raise Redirect(url + "?done=saved")

    @app.route("/env", methods=["GET"])
    @page()
    async def env(self, request, session):
        return self._settings_page(request, session, ENV_CFG)

    @app.route("/env", methods=["POST"])
    @page("POST")
    async def env_save(self, request, session):
        return await self._settings_save(request, session, ENV_CFG, "/admin/config/env")

    @app.route("/basic", methods=["GET"])
    @page()
    async def basic(self, request, session):
        return self._settings_page(request, session, ZWMS_CFG)

    @app.route("/basic", methods=["POST"])
    @page("POST")
    async def basic_save(self, request, session):
        return await self._settings_save(request, session, ZWMS_CFG, "/admin/config/basic")

    # -- text pages: notice (§6), spam.dat (§12), virus.dat --------------------------

    async def _text_page(self, request, session, kind, text=None, errors=None):
        c = self.console
        if text is None:
            if kind == "notice":
                text = await c.op(request, session, consoleops.notice_get)
            elif kind == "welcome":
                text = await c.op(request, session, ops.welcome_get)
            else:
                getter = consoleops.spam_get if kind == "spam" else consoleops.virus_get
                text = "\n".join(await c.op(request, session, getter))
        return c.render(request, session, "textfile.html", kind=kind, text=text,
                        errors=errors or {}, flash=flash(request))

    async def _text_save(self, request, session, kind, setter):
        posted = form(request)
        text = posted.get("text", "")
        try:
            await self.console.op(request, session, setter, text)
        except InvalidValue as e:
            request.setResponseCode(400)
            return await self._text_page(request, session, kind, text, {"text": str(e)})
        raise Redirect("/admin/config/%s?done=saved" % kind)

    @app.route("/welcome", methods=["GET"])
    @page()
    async def welcome(self, request, session):
        return await self._text_page(request, session, "welcome")

    @app.route("/welcome", methods=["POST"])
    @page("POST")
    async def welcome_save(self, request, session):
        return await self._text_save(request, session, "welcome", ops.welcome_set)

    @app.route("/notice", methods=["GET"])
    @page()
    async def notice(self, request, session):
        return await self._text_page(request, session, "notice")

    @app.route("/notice", methods=["POST"])
    @page("POST")
    async def notice_save(self, request, session):
        return await self._text_save(request, session, "notice", consoleops.notice_set)

    @app.route("/spam", methods=["GET"])
    @page()
    async def spam(self, request, session):
        return await self._text_page(request, session, "spam")

    @app.route("/spam", methods=["POST"])
    @page("POST")
    async def spam_save(self, request, session):
        return await self._text_save(request, session, "spam", consoleops.spam_set)

    @app.route("/virus", methods=["GET"])
    @page()
    async def virus(self, request, session):
        return await self._text_page(request, session, "virus")

    @app.route("/virus", methods=["POST"])
    @page("POST")
    async def virus_save(self, request, session):
        return await self._text_save(request, session, "virus", consoleops.virus_set)

    # -- virtual addresses (§9) and domains ------------------------------------------

    async def _aliases_page(self, request, session, new=None, errors=None):
        c = self.console
        aliases = await c.op(request, session, ops.alias_list)
        return c.render(request, session, "aliases.html", aliases=aliases,
                        domains=ops.domain_list(c.context(request, session)),
                        new=new or {"virtual": "", "real": ""}, errors=errors or {},
                        flash=flash(request))

    @app.route("/aliases", methods=["GET"])
    @page()
    async def aliases(self, request, session):
        return await self._aliases_page(request, session)

    @app.route("/aliases/add", methods=["POST"])
    @page("POST")
    async def alias_add(self, request, session):
        posted = form(request)
        new = {"virtual": posted.get("virtual", "").strip(), "real": posted.get("real", "").strip()}
        try:
            await self.console.op(request, session, ops.alias_add, new["virtual"], new["real"])
        except (InvalidValue, ops.NoSuchAccount) as e:
            request.setResponseCode(400)
            return await self._aliases_page(request, session, new, {"virtual": str(e)})
        raise Redirect("/admin/config/aliases?done=created")

    @app.route("/aliases/delete", methods=["POST"])
    @page("POST")
    async def alias_delete(self, request, session):
        posted = form(request)
        try:
            await self.console.op(request, session, ops.alias_del, posted.get("virtual", ""),
                                  posted.get("real") or None)
        except NoSuchAlias as e:
            request.setResponseCode(404)
            return await self._aliases_page(request, session, errors={"virtual": str(e)})
        raise Redirect("/admin/config/aliases?done=deleted")

    async def _domains_page(self, request, session, new="", errors=None):
        c = self.console
        return c.render(request, session, "domains.html",
                        domains=ops.domain_list(c.context(request, session)), new=new,
                        errors=errors or {}, flash=flash(request))

    @app.route("/domains", methods=["GET"])
    @page()
    async def domains(self, request, session):
        return await self._domains_page(request, session)

    @app.route("/domains/add", methods=["POST"])
    @page("POST")
    async def domain_add(self, request, session):
        domain = form(request).get("domain", "").strip()
        try:
            await self.console.op(request, session, ops.domain_add, domain)
        except (InvalidValue, ops.OperationFailed) as e:
            request.setResponseCode(400)
            return await self._domains_page(request, session, domain, {"domain": str(e)})
        raise Redirect("/admin/config/domains?done=created")

    @app.route("/domains/delete", methods=["POST"])
    @page("POST")
    async def domain_delete(self, request, session):
        domain = form(request).get("domain", "").strip()
        try:
            await self.console.op(request, session, ops.domain_del, domain)
        except (InvalidValue, ops.OperationFailed) as e:
            request.setResponseCode(400)
            return await self._domains_page(request, session, errors={"domain": str(e)})
        raise Redirect("/admin/config/domains?done=deleted")
