# -*- test-case-name: tests.test_web_i18n -*-
"""
The admin skin's templates (seed §19: skins/common/roothead.html,
roottail.html, the logo) through Jinja2 with autoescape and StrictUndefined,
translated with the gettext catalogs of L{zwms.i18n} (jinja2.ext.i18n).
"""

import os
import re

import jinja2
import markupsafe

from zwms import i18n

#: The admin skin (seed §19).
ADMIN_SKIN = "common"


def skins_root():
    """
    The skins folder: $ZWMS_SKINS when set, else the skins shipped inside
    the package (zwms/skins/, installed as package data).
    """
    env = os.environ.get("ZWMS_SKINS")
    if env:
        return env
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(here, "skins")


def _filesize(value):
    """A byte count for people: 1.5 MB."""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024.0


def install_escaping_gettext(env, translations):
    """
    Jinja2's i18n with newstyle calls, except that the translated text is
    escaped like any other value: Jinja2 marks it safe, which turns
    C{{{ _(error) }}} into HTML injection when C{error} carries user input.
    No msgid or msgstr holds markup, so escaping them changes no page.
    """
    env.install_gettext_translations(translations, newstyle=True)

    @jinja2.pass_context
    def gettext(context, string, **variables):
        rv = translations.gettext(string)
        if context.eval_ctx.autoescape:
            rv = markupsafe.escape(rv)
        return rv % variables

    @jinja2.pass_context
    def ngettext(context, singular, plural, num, **variables):
        variables.setdefault("num", num)
        rv = translations.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            rv = markupsafe.escape(rv)
        return rv % variables

    env.globals.update(gettext=gettext, _=gettext, ngettext=ngettext)


class Templates:
    """One Jinja2 environment per language over skins/common."""

    def __init__(self, root=None, skin=ADMIN_SKIN):
        self.folder = os.path.join(root or skins_root(), skin)
        self._envs = {}

    def environment(self, lang):
        env = self._envs.get(lang)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self.folder),
                autoescape=jinja2.select_autoescape(["html"]),
                undefined=jinja2.StrictUndefined,
                extensions=["jinja2.ext.i18n"])
            install_escaping_gettext(env, i18n.translations(lang))
            env.filters["filesize"] = _filesize
            self._envs[lang] = env
        return env

    def render(self, name, language, **values):
        """The page as UTF-8 bytes."""
        return self.environment(language).get_template(name).render(**values).encode("utf-8")


#: Skin files served as-is (seed §19: a skin's css/ and images/ folders).
STATIC_TYPES = {"css": b"text/css; charset=utf-8", "svg": b"image/svg+xml",
                "gif": b"image/gif", "png": b"image/png", "js": b"text/javascript"}
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\.(css|svg|gif|png|js)\Z")


def skin_file(request, skin_folder, folder, name):
    """
    Answer one file of a skin's css/ or images/ folder (C{folder} is one of
    those, chosen by the route); any other name is a 404.
    """
    m = STATIC_NAME.match(name)
    try:
        if not m or ".." in name:
            raise OSError(name)
        with open(os.path.join(skin_folder, folder, name), "rb") as f:
            data = f.read()
    except OSError:
        request.setResponseCode(404)
        return b"not found"
    request.setHeader(b"Content-Type", STATIC_TYPES[m.group(1)])
    request.setHeader(b"Cache-Control", b"max-age=3600")
    return data


class PageResponses:
    """redirect() and error_page() for an object with a render() method."""

    def redirect(self, request, url):
        request.setResponseCode(303)
        request.setHeader(b"Location", url.encode("utf-8"))
        return b""

    def error_page(self, request, session, status, message):
        request.setResponseCode(status)
        return self.render(request, session, "error.html", status=status, message=message)
