"""Unmarked literal text in templates: what `{% translate %}` should wrap but does not.

Each template is cut into Django's tokens. Text inside `{% blocktranslate %}…{% endblocktranslate
%}`, `{% comment %}`, `{% verbatim %}` and every variable or tag is replaced by a placeholder;
the rest is read as HTML. A text node, or a title / alt / placeholder / aria-label attribute,
with ASCII letters in it is unmarked text, unless it is inside code-like elements (`<code>`,
`<pre>`, `<kbd>`, `<samp>`, `<script>`, `<style>`) or the whole of it is on the short allow-list
of names and symbols below. `.txt` templates (emails) are text throughout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from django.template.base import Lexer, TokenType

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

# Placeholder for a variable, a tag or a translated block: invisible, no letters.
MARK = "\u2063"
# Whole text nodes that are names, not words to translate (product names, units, codes).
ALLOWED_TEXT = {
    "PA",  # the brand mark
    "UTC",
    "JSON",
    "CSV",
    "ID",
    "URL",
    "ARN",
    "UID",
    "ECS",
    "RAM",
    "STS",
    "OOS",
    "MFA",
    "TOTP",
    "API",
    "OpenAPI",
    "DingTalk",
    "Lark",
    "Feishu",
    "WeCom",
    "Slack",
    "ActionTrail",
    "AccessKey",
    "pap",
    "x",
}
# Templates without words of their own whose markup the HTML reader cannot follow.
UNREADABLE_TEMPLATES = {
    # Builds its tag name (`<a …>` or `<button …>`) with template logic.
    "allauth/elements/button.html",
}
CHECKED_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description"}
CODE_ELEMENTS = {"code", "pre", "kbd", "samp", "script", "style"}
_LETTERS = re.compile(r"[A-Za-z]")
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9_.@/:+-]*")


@dataclass(frozen=True)
class Finding:
    template: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line}: {self.text!r}"


def _needs_translation(text: str) -> bool:
    visible = " ".join(text.replace(MARK, " ").split())
    if not _LETTERS.search(visible):
        return False
    words = _WORDS.findall(visible)
    return any(word not in ALLOWED_TEXT for word in words)


def _skeleton(source: str) -> tuple[str, list[int]]:
    """The template with every tag, variable and translated block replaced by MARK, and for
    each character of it the source line it came from."""
    out: list[str] = []
    lines: list[int] = []
    skipping: str | None = None  # the end tag we wait for
    for token in Lexer(source).tokenize():
        if skipping:
            if token.token_type == TokenType.BLOCK and token.contents.split()[0] == skipping:
                skipping = None
            continue
        if token.token_type == TokenType.TEXT:
            out.append(token.contents)
            lines += [
                token.lineno + token.contents[:i].count("\n") for i in range(len(token.contents))
            ]
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents.split() else ""
            if name in ("blocktranslate", "blocktrans"):
                skipping = "endblocktranslate" if name == "blocktranslate" else "endblocktrans"
            elif name in ("comment", "verbatim"):
                skipping = "end" + name
            elif name == "block" and token.contents.split()[-1].endswith("_class"):
                # `{% block container_class %}wide{% endblock %}`: CSS classes, not words.
                skipping = "endblock"
        out.append(MARK)
        lines.append(token.lineno)
    return "".join(out), lines


class _Reader(HTMLParser):
    def __init__(self, lines: list[int]) -> None:
        super().__init__(convert_charrefs=True)
        self.lines = lines
        self.code_depth = 0
        self.found: list[tuple[int, str]] = []
        self.offsets = [0]

    def feed_with_offsets(self, text: str) -> None:
        # Line starts of the skeleton, to turn the parser's (line, column) into an offset.
        self.offsets = [0] + [m.end() for m in re.finditer("\n", text)]
        self.feed(text)
        self.close()

    def _line(self) -> int:
        line, column = self.getpos()
        offset = self.offsets[line - 1] + column if line - 1 < len(self.offsets) else 0
        return self.lines[min(offset, len(self.lines) - 1)] if self.lines else line

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in CODE_ELEMENTS:
            self.code_depth += 1
        for name, value in attrs:
            if name in CHECKED_ATTRIBUTES and value and _needs_translation(value):
                self.found.append((self._line(), f"{name}={value}"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in CHECKED_ATTRIBUTES and value and _needs_translation(value):
                self.found.append((self._line(), f"{name}={value}"))

    def handle_endtag(self, tag: str) -> None:
        if tag in CODE_ELEMENTS and self.code_depth:
            self.code_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.code_depth and _needs_translation(data):
            self.found.append((self._line(), " ".join(data.replace(MARK, " ").split())))


def scan(path: Path) -> list[Finding]:
    name = str(path.relative_to(TEMPLATES))
    if name in UNREADABLE_TEMPLATES:
        return []
    source = path.read_text(encoding="utf-8")
    skeleton, lines = _skeleton(source)
    if path.suffix == ".txt":
        found = []
        for number, text in enumerate(skeleton.split("\n")):
            if _needs_translation(text) and text.strip() != "--":
                offset = sum(len(line) + 1 for line in skeleton.split("\n")[:number])
                found.append(Finding(name, lines[min(offset, len(lines) - 1)], text.strip()))
        return found
    reader = _Reader(lines)
    reader.feed_with_offsets(skeleton)
    return [Finding(name, line, text) for line, text in reader.found]


def template_areas() -> list[str]:
    """`(root)` for the templates directly in templates/, else each top folder."""
    return sorted(
        {"(root)"}
        | {p.name for p in TEMPLATES.iterdir() if p.is_dir() and not p.name.startswith(".")}
    )


def templates_of(area: str) -> list[Path]:
    if area == "(root)":
        return sorted(p for p in TEMPLATES.glob("*") if p.suffix in (".html", ".txt"))
    return sorted(p for p in (TEMPLATES / area).rglob("*") if p.suffix in (".html", ".txt"))
