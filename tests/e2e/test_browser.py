"""The staff web app in a real headless chromium against the real server: login, search, documents, curation with
the keyboard and the buttons, the digest preview, and the Chinese UI. Each step leaves a screenshot."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from distribution.models import AuditEvent, ReviewItem
from index.embedded import EmbeddedIndex
from patentsift.db import open_database
from tests.e2e.world import EMAIL, PASSWORD, STAFF_NAME, World

Shot = Callable[[Any, str], Path]
BAD_QUERY = "glove AND (ti:vest"


def _review_items(world: World) -> dict[int, ReviewItem]:
    with open_database(world.cfg, migrate=False) as db, db.begin() as s:
        return {i.id: i for i in s.scalars(select(ReviewItem))}


def _audit(world: World) -> list[AuditEvent]:
    with open_database(world.cfg, migrate=False) as db, db.begin() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _titles(world: World, doc_ids: set[str]) -> dict[str, str]:
    with EmbeddedIndex(world.cfg.index_path) as index:
        return {d: index.get(d).title() for d in doc_ids}


def test_login_refuses_a_wrong_password_then_lets_the_user_in(page: Any, shot: Shot) -> None:
    page.goto("/search?q=glove")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fsearch%3Fq%3Dglove$"))  # redirected, target kept
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "not the password")
    page.click("form[action='/login'] button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail address or password.")
    shot(page, "1-wrong-password")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/search?q=glove")
    expect(page.locator("header .who")).to_have_text(STAFF_NAME)
    shot(page, "2-logged-in")


def test_search_highlights_errors_and_facets(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.fill("input[name=q]", "glove")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=glove(&sort=relevance)?$"))  # the form carries its sort order
    hits = page.locator("ol.hits li.hit")
    expect(hits.first).to_be_visible()
    assert page.locator("ol.hits mark").count() >= 1
    assert page.locator("ol.hits mark").first.inner_text().lower() == "glove"
    total = int(page.locator("p.total").inner_text().split()[0])
    shot(page, "1-results")

    facet = page.locator("section.facet[data-facet=ipc] a", has_text="A41D").first
    facet.click()
    page.wait_for_url(re.compile(r"ipc%3AA41D"))
    expect(page.locator("input[name=q]")).to_have_value(re.compile(r"^glove AND ipc:A41D"))
    narrowed = int(page.locator("p.total").inner_text().split()[0])
    assert 1 <= narrowed <= total
    assert page.locator("ol.hits li.hit").count() == min(narrowed, 10)
    shot(page, "2-facet")

    page.fill("input[name=q]", BAD_QUERY)
    page.press("input[name=q]", "Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Invalid query")
    position = int(re.search(r"at position (\d+)", alert.inner_text()).group(1))
    assert 1 <= position <= len(BAD_QUERY) + 1
    assert page.locator("#query-error pre.caret").inner_text().startswith(BAD_QUERY)  # the query, with a caret
    assert page.locator("#query-error .at").inner_text() == BAD_QUERY[position - 1] == "("  # the unclosed one
    shot(page, "3-bad-query")


def test_open_a_document_from_the_results(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.goto("/search?q=helmet")
    first = page.locator("ol.hits li.hit a.title").first
    doc_id = first.get_attribute("href").rsplit("/", 1)[1]
    first.click()
    page.wait_for_url(f"**/documents/{doc_id}")
    expect(page.locator("article.document h1 .pn")).to_have_text(doc_id)
    expect(page.locator("section.claims li").first).to_be_visible()
    assert page.locator("section.classes li").count() >= 1
    assert "helmet" in page.locator("article.document h1").inner_text().lower() + \
        page.locator("section.abstract").inner_text().lower()
    shot(page, "1-document")


def test_curate_the_queue_and_preview_the_digest(staff_page: Any, world: World, shot: Shot) -> None:
    page = staff_page
    page.goto("/curation")
    items = page.locator("#queue-form li.item")
    expect(items.first).to_be_visible()
    ids = [int(i) for i in items.evaluate_all("els => els.map(e => e.dataset.id)")]
    assert len(ids) == world.queued >= 3
    shot(page, "1-queue")

    # keyboard: j focuses the first item, a approves it
    page.locator("body").press("j")
    expect(items.first).to_have_class(re.compile(r"\bcurrent\b"))
    page.locator("body").press("a")  # decided in place (no reload); gone from the pending queue after one
    by_key = ids[0]
    expect(page.locator(f"li.item[data-id='{by_key}']")).to_have_attribute("data-status", "approved")
    page.reload()
    assert page.locator(f"li.item[data-id='{by_key}']").count() == 0  # no longer pending
    shot(page, "2-approved-by-key")

    # annotate the next one (check it, type the note, press the Annotate button), then approve it by button
    note = "Compare with our 2024 filing"
    annotated = ids[1]
    page.check(f"li.item[data-id='{annotated}'] input[name=ids]")
    page.fill("#note", note)
    page.click("button[data-action=annotate]")
    page.click("#confirm-dialog button.primary")  # a decision on a selection asks first
    expect(page.locator(f"li.item[data-id='{annotated}'] p.note")).to_contain_text(note)
    shot(page, "3-annotated")
    page.check(f"li.item[data-id='{annotated}'] input[name=ids]")
    page.click("button[data-action=approve]")
    page.click("#confirm-dialog button.primary")
    expect(page.locator(f"li.item[data-id='{annotated}']")).to_have_attribute("data-status", "approved")
    page.reload()
    assert page.locator(f"li.item[data-id='{annotated}']").count() == 0

    rows = _review_items(world)
    assert rows[by_key].status == rows[annotated].status == "approved"
    assert rows[by_key].decided_by == rows[annotated].decided_by == EMAIL
    assert rows[annotated].note == note and rows[by_key].note is None
    assert all(rows[i].status == "pending" for i in ids[2:])
    trail = [(e.action, e.who, e.item_ids, {k: v for k, v in e.detail.items() if k not in ("before", "feedback")})  # undo state
             for e in _audit(world)]
    assert trail[-3:] == [("approve", EMAIL, [by_key], {}), ("annotate", EMAIL, [annotated], {"note": note}),
                          ("approve", EMAIL, [annotated], {})]

    page.click("nav.subnav a[href='/curation/audit']")
    events = page.locator("table.audit tr.event")
    expect(events).to_have_count(3)
    expect(events.first).to_contain_text(EMAIL)  # newest first: the button approval
    expect(page.locator("table.audit")).to_contain_text(note)
    shot(page, "4-audit")

    page.goto(f"/subscriptions/{world.subscription_id}/digest")
    approved = {rows[i].doc_id for i in (by_key, annotated)}
    still_pending = {rows[i].doc_id for i in ids[2:]} - approved
    text = page.locator("pre.digest-text").text_content()
    html = page.frame_locator("iframe.digest").locator("body")
    expect(html).to_contain_text(note)
    for doc_id, title in _titles(world, approved | still_pending).items():
        assert (title in text) == (doc_id in approved), (doc_id, title)
        if doc_id in approved:
            expect(html).to_contain_text(title)
    assert note in text
    expect(page.locator("strong.subject")).not_to_be_empty()
    shot(page, "5-digest-preview")


def test_switch_the_ui_to_chinese(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.goto("/search?q=glove")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.click("header span.lang a", timeout=5000)
    page.wait_for_url("**/search?q=glove")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page).to_have_title(re.compile("专利检索"))
    expect(page.locator("header span.lang strong")).to_have_text("中文")
    page.goto("/curation")
    expect(page.locator("h1")).to_have_text("审核队列")
    shot(page, "1-chinese")
