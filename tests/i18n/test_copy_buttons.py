"""The Copy buttons speak the reader's language (issue 17): copy-buttons.js holds no words of
its own; the page's script tag carries the translated labels and each block's data-copy name
is translated in the template."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.template import Context, Template
from django.utils import translation

ROOT = Path(settings.BASE_DIR)
SCRIPT = ROOT / "static" / "js" / "copy-buttons.js"
ARTIFACTS = ROOT / "test-artifacts" / "i18n"

PAGE = (
    "{% load i18n %}<!doctype html><html><body>"
    "<pre data-copy=\"{% translate 'the AccessKey secret' %}\">SECRET-VALUE</pre>"
    '{% include "includes/copy_buttons_script.html" %}</body></html>'
)


def _render(language: str) -> str:
    with translation.override(language):
        return Template(PAGE).render(Context({}))


def test_the_script_tag_carries_the_labels_in_the_readers_language() -> None:
    chinese = _render("zh-hans")
    assert 'data-label-copy="复制"' in chinese and 'data-label-copied="已复制"' in chinese
    assert 'data-label-copy-what="复制 {what}"' in chinese
    assert 'data-label-copied-what="已复制 {what}"' in chinese
    assert 'data-label-failed="无法复制\uff1a请选中文本后手动复制"' in chinese
    assert 'data-copy="AccessKey Secret"' in chinese
    english = _render("en")
    assert 'data-label-copy="Copy"' in english and 'data-label-copy-what="Copy {what}"' in english


def test_the_script_has_no_words_of_its_own() -> None:
    code = re.sub(r"^\s*//.*$", "", SCRIPT.read_text(), flags=re.M)
    # What a person sees or hears is only ever set from the labels, never from a literal.
    shown = r"""(textContent\s*=|setAttribute\("aria-label",|say\()\s*["'`][^"'`]"""
    assert re.findall(shown, code) == []
    assert not re.search(r"""["'`](Copy|Copied|Could not)|\s+copied["'`]""", code)
    for name in ("labelCopy", "labelCopied", "labelCopyWhat", "labelCopiedWhat", "labelFailed"):
        assert f"labels.{name}" in code


def test_every_page_loads_the_script_through_the_include_and_names_blocks_translated() -> None:
    direct, untranslated = [], []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        if "copy-buttons.js" in text and path.name != "copy_buttons_script.html":
            direct.append(path.name)
        untranslated += re.findall(r'data-copy="(?!\{% translate )[^"]*"', text)
    assert direct == [] and untranslated == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_copy_button_in_chinese_in_chromium(
    new_browser_context: Callable[..., Any], live_server: Any
) -> None:
    context = new_browser_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    html = _render("zh-hans")
    # The page is served at the live server's origin so the real static script loads.
    page.route(
        f"{live_server.url}/copy-test",
        lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"),
    )
    page.goto(f"{live_server.url}/copy-test")
    button = page.get_by_role("button", name="复制 AccessKey Secret")
    assert button.inner_text() == "复制"
    button.click()
    page.wait_for_function("document.querySelector('.copy-button').textContent === '已复制'")
    assert page.locator(".copy-status").inner_text() == "已复制 AccessKey Secret"
    assert page.evaluate("navigator.clipboard.readText()") == "SECRET-VALUE"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "copy-button-zh-hans.png"))
