"""A week's curation queue as outlet staff work it (issue 13), in headless chromium against the real server: several
hundred review items grouped into document cards, curated with the keyboard only (approve a card, override one
subscription, a note, a pin, a bulk approval confirmed then undone), no page reloads, the database checked after;
mailed items locked; paging; the queue at 390 px; screenshots at desktop and phone width in English and Chinese."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from distribution.models import AuditEvent, ReviewItem
from patentsift.db import open_database
from tests.e2e.conftest import serve_app
from tests.e2e.week import EMAIL, PASSWORD, SENT_AT, Week, build_week

Shot = Callable[[Any, str], Path]
MOBILE = {"width": 390, "height": 844}
NOTE = "Check claim 3 against our 2025 filing"


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    return build_week(tmp_path_factory.mktemp("week"))


@pytest.fixture(scope="module")
def week_server(week: Week) -> Iterator[str]:
    with serve_app(week.cfg, "week-uvicorn") as url:
        yield url


def _context(browser: Any, base: str, **kw: Any) -> Any:
    context = browser.new_context(base_url=base, locale="en-US", **kw)
    context.set_default_timeout(10_000)
    return context


def _login(page: Any, email: str = EMAIL) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/search")


def _items(week: Week) -> dict[int, ReviewItem]:
    with open_database(week.cfg) as db, db.session() as s:
        return {i.id: i for i in s.scalars(select(ReviewItem))}


def _events(week: Week) -> list[AuditEvent]:
    with open_database(week.cfg) as db, db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _ids(card: Any) -> list[int]:
    return [int(i) for i in (card.get_attribute("data-items") or "").split()]


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= MOBILE["width"], f"{page.url} is {width} px wide at {MOBILE['width']} px"


def test_a_week_curated_with_the_keyboard(browser: Any, week_server: str, week: Week, shot: Shot) -> None:
    context = _context(browser, week_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page)
    page.goto("/curation")
    cards = page.locator("ol.queue > li.item")
    expect(cards).to_have_count(50)  # a page of documents; the rest on the next
    north = {i: r for i, r in _items(week).items() if r.subscription_id <= 5}
    docs = {r.doc_id for r in north.values()}
    assert len(north) == week.items >= 250 and len(docs) > 50
    expect(page.locator("#totals")).to_contain_text(f"{len(docs)} documents ({len(north)} items)")
    expect(page.locator("nav.pager")).to_contain_text("Page 1 of 2")
    first_card = cards.first
    expect(first_card.locator(".why").first).to_contain_text("Matched terms:")
    assert first_card.locator(".applicant").count() == 1 and first_card.locator("details ul.classes li").count()
    shot(page, "1-desktop-en")
    page.evaluate("window.__same_page = 1")  # gone if anything reloads the page

    # a: approve the first card (every subscription it matched, the mailed one aside)
    body = page.locator("body")
    body.press("j")
    expect(cards.nth(0)).to_have_class("item current")
    body.press("a")
    expect(cards.nth(0)).to_have_attribute("data-status", "approved")
    expect(cards.nth(0)).to_have_class("item current")  # the cursor stays

    # e opens the second card; j moves onto its first subscription; r rejects only that one (an override)
    body.press("j")
    body.press("e")
    rows = cards.nth(1).locator("li.sub")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 2
    override_id = int(rows.first.get_attribute("data-id"))
    body.press("j")
    expect(rows.first).to_have_class("sub current")
    body.press("r")
    expect(cards.nth(1).locator(f"li.sub[data-id='{override_id}']")).to_have_attribute("data-status", "rejected")
    expect(cards.nth(1)).to_have_attribute("data-status", "pending")
    expect(cards.nth(1).locator(f"li.sub[data-id='{override_id}']")).to_have_class("sub current")
    shot(page, "2-override-en")
    body.press("e")  # close the card: the cursor goes back to it
    expect(cards.nth(1)).to_have_class("item current")

    # n: a note on the third card (Enter saves)
    body.press("j")
    body.press("n")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type(NOTE)
    page.keyboard.press("Enter")
    expect(cards.nth(2).locator("p.note")).to_contain_text(NOTE)
    expect(cards.nth(2)).to_have_class("item current")

    # x x a: a bulk approval of cards 4 and 5 asks first (Enter confirms); u undoes it
    body.press("j")
    body.press("x")
    body.press("j")
    body.press("x")
    body.press("a")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".question")).to_contain_text("2 document(s)")
    shot(page, "3-confirm-en")
    page.keyboard.press("Enter")
    expect(cards.nth(3)).to_have_attribute("data-status", "approved")
    expect(cards.nth(4)).to_have_attribute("data-status", "approved")
    expect(page.locator("#undo-bar")).to_be_visible()
    bulk_ids = _ids(cards.nth(3)) + _ids(cards.nth(4))
    assert all(_items(week)[i].status == "approved" for i in bulk_ids)
    body.press("u")
    expect(cards.nth(3)).to_have_attribute("data-status", "pending")
    expect(cards.nth(4)).to_have_attribute("data-status", "pending")
    expect(page.locator("#live")).to_contain_text("Undone")

    # p: pin the sixth card
    body.press("j")
    body.press("p")
    expect(cards.nth(5).locator(".head .badge.pinned")).to_be_visible()
    assert page.evaluate("window.__same_page") == 1  # no reload in all of this

    # the database afterwards
    rows_now = _items(week)
    one, two, three, six = (_ids(cards.nth(n)) for n in (0, 1, 2, 5))
    sent_doc = rows_now[week.sent_item]
    mailed = {i for i in one if (rows_now[i].doc_id, rows_now[i].subscription_id) == (sent_doc.doc_id,
                                                                                     sent_doc.subscription_id)}
    assert week.sent_item in mailed and len(mailed) < len(one)  # mailed items keep their decision
    assert all(rows_now[i].status == "approved" and rows_now[i].decided_by == EMAIL for i in set(one) - mailed)
    assert rows_now[override_id].status == "rejected"
    assert all(rows_now[i].status == "pending" for i in two if i != override_id)
    assert all(rows_now[i].note == NOTE for i in three)
    assert all(rows_now[i].status == "pending" and rows_now[i].decided_by is None for i in bulk_ids)
    assert all(rows_now[i].pinned for i in six)
    events = [(e.action, e.who, sorted(e.item_ids)) for e in _events(week) if e.who == EMAIL]
    assert events == [("approve", EMAIL, sorted(set(one) - mailed)), ("reject", EMAIL, [override_id]),
                      ("annotate", EMAIL, sorted(three)), ("approve", EMAIL, sorted(bulk_ids)),
                      ("undo", EMAIL, sorted(bulk_ids)), ("pin", EMAIL, sorted(six))]

    # the mailed item shows when it went out, with nothing to press
    sent_card = page.locator(f"li.item:has(li.sub[data-id='{week.sent_item}'])")
    sent_row = sent_card.locator(f"li.sub[data-id='{week.sent_item}']")
    expect(sent_row).to_have_attribute("data-sent", SENT_AT.isoformat())
    expect(sent_row.locator(".badge.sent")).to_contain_text("sent 2026-03-02 08:15")
    expect(sent_row.locator("button")).to_have_count(0)

    # the next page holds the rest; the audit trail lists the undo
    first_page = set(cards.evaluate_all("els => els.map(e => e.dataset.doc)"))
    page.locator("nav.pager a[rel=next]").click()
    page.wait_for_url("**page=2**")
    expect(cards.first).to_be_visible()
    assert not first_page & set(cards.evaluate_all("els => els.map(e => e.dataset.doc)"))
    page.goto("/curation?status=all&page=2")  # every document, any status: 50 here, the rest on page 2
    expect(cards).to_have_count(len(docs) - 50)
    page.goto("/curation/audit")
    expect(page.locator("table.audit tr.event").nth(1)).to_contain_text("Undo")  # newest first: pin, undo

    page.goto("/lang/zh?next=/curation")
    expect(page.locator("h1")).to_have_text("审核队列")
    expect(page.locator("#totals")).to_contain_text("件文献")
    page.locator("ol.queue > li.item").nth(1).locator("details summary").click()
    shot(page, "4-desktop-zh")
    context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_week_fits_a_phone(browser: Any, week_server: str, lang: str, shot: Shot) -> None:
    context = _context(browser, week_server, viewport=MOBILE, device_scale_factor=2, is_mobile=True,
                       has_touch=True)
    page = context.new_page()
    _login(page)
    if lang == "zh":
        page.goto("/lang/zh?next=/curation")
    page.goto("/curation")
    cards = page.locator("ol.queue > li.item")
    expect(cards).to_have_count(50)
    _no_sideways_scroll(page)
    cards.first.locator("details summary").tap()
    expect(cards.first.locator("li.sub").first).to_be_visible()
    _no_sideways_scroll(page)
    box = cards.first.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"]
    row_button = cards.first.locator("li.sub:not([data-sent]) button[data-action=reject]").first
    row_button.tap()  # an override by touch, in place
    expect(cards.first.locator("li.sub[data-status=rejected]").first).to_be_visible()
    _no_sideways_scroll(page)
    shot(page, f"mobile-{lang}")
    context.close()


def test_another_outlets_staff_sees_none_of_it(browser: Any, week_server: str, week: Week) -> None:
    context = _context(browser, week_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, "staff@south.example")
    page.goto("/curation?status=all&per_page=200")
    north_contacts = ("acme.example", "borealis.example")
    assert not any(c in page.content() for c in north_contacts)
    res = page.request.post("/curation/undo", form={"event": "1"},
                            headers={"X-CSRF-Token": page.locator("meta[name=csrf-token]").get_attribute("content"),
                                     "Accept": "application/json"})
    assert res.status == 404
    context.close()
