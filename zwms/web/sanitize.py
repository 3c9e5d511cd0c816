# -*- test-case-name: tests.test_webmail_read -*-
"""
Mail HTML made safe to show (SPEC W2): nh3 (ammonia) with explicit
allow-lists of tags, attributes and URL schemes — nh3's defaults keep
remote images (TWISTED-NOTES "Web (Klein)").  On top of it:

  - C{cid:} image sources become URLs of the message's own parts;
  - remote images (http, https, protocol-relative) are removed unless the
    user asked to see them, and the caller learns that some were there;
  - style attributes keep only plain declarations (no url(), expression(),
    behaviour, imports, escapes);
  - links open outside the frame, with no referrer.

The result is still shown in a sandboxed frame without scripts (defence
in depth: the sanitiser is one wall, the frame's CSP another).
"""

import re

import nh3

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
    "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u",
    "ul",
}
#: Dropped with everything inside them.
CLEAN_CONTENT = {"script", "style", "title", "head", "object", "embed", "iframe", "frame",
                 "frameset", "applet", "noscript", "template", "svg", "math", "xml", "form",
                 "textarea", "select", "button"}
_COMMON = {"style", "align", "valign", "title", "dir", "lang", "width", "height", "bgcolor",
           "class"}
ATTRIBUTES = {
    "*": _COMMON,
    "a": {"href", "name"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"}, "colgroup": {"span"}, "ol": {"start", "type"}, "ul": {"type"},
    "li": {"value"}, "blockquote": {"cite"}, "q": {"cite"},
}
URL_SCHEMES = {"http", "https", "mailto", "cid"}

_BAD_STYLE = re.compile(r"url\s*\(|expression|behaviou?r|@import|javascript|vbscript|"
                        r"-moz-binding|\\|/\*|position\s*:\s*fixed", re.I)
_REMOTE = re.compile(r"^\s*(https?:)?//", re.I)


class Cleaner:
    """
    One message's HTML cleaning.

    @param part_url: C{part_url(content_id) -> url or None} for cid: images.
    @param remote_images: keep http(s) images (the user clicked "show images").
    """

    def __init__(self, part_url, remote_images=False):
        self.part_url = part_url
        self.remote_images = remote_images
        self.blocked = 0

    def _filter(self, tag, attr, value):
        if attr == "style":
            return None if _BAD_STYLE.search(value) else value
        if attr == "background":
            return None
        if tag == "img" and attr == "src":
            if value.lower().startswith("cid:"):
                return self.part_url(value[4:].strip().strip("<>"))
            if _REMOTE.match(value):
                if self.remote_images:
                    return value
                self.blocked += 1
                return None
            return None
        if attr == "class":
            return None
        return value

    def clean(self, html):
        """Safe HTML (a fragment: body content only)."""
        return nh3.clean(
            html, tags=TAGS, clean_content_tags=CLEAN_CONTENT, attributes=ATTRIBUTES,
            attribute_filter=self._filter, url_schemes=URL_SCHEMES, strip_comments=True,
            link_rel="noopener noreferrer",
            set_tag_attribute_values={"a": {"target": "_blank"}})


def clean_html(html, part_url=lambda cid: None, remote_images=False):
    """(safe html, number of remote images removed)."""
    cleaner = Cleaner(part_url, remote_images)
    safe = cleaner.clean(html or "")
    return safe, cleaner.blocked


# -- composing (issue 6: simple HTML mail) --------------------------------------
#
# What the compose page's editor makes (bold, italic, underline, lists,
# links, quotes, line and paragraph breaks), nothing else: no style, no
# class, no images (an HTML message the user writes never fetches remote
# content), links only to http(s) and mailto.  A separate, narrower list:
# the reading allow-list above is not touched.

COMPOSE_TAGS = {"a", "b", "strong", "i", "em", "u", "s", "strike", "ul", "ol", "li",
                "blockquote", "p", "br", "div", "pre", "code"}
COMPOSE_ATTRIBUTES = {"a": {"href"}}
COMPOSE_URL_SCHEMES = {"http", "https", "mailto"}


def clean_compose(html):
    """
    The HTML a user wrote in the compose editor, reduced to the compose
    allow-list (a fragment; scripts, event handlers, javascript: links,
    styles and images removed).
    """
    return nh3.clean(
        str(html or ""), tags=COMPOSE_TAGS, clean_content_tags=CLEAN_CONTENT,
        attributes=COMPOSE_ATTRIBUTES, url_schemes=COMPOSE_URL_SCHEMES,
        strip_comments=True, link_rel="noopener noreferrer").strip()
