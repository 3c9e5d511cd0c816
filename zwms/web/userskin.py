# -*- test-case-name: tests.test_web_admin_skins -*-
"""
The webmail's skin, as the administrator chose it (SPEC W7, A6; seed §13,
§19): env.cfg C{SKIN} names a folder of the skins root
(L{zwms.web.templates.skins_root}), and every webmail page is rendered from
it.  A template (or a css/, images/ or js/ file) the chosen skin lacks comes
from the default skin C{wow_coolwind}, and a SKIN naming no usable skin
folder means the default skin: a copied skin need only hold the files it
changes, and a wrong setting never breaks the webmail.

A user skin is a folder with a C{loginuser.html}; the admin skin C{common}
is never one.  A skin's preview is C{preview_NAME.gif} (or .png, .svg) next
to the skin folders (seed §13).

Jinja2 re-reads a changed template file (auto_reload), so an edited copy
shows at the next page without a restart.

The webmail's own logo and footer of a board group (SPEC A7, seed §24) are
offered to the templates as C{group_brand(session)}.
"""

import os
import re

import jinja2

from zwms.admin.midadmin import NO_BRAND, BrandCache
from zwms.errors import ZWMSError
from zwms.web.templates import ADMIN_SKIN, Templates, skins_root

#: The default user skin (seed §19).
DEFAULT_SKIN = "wow_coolwind"
#: A skin folder name: what SKIN may hold and the skin page offers.
SKIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
#: Preview image formats, in the order they are looked for.
PREVIEW_TYPES = (("gif", b"image/gif"), ("png", b"image/png"), ("svg", b"image/svg+xml"))


def is_user_skin(root, name):
    """True when C{name} is a user skin folder of C{root} (loginuser.html inside)."""
    return (bool(SKIN_NAME.match(name or "")) and name != ADMIN_SKIN
            and os.path.isfile(os.path.join(root, name, "loginuser.html")))


def preview_of(root, name):
    """(file name, content type) of a skin's preview image, or None."""
    if not SKIN_NAME.match(name or ""):
        return None
    for ext, ctype in PREVIEW_TYPES:
        file_name = "preview_%s.%s" % (name, ext)
        if os.path.isfile(os.path.join(root, file_name)):
            return file_name, ctype
    return None


def list_skins(root=None):
    """The user skins of the skins root: [(name, has a preview)], sorted."""
    root = root or skins_root()
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [(n, preview_of(root, n) is not None) for n in names if is_user_skin(root, n)]


class UserSkinTemplates(Templates):
    """
    The webmail's templates over the chosen skin, falling back to the
    default skin file by file.

    @param root: the skins root (None: L{skins_root}).
    @param services: for the SKIN setting, the accounts and the home.
    """

    def __init__(self, root, services):
        Templates.__init__(self, root, skin=DEFAULT_SKIN)
        self.root = root or skins_root()
        self.default_folder = os.path.join(self.root, DEFAULT_SKIN)
        self.services = services
        self.settings = services.settings
        self.brands = BrandCache(services.home)
        self._loader_skin = {}

    # Templates keeps its folder in an attribute; here it follows SKIN.
    @property
    def folder(self):
        """The chosen skin's folder (the default skin's when SKIN names none)."""
        return os.path.join(self.root, self.skin())

    @folder.setter
    def folder(self, value):
        pass

    def skin(self):
        """The name of the skin in use now."""
        name = str(self.settings["SKIN"] or "")
        return name if name != DEFAULT_SKIN and is_user_skin(self.root, name) else DEFAULT_SKIN

    def environment(self, lang):
        env = Templates.environment(self, lang)
        skin = self.skin()
        if self._loader_skin.get(lang) != skin:
            default = jinja2.FileSystemLoader(self.default_folder)
            env.loader = default if skin == DEFAULT_SKIN else jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(os.path.join(self.root, skin)), default])
            env.globals["group_brand"] = self.group_brand
            self._loader_skin[lang] = skin
        return env

    def has(self, name):
        """True when the chosen skin or the default one has template C{name}."""
        return any(os.path.isfile(os.path.join(folder, name))
                   for folder in (self.folder, self.default_folder))

    def file_folder(self, folder, name):
        """The skin folder that holds C{folder}/C{name} (the chosen one first)."""
        chosen = self.folder
        if os.path.isfile(os.path.join(chosen, folder, os.path.basename(name))):
            return chosen
        return self.default_folder

    def group_brand(self, session):
        """The logo and footer of the session account's board group (seed §24)."""
        if session is None:
            return NO_BRAND
        try:
            account = self.services.accounts.get(session.login)
        except ZWMSError:
            return NO_BRAND
        return NO_BRAND if account is None else self.brands.get(account.boardgroup)
