"""
The Korean catalog covers every string the admin pages show: the
templates' marked strings and the help texts of the account fields and
settings (which the pages translate).
"""

import os

from babel.messages.pofile import read_po
from jinja2.ext import babel_extract
from twisted.trial.unittest import SynchronousTestCase

from zwms import i18n
from zwms.account import ACCOUNT_FIELDS
from zwms.config.schema import KEYS
from zwms.web.templates import ADMIN_SKIN, skins_root


def template_msgids():
    folder = os.path.join(skins_root(), ADMIN_SKIN)
    out = set()
    for name in os.listdir(folder):
        if name.endswith(".html"):
            with open(os.path.join(folder, name), "rb") as f:
                for _, _, msg, _ in babel_extract(f, ("_", "gettext", "ngettext"), [],
                                                  {"extensions": "jinja2.ext.i18n"}):
                    msg = msg[0] if isinstance(msg, tuple) else msg
                    if msg:
                        out.add(msg)
    return out


class CatalogTests(SynchronousTestCase):

    def catalog(self):
        return i18n.catalog("ko")

    def test_parts_do_not_contradict(self):
        """A msgid in two .po files has one translation."""
        seen = {}
        for path in i18n.catalog_paths("ko"):
            with open(path, "rb") as f:
                for message in read_po(f, locale="ko"):
                    if message.id and message.string:
                        other = seen.setdefault(message.id, (message.string, path))
                        self.assertEqual(other[0], message.string,
                                         "%r: %s vs %s" % (message.id, other[1], path))

    def test_every_template_string_translated(self):
        catalog = self.catalog()
        missing = sorted(m for m in template_msgids()
                         if not (catalog.get(m) and catalog.get(m).string))
        self.assertEqual(missing, [], "add these to zwms/i18n/ko/LC_MESSAGES/zwms.po")

    def test_every_help_text_translated(self):
        catalog = self.catalog()
        helps = [f.help for f in ACCOUNT_FIELDS] + [k.help for k in KEYS]
        missing = sorted(h for h in helps if not (catalog.get(h) and catalog.get(h).string))
        self.assertEqual(missing, [], "add these to zwms/i18n/ko/LC_MESSAGES/zwms.po")

    def test_placeholders_kept(self):
        import re
        for message in self.catalog():
            if message.id and message.string:
                self.assertEqual(sorted(re.findall(r"%\(\w+\)", message.id)),
                                 sorted(re.findall(r"%\(\w+\)", message.string)), message.id)

    def test_languages(self):
        self.assertEqual(i18n.choose("en"), "en")
        self.assertEqual(i18n.choose("xx"), "ko")
        self.assertEqual(i18n.translations("ko").gettext("Log in"), "로그인")
        self.assertEqual(i18n.translations("en").gettext("Log in"), "Log in")


class EscapedTranslationTests(SynchronousTestCase):
    """_() of a value that carries user input escapes it (no HTML injection)."""

    def render(self, source, lang, **values):
        import jinja2

        from zwms.web.templates import install_escaping_gettext
        env = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
        install_escaping_gettext(env, i18n.translations(lang))
        return env.from_string(source).render(**values)

    def test_user_text_in_gettext_is_escaped(self):
        for lang in ("ko", "en"):
            out = self.render("{{ _(error) }}", lang, error="<img src=x onerror=alert(1)>")
            self.assertEqual(out, "&lt;img src=x onerror=alert(1)&gt;")

    def test_literals_and_placeholders(self):
        self.assertEqual(self.render('{{ _("Log in") }}', "ko"), "로그인")
        out = self.render('{{ _("%(n)d lines, page %(p)d of %(pages)d", n=1, p=1, pages=2) }}',
                          "en")
        self.assertEqual(out, "1 lines, page 1 of 2")
        out = self.render('{{ ngettext("%(num)d file", "%(num)d files", n) }}', "en", n=3)
        self.assertEqual(out, "3 files")
