# -*- test-case-name: tests.test_web_i18n -*-
"""
The admin skin's templates (seed §19: skins/common/roothead.html,
roottail.html, the logo) through Jinja2 with autoescape and StrictUndefined,
translated with the gettext catalogs of L{zwms.i18n} (jinja2.ext.i18n).
"""

import os

import jinja2

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
            env.install_gettext_translations(i18n.translations(lang), newstyle=True)
            env.filters["filesize"] = _filesize
            self._envs[lang] = env
        return env

    def render(self, name, language, **values):
        """The page as UTF-8 bytes."""
        return self.environment(language).get_template(name).render(**values).encode("utf-8")
