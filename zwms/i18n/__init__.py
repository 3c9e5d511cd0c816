# -*- test-case-name: tests.test_web_i18n -*-
"""
Message catalogs of the web pages (SPEC W10, issue 5): gettext .po files
under zwms/i18n/LANG/LC_MESSAGES/ (zwms.po plus one zwms-PART.po per part
of the product, merged in name order), compiled in memory by Babel when
first used (no binary .mo in the repository).

The msgids are English, so English needs no catalog; Korean is the
default language (seed: a Korean product).  Templates mark text with
C{{% trans %}} / C{_()} (jinja2.ext.i18n), code with the L{N_} marker.
"""

import io
import os

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

#: The languages offered, default first.
LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"
#: Names of the languages, each in its own language (for the chooser).
LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}

CATALOG_DIR = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "zwms"

_loaded = {}


def N_(text):
    """Mark a string for the catalog without translating it (yet)."""
    return text


def catalog_path(lang):
    """The main .po file of a language."""
    return os.path.join(CATALOG_DIR, lang, "LC_MESSAGES", DOMAIN + ".po")


def catalog_paths(lang):
    """Every .po file of a language: zwms.po, then zwms-*.po by name."""
    folder = os.path.dirname(catalog_path(lang))
    parts = sorted(n for n in os.listdir(folder)
                   if n.startswith(DOMAIN + "-") and n.endswith(".po"))
    return [catalog_path(lang)] + [os.path.join(folder, n) for n in parts]


def catalog(lang):
    """The merged Babel catalog of a language (its .po files together)."""
    merged = Catalog(locale=lang, domain=DOMAIN)
    for path in catalog_paths(lang):
        with open(path, "rb") as f:
            for message in read_po(f, locale=lang, domain=DOMAIN):
                if message.id and (message.id not in merged or message.string):
                    merged[message.id] = message
    return merged


def translations(lang):
    """
    The gettext translations of C{lang} (an unknown language gets the
    default one); cached for the life of the process.
    """
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    cached = _loaded.get(lang)
    if cached is not None:
        return cached
    if lang == "en":
        result = NullTranslations()
    else:
        buf = io.BytesIO()
        write_mo(buf, catalog(lang))
        buf.seek(0)
        result = Translations(buf, domain=DOMAIN)
    _loaded[lang] = result
    return result


def choose(value):
    """A language code from a cookie or a form, or the default."""
    value = str(value or "").strip().lower()
    return value if value in LANGUAGES else DEFAULT_LANGUAGE
