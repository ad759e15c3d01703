"""The profile editor in headless chromium against the real server (issue 13): a new profile's errors all shown
at once beside their fields, fixed; the applicant watch naming the stored applicants it matches as the user types;
a preview of the unsaved form (progress shown, results in place, the form keeping its values); saved; deleted
after a confirmation. Screenshots at desktop width and at 390 px, in English and Chinese."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workflows import _no_sideways_scroll

Shot = Callable[[Any, str], Path]
WATCH_PROGRESS = """() => {
  window.progressSeen = false;
  const p = document.getElementById('preview-progress');
  new MutationObserver(() => { if (!p.hidden) window.progressSeen = true; }).observe(p, {attributes: true});
}"""


def _fill(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#profile-form [name={name}]", value)


def _errors(page: Any) -> set[str]:
    return set(page.eval_on_selector_all(
        "#profile-form .field .field-error", "els => els.map(e => e.closest('.field').dataset.name)"))


def _preview(page: Any) -> None:
    """Press "Preview as edited" and wait for its outcome; the progress indicator must have shown meanwhile."""
    page.evaluate(WATCH_PROGRESS)
    page.click("#preview-button")
    expect(page.locator("#preview-progress")).to_be_hidden(timeout=180_000)  # shown from the click until done
    expect(page.locator("#preview-results .preview-outcome")).to_be_attached()
    assert page.evaluate("window.progressSeen"), "no progress indicator while the preview ran"


def test_create_fix_preview_save_delete(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.goto("/profiles/new")
    _fill(page, {"name": "bad name!", "query": "battery AND (", "classes": "H01M, ZZ9", "threshold": "high"})
    page.click("#save-button")
    expect(page.locator("#form-errors .error")).to_be_visible()
    assert _errors(page) == {"name", "query", "classes", "threshold"}  # every error at once, beside its field
    expect(page.locator("#query-error .caret .at")).to_have_text("(")  # where the query is wrong
    shot(page, "errors-desktop")

    _fill(page, {"name": "ev-batteries", "query": "battery OR cell OR electrode", "classes": "H01M",
                 "threshold": "0.3"})
    page.fill("#f-applicants", "Samsung Electronics Co., Ltd.\nNobody Such Ltd")
    watch = page.locator("#applicant-watch")
    expect(watch.locator(".stored-name")).to_have_text(["SAMSUNG ELECTRONICS"])  # debounced fetch as typed
    expect(watch.locator("li.watched").nth(1)).to_contain_text("matches no stored applicant name")

    page.fill("#f-query", "ti:")  # a draft with an error: the preview puts it beside the field, runs nothing
    _preview(page)
    assert _errors(page) == {"query"}
    expect(page.locator("#preview-results .preview-count")).to_have_count(0)
    page.fill("#f-query", "battery OR cell OR electrode")
    page.fill("#f-weeks", "5200")
    url = page.url
    _preview(page)
    assert _errors(page) == set() and page.url == url  # rendered in place: no navigation
    expect(page.locator("#preview-results .preview-count")).to_be_visible()
    expect(page.locator("#preview-results .draft-note")).to_be_visible()
    assert page.locator("#preview-results ol.preview li").count() >= 1
    assert page.input_value("#f-name") == "ev-batteries"  # the form keeps what was typed
    assert page.input_value("#f-query") == "battery OR cell OR electrode"
    assert page.input_value("#f-applicants") == "Samsung Electronics Co., Ltd.\nNobody Such Ltd"
    shot(page, "preview-desktop")

    page.click("#save-button")
    page.wait_for_url("**/profiles/ev-batteries")
    expect(page.locator("#applicant-watch .stored-name")).to_have_text(["SAMSUNG ELECTRONICS"])
    expect(page.locator(".feedback-counts")).to_be_visible()
    shot(page, "saved-desktop")

    page.click("a.delete-link")
    page.wait_for_url("**/profiles/ev-batteries/delete")
    expect(page.locator(".confirm-box")).to_contain_text("cannot be undone")
    shot(page, "confirm-delete-desktop")
    page.click("#confirm-delete")
    page.wait_for_url("**/profiles?deleted=ev-batteries")
    expect(page.locator(".flash")).to_contain_text("ev-batteries")
    expect(page.locator("table.profile-list")).not_to_contain_text("ev-batteries")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_editor_at_phone_and_desktop_width(mobile_page: Any, staff_page: Any, lang: str, shot: Shot) -> None:
    for page, width in ((mobile_page, "mobile"), (staff_page, "desktop")):
        page.goto(f"/lang/{lang}?next=/profiles/new")
        expect(page.locator("#profile-form")).to_be_visible()
        _fill(page, {"name": "名称 有空格" if lang == "zh" else "bad name!",
                     "query": "ti:(battery AND (" + "electrode " * 12, "seeds": "not-a-number"})
        page.click("#save-button")
        assert _errors(page) == {"name", "query", "seeds"}
        if lang == "zh":
            expect(page.locator("#query-error")).to_contain_text("检索式有误")
        if width == "mobile":
            _no_sideways_scroll(page)
        shot(page, f"errors-{lang}-{width}")
        _fill(page, {"name": "电池" if lang == "zh" else "cells", "query": "battery OR glove", "seeds": "",
                     "weeks": "5200"})
        page.fill("#f-applicants", "Samsung Electronics")
        expect(page.locator("#applicant-watch .stored-name")).to_have_text(["SAMSUNG ELECTRONICS"])
        _preview(page)
        expect(page.locator("#preview-results .preview-count")).to_be_visible()
        if width == "mobile":
            _no_sideways_scroll(page)
        shot(page, f"preview-{lang}-{width}")
        page.goto("/profiles/garments")
        if width == "mobile":
            _no_sideways_scroll(page)
        shot(page, f"profile-{lang}-{width}")
