"""Finds English left on a page rendered in Chinese: runs of words from the English catalogue.

The vocabulary is every word of three letters or more in the catalogue's English msgids (the
portal's own sentences), less product names and technical terms the Chinese text keeps as they
are (ALLOWED_WORDS). A page's visible text (and its title / alt / placeholder / aria-label
attributes) is split into tokens; two or more vocabulary words in a row is an untranslated
English phrase. Names, ids, emails, ARNs and role names break a run (they hold digits, `@`,
`:`, `/` or `-`, or are single words), and code-like elements (`<code>`, `<pre>`, policy JSON,
`.mono`) and data written by people or the cloud (`<bdi>`, the ledger's recorded labels and raw
changes) are not read at all.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.i18n.catalogue import read

# Kept in English in the Chinese text (glossary): products, protocols, formats, codes.
ALLOWED_WORDS = {
    "alibaba",
    "cloud",
    "accesskey",
    "actiontrail",
    "api",
    "arn",
    "csv",
    "dingtalk",
    "ecs",
    "false",
    "feishu",
    "google",
    "http",
    "https",
    "json",
    "lark",
    "mfa",
    "microsoft",
    "authenticator",
    "oos",
    "pap",
    "ram",
    "slack",
    "sts",
    "totp",
    "true",
    "uid",
    "url",
    "utc",
    "webhook",
    "wecom",
    "incoming",
    "english",
}
# <bdi> holds data people or the cloud wrote (a reason, a policy's description, a recorded
# label), isolated as the templates do for any such value; it is in the writer's language.
SKIPPED_ELEMENTS = {
    "code",
    "pre",
    "kbd",
    "samp",
    "script",
    "style",
    "textarea",
    "select",
    "template",
    "bdi",
}
# Ids and codes, and the ledger's record as written: action codes with their recorded target
# label (`action-name`), raw field changes (`diff`), request ids (`ids`).
SKIPPED_CLASSES = {"mono", "policy", "secret", "json", "action-name", "diff", "ids"}
CHECKED_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label"}
VOID_ELEMENTS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
_PLACEHOLDERS = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{\{[^}]*\}\}|<[^>]+>")
_WORD = re.compile(r"[A-Za-z]{3,}")
# Quotes and brackets around a word, closing punctuation after it (typographic ones escaped).
_TOKEN_EDGE = re.compile(r"^[\"'(\[\u00ab\u201c\u2018]+|[\"')\].,;:!?\u00bb\u201d\u2019\u2026]+$")


def english_vocabulary() -> set[str]:
    words: set[str] = set()
    for entry in read():
        for text in (entry.msgid, entry.msgid_plural or ""):
            words |= {w.lower() for w in _WORD.findall(_PLACEHOLDERS.sub(" ", text))}
    return words - ALLOWED_WORDS


def english_runs(text: str, vocabulary: set[str]) -> list[str]:
    """Runs of two or more vocabulary words in a row in `text`."""
    runs: list[str] = []
    current: list[str] = []
    for raw in text.split():
        token = _TOKEN_EDGE.sub("", raw)
        if token.isalpha() and token.isascii() and token.lower() in vocabulary:
            current.append(token)
            continue
        if len(current) >= 2:
            runs.append(" ".join(current))
        current = []
        # Punctuation ends a sentence fragment; a bare name or id breaks the run as well.
    if len(current) >= 2:
        runs.append(" ".join(current))
    return runs


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_stack: list[str] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        if tag in VOID_ELEMENTS:
            if not self.skip_stack:
                self._attributes(attrs)
            return
        if self.skip_stack or tag in SKIPPED_ELEMENTS or classes & SKIPPED_CLASSES:
            self.skip_stack.append(tag)
            return
        self._attributes(attrs)
        # Block boundaries end a run: "Sign in" in one cell, "Register" in the next.
        self.chunks.append("\n")

    def _attributes(self, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in CHECKED_ATTRIBUTES and value:
                self.chunks.append("\n" + value + "\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_stack:
            if tag in self.skip_stack:
                while self.skip_stack and self.skip_stack.pop() != tag:
                    pass
            return
        self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_stack:
            self.chunks.append(data)


def untranslated_phrases(html: str, vocabulary: set[str]) -> list[str]:
    reader = _VisibleText()
    reader.feed(html)
    reader.close()
    found: list[str] = []
    for chunk in "".join(reader.chunks).split("\n"):
        found += english_runs(chunk, vocabulary)
    return found
