# -*- test-case-name: tests.test_webmail_compose -*-
"""
HTML as plain text (SPEC W2): the text/plain part of an HTML message the
webmail writes, and the starting text of a reply to an HTML-only mail.

Kept simple, with the standard library's html.parser: block elements
(div, p, headings, tables' rows) end lines, <br> breaks one, paragraphs
are separated by a blank line, list items get "- " or "N. ", quoted
blocks get "> " per level, a link's address follows its text in angle
brackets when it differs from it; script, style and head content are
dropped; entities are decoded; runs of white space collapse (not in
<pre>).
"""

import re
from html.parser import HTMLParser

#: Elements whose start and end end the current line.
BLOCKS = {"div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "center", "dl", "dt",
          "dd", "address", "section", "article", "header", "footer", "hr"}
#: Elements followed and preceded by a blank line.
PARAGRAPHS = {"p", "pre"}
#: Elements whose content is not text.
SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "math",
        "object", "iframe"}
_SPACE = re.compile(r"\s+")


class _Text(HTMLParser):

    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.lines = []         # (quote depth, text)
        self.buf = ""
        self.depth = 0
        self.pre = 0
        self.skip = 0
        self.lists = []         # [kind, counter]
        self.links = []         # [href, text so far]

    # -- lines ----------------------------------------------------------------

    def flush(self):
        if self.buf.strip():
            self.lines.append((self.depth, self.buf.rstrip()))
        self.buf = ""

    def newline(self):
        self.lines.append((self.depth, self.buf.rstrip()))
        self.buf = ""

    def blank(self):
        self.flush()
        if self.lines and self.lines[-1][1]:
            self.lines.append((self.depth, ""))

    def write(self, text):
        if self.links:
            self.links[-1][1] += text
        self.buf += text

    # -- parser events ----------------------------------------------------------

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
            return
        if self.skip:
            return
        if tag == "br":
            self.newline()
        elif tag in PARAGRAPHS:
            self.blank()
            if tag == "pre":
                self.pre += 1
        elif tag == "blockquote":
            self.blank()
            self.depth += 1
        elif tag in ("ul", "ol"):
            self.flush()
            self.lists.append([tag, 0])
        elif tag == "li":
            self.flush()
            indent = "  " * max(0, len(self.lists) - 1)
            if self.lists and self.lists[-1][0] == "ol":
                self.lists[-1][1] += 1
                self.buf = "%s%d. " % (indent, self.lists[-1][1])
            else:
                self.buf = indent + "- "
        elif tag == "a":
            self.links.append([dict(attrs).get("href") or "", ""])
        elif tag in ("td", "th"):
            if self.buf.strip():
                self.buf += "\t"
        elif tag in BLOCKS:
            self.flush()

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag in PARAGRAPHS:
            self.blank()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag == "blockquote":
            self.flush()
            self.depth = max(0, self.depth - 1)
            self.blank()
        elif tag in ("ul", "ol"):
            self.flush()
            if self.lists:
                self.lists.pop()
        elif tag == "li":
            self.flush()
        elif tag == "a" and self.links:
            href, text = self.links.pop()
            target = href[7:] if href.lower().startswith("mailto:") else href
            if target and target.strip() not in text and re.match(
                    r"^(https?:|mailto:)", href, re.I):
                self.write(" <%s>" % target.strip())
        elif tag in BLOCKS:
            self.flush()

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            parts = data.replace("\r\n", "\n").split("\n")
            for part in parts[:-1]:
                self.write(part)
                self.newline()
            self.write(parts[-1])
            return
        text = _SPACE.sub(" ", data)
        if not self.buf.strip():
            text = text.lstrip()
        self.write(text)

    def text(self):
        self.flush()
        out, blank = [], True
        for depth, line in self.lines:
            if not line and blank:
                continue        # no leading or doubled blank lines
            blank = not line
            prefix = "> " * depth
            out.append((prefix + line) if line else prefix.rstrip())
        while out and not out[-1].strip("> "):
            out.pop()
        return "\n".join(out)


def html_to_text(html):
    """Plain text of an HTML fragment or document (never raises on bad HTML)."""
    parser = _Text()
    try:
        parser.feed(str(html or ""))
        parser.close()
    except Exception:
        # html.parser tolerates nearly anything; keep whatever was read.
        pass
    return parser.text()

