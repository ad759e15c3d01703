"""Issue 13 in headless chromium against the real server, as staff use it: a subscription edited (frequency
switched to a cron expression shown in words, time zone changed), a search sorted by date, grouped by family,
saved as a profile and exported, a profile's Atom feed fetched and its links followed, report charts; each page at
desktop and 390 px wide (no sideways scrolling) in English and Chinese, with screenshots.

This module seeds its own installation (tests/e2e/world.py plus one patent family of three) and server, so what it
changes (a subscription, a new profile) does not reach the other browser tests."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from playwright.sync_api import expect

from index.model import PublicationNumber
from patentsift.wiring import System
from tests.e2e.conftest import serve_app
from tests.e2e.world import EMAIL, PASSWORD, World, build_world, sample_documents

Shot = Callable[[Any, str], Path]
MOBILE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
ATOM = "{http://www.w3.org/2005/Atom}"
FAMILY = "FAM-E2E-13"
IMAGES_LOADED = "[...document.images].every(i => i.complete && i.naturalWidth > 0)"


@pytest.fixture(scope="module")
def analyst_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = build_world(tmp_path_factory.mktemp("e2e-analyst"))
    glove = next(d for d in sample_documents() if "glove" in d.title().lower() and d.publication_date)
    members = [dataclasses.replace(glove, family_id=FAMILY),
               dataclasses.replace(glove, pn=PublicationNumber("EP", "3" + glove.pn.number[-6:], "A1"),
                                   family_id=FAMILY),
               dataclasses.replace(glove, pn=PublicationNumber("WO", "2024" + glove.pn.number[-6:], "A1"),
                                   family_id=FAMILY)]
    with System(world.cfg) as system:
        assert not system.index.upsert(members).failed
    return world


@pytest.fixture(scope="module")
def server(analyst_world: World) -> Iterator[str]:
    with serve_app(analyst_world.cfg, "e2e-analyst-uvicorn") as url:
        yield url


def _context(browser: Any, server: str, viewport: dict[str, int], lang: str) -> Any:
    mobile = viewport["width"] < 500
    context = browser.new_context(base_url=server, locale="zh-CN" if lang == "zh" else "en-US", viewport=viewport,
                                  is_mobile=mobile, has_touch=mobile, device_scale_factor=2 if mobile else 1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/search")
    page.goto(f"/lang/{lang}?next=/search")
    return page


@pytest.fixture
def desktop(browser: Any, server: str) -> Iterator[Any]:
    page = _context(browser, server, DESKTOP, "en")
    yield page
    page.context.close()


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= MOBILE["width"], f"{page.url} is {width} px wide at {MOBILE['width']} px"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- 1. a subscription edited --------------------------------------------------------------------------------
def test_edit_subscription_to_a_cron_and_another_time_zone(desktop: Any, analyst_world: World, shot: Shot) -> None:
    page = desktop
    sub = analyst_world.subscription_id
    page.goto("/subscriptions")
    row = page.locator(f"tr#sub-{sub}")
    expect(row.locator(".next-due")).not_to_have_text("–")
    expect(row.locator(".last-sent")).to_have_text("never")
    shot(page, "1-subscriptions")
    row.locator("a.edit").click()
    page.wait_for_url(f"**/subscriptions/{sub}/edit")
    cron = page.locator("input[name=cron]")
    expect(cron).to_be_hidden()  # shown only for "custom (cron)"
    page.select_option("select[name=frequency]", "cron")
    expect(cron).to_be_visible()
    cron.fill("0 8 * * 1-5")
    expect(page.locator("output.cron-words")).to_have_text("At 08:00, Monday through Friday")
    cron.fill("0 25 * * *")
    expect(page.locator("output.cron-words")).to_have_class(re.compile("invalid"))
    cron.fill("0 8 * * 1-5")
    page.select_option("select[name=timezone]", "Europe/Berlin")
    page.fill("input[name=max_items]", "12")
    shot(page, "2-edit-form")
    page.click("#edit-subscription button[type=submit]")
    page.wait_for_url(re.compile(r"/subscriptions\?saved="))
    row = page.locator(f"tr#sub-{sub}")
    expect(row.locator("td.frequency")).to_contain_text("At 08:00, Monday through Friday")
    expect(row).to_contain_text("Europe/Berlin")
    expect(row.locator(".next-due")).to_contain_text(re.compile(r"08:00 Europe/Berlin"))
    shot(page, "3-saved")

    page.goto(f"/subscriptions/{sub}/edit")  # every mistake at once, next to its field
    page.fill("input[name=cron]", "0 99 * * *")
    page.fill("input[name=max_items]", "0")
    page.click("#edit-subscription button[type=submit]")
    expect(page.locator(".field-error#err-cron")).to_be_visible()
    expect(page.locator(".field-error#err-max_items")).to_be_visible()
    shot(page, "4-errors")


# --- 2. a search sorted, grouped by family, saved as a profile, exported ---------------------------------------
def test_search_sorted_grouped_saved_and_exported(desktop: Any, shot: Shot) -> None:
    page = desktop
    page.goto("/search")
    page.fill("input[name=q]", "glove OR helmet")
    page.select_option("select#sort", "pd")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"sort=pd"))
    dates = [re.search(r"\d{4}-\d\d-\d\d", m).group(0) for m in page.locator("ol.hits li.hit .meta").all_inner_texts()]
    assert len(dates) >= 2 and dates == sorted(dates, reverse=True)
    family = page.locator(f"li.hit[data-family='{FAMILY}']")
    expect(family).to_have_count(1)  # one result for the family of three
    details = family.locator("details.family")
    expect(details.locator("li")).to_have_count(2)
    details.locator("summary").click()
    expect(details.locator("li").first).to_be_visible()
    shot(page, "1-sorted-grouped")
    ids = [a.get_attribute("href").removeprefix("/documents/") for a in page.locator("ol.hits li.hit a.title").all()]

    with page.expect_download() as info:
        page.locator("p.export a[data-format=csv]").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    exported = [r["id"] for r in rows]
    assert len(exported) == len(ids) + 2  # every family member is exported
    assert [i for i in exported if i in ids] == ids  # in the page's (date) order
    assert [r["publication_date"] for r in rows] == sorted((r["publication_date"] for r in rows), reverse=True)

    page.fill("form#save-profile input[name=name]", "glove-watch")
    page.click("form#save-profile button[type=submit]")
    page.wait_for_url("**/profiles/glove-watch")
    expect(page.locator("[name=query]")).to_have_value("glove OR helmet")  # the profile editor, filled in
    shot(page, "2-saved-profile")
    page.goto("/search?q=glove")  # the same name again: refused next to the field
    page.fill("form#save-profile input[name=name]", "glove-watch")
    page.click("form#save-profile button[type=submit]")
    expect(page.locator("#save-error")).to_contain_text("not available")


# --- 3. the feed -----------------------------------------------------------------------------------------------
def test_profile_feed_is_fetched_and_its_links_open(desktop: Any, shot: Shot) -> None:
    page = desktop
    page.goto("/profiles/garments/feed")
    url = page.locator("#feed-url").inner_text()
    assert "token=" in url
    shot(page, "1-feed-page")
    res = page.request.get(_path(url))
    assert res.ok and res.headers["content-type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(res.body())
    entries = feed.findall(f"{ATOM}entry")
    assert entries
    first = entries[0]
    page.goto(_path(first.find(f"{ATOM}link").get("href")))
    expect(page.locator("h1")).to_contain_text(first.findtext(f"{ATOM}title", "")[:30])
    tampered = _path(url)[:-2] + ("xx" if not url.endswith("xx") else "yy")
    assert page.request.get(tampered).status == 404


# --- 4. every new page at desktop and phone width, in both languages ----------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_new_pages_fit_a_phone_in_both_languages(browser: Any, server: str, analyst_world: World, lang: str,
                                                 shot: Shot) -> None:
    pages = {"subscriptions": "/subscriptions", "subscription-edit": f"/subscriptions/{analyst_world.subscription_id}/edit",
             "search": "/search?q=glove+OR+helmet&sort=ad", "feed": "/profiles/garments/feed", "reports": "/reports"}
    phone, wide = _context(browser, server, MOBILE, lang), _context(browser, server, DESKTOP, lang)
    try:
        for name, url in pages.items():
            phone.goto(url)
            expect(phone.locator("main")).to_be_visible()
            phone.wait_for_function(IMAGES_LOADED)
            _no_sideways_scroll(phone)
            shot(phone, f"{name}-{lang}-390")
            wide.goto(url)
            wide.wait_for_function(IMAGES_LOADED)
            shot(wide, f"{name}-{lang}-desktop")
        wide.goto("/reports")  # the charts are images under the CSP, loaded
        charts = wide.locator(".charts img")
        expect(charts).to_have_count(6)
        assert all(wide.evaluate("(img) => img.complete && img.naturalWidth > 0", c.element_handle())
                   for c in charts.all())
        if lang == "zh":
            expect(wide.locator(".charts figcaption").nth(1)).to_have_text("匹配")
            wide.goto(f"/subscriptions/{analyst_world.subscription_id}/edit")
            wide.select_option("select[name=frequency]", "cron")
            wide.fill("input[name=cron]", "30 6 1 * *")
            expect(wide.locator("output.cron-words")).to_contain_text("06:30")
            shot(wide, "cron-in-words-zh")
    finally:
        phone.context.close()
        wide.context.close()
