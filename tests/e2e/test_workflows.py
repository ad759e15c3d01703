"""The staff web app as outlet staff and analysts use it every day (issue 13), in headless chromium against the real
server: the navigation bar on every page, the organization/contact/staff lists, a search exported as CSV and
RIS, every main page at 390 px wide without sideways scrolling, and the API docs page offline under the app's CSP.
Each step leaves a screenshot (desktop and mobile, English and Chinese)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import MOBILE
from tests.e2e.world import EMAIL, STAFF_NAME

Shot = Callable[[Any, str], Path]
AREAS = {"search": "/search", "curation": "/curation", "profiles": "/profiles", "directory": "/organizations",
         "subscriptions": "/subscriptions", "reports": "/reports"}
OUTLET, ORGANIZATION, CONTACT = "East outlet", "Acme Apparel", "buyer@acme.example"


def _first_document(page: Any) -> str:
    page.goto("/search?q=glove")
    href = page.locator("ol.hits li.hit a.title").first.get_attribute("href")
    assert href and href.startswith("/documents/")
    return href


WIDE_ELEMENTS = """(limit) => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > limit + 0.5)
  .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                      + ' ' + Math.round(e.getBoundingClientRect().right))"""


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDE_ELEMENTS, MOBILE["width"]) if width > MOBILE["width"] else []
    assert width <= MOBILE["width"], f"{page.url} is {width} px wide at {MOBILE['width']} px: {wide}"


# --- 1. the navigation bar --------------------------------------------------------------------------------------
def test_navigation_bar_on_every_page(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    doc = _first_document(page)
    for area, url in [*AREAS.items(), ("search", doc), ("directory", "/staff"), ("curation", "/curation/audit"),
                      ("profiles", "/profiles/new")]:
        page.goto(url)
        nav = page.locator("header nav.areas")
        expect(nav.locator("a")).to_have_count(len(AREAS))
        assert [a.get_attribute("href") for a in nav.locator("a").all()] == list(AREAS.values())
        expect(nav.locator("a[aria-current=page]")).to_have_attribute("data-area", area)
        expect(page.locator("header .outlet")).to_have_text(OUTLET)
        expect(page.locator("header .who")).to_have_text(STAFF_NAME)
        expect(page.locator("header form[action='/logout'] button")).to_be_visible()
    shot(page, "1-desktop")

    page.goto("/search")  # every area is one click away, and each click lands on its page
    for area, url in AREAS.items():
        page.locator(f"header nav.areas a[data-area={area}]").click()
        page.wait_for_url(f"**{url}")
        expect(page.locator("header nav.areas a[aria-current=page]")).to_have_attribute("data-area", area)
    page.goto("/documents/NO-SUCH-DOC")  # an error page keeps the bar
    expect(page.locator("header nav.areas a")).to_have_count(len(AREAS))

    page.click("header span.lang a")  # Chinese labels, same areas
    expect(page.locator("header nav.areas a[data-area=directory]")).to_have_text("企业与联系人")
    page.goto("/search")
    shot(page, "2-desktop-zh")
    page.click("header form[action='/logout'] button")
    page.wait_for_url("**/login")
    expect(page.locator("header nav.areas")).to_have_count(0)  # no bar without a user


def test_navigation_bar_at_phone_width(mobile_page: Any, shot: Shot) -> None:
    page = mobile_page
    for area, url in AREAS.items():
        page.goto(url)
        for link in page.locator("header nav.areas a").all():
            box = link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"], (area, box)
        _no_sideways_scroll(page)
    page.locator("header nav.areas a[data-area=reports]").tap()
    page.wait_for_url("**/reports")
    shot(page, "1-mobile")


# --- 2. organizations, contacts and staff -----------------------------------------------------------------------
def test_organizations_contacts_and_staff_lists(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.locator("header nav.areas a[data-area=directory]").click()
    page.wait_for_url("**/organizations")
    orgs = page.locator("table.organizations tbody tr.organization")
    expect(orgs).to_have_count(1)
    expect(orgs.first).to_contain_text(ORGANIZATION)
    cells = orgs.first.locator("td")
    expect(cells.nth(2)).to_have_text("1")  # one contact
    expect(cells.nth(3)).to_have_text("1")  # one active (confirmed) subscription
    contacts = page.locator("table.contacts tbody tr.contact")
    expect(contacts).to_have_count(1)
    expect(contacts.first).to_contain_text(CONTACT)
    expect(contacts.first).to_contain_text("Bea Buyer")
    shot(page, "1-organizations")

    page.fill("form.filters input[name=q]", "nobody-here")
    page.press("form.filters input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=nobody-here"))
    expect(page.locator("tr.organization")).to_have_count(0)
    expect(page.locator("tr.contact")).to_have_count(0)
    page.fill("form.filters input[name=q]", "bea")  # a contact's name finds the contact and its organization
    page.press("form.filters input[name=q]", "Enter")
    expect(page.locator("tr.contact")).to_have_count(1)
    expect(page.locator("tr.organization")).to_have_count(1)

    page.locator("nav.tabs a[href='/staff']").click()
    page.wait_for_url("**/staff")
    staff = page.locator("table.staff tbody tr.staff-user")
    expect(staff).to_have_count(1)
    expect(staff.first).to_contain_text(STAFF_NAME)
    expect(staff.first).to_contain_text(EMAIL)
    expect(page.locator("header nav.areas a[aria-current=page]")).to_have_attribute("data-area", "directory")
    assert "argon2" not in page.content()
    shot(page, "2-staff")
    page.goto("/staff?outlet_id=999")  # another (or no) outlet: 404, like any object outside the outlet
    expect(page.locator("h1")).to_contain_text("404")


# --- 3. export a search -----------------------------------------------------------------------------------------
def test_export_a_search_as_csv_and_ris(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.fill("input[name=q]", "glove OR helmet")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=glove"))
    total = int(page.locator("p.total").inner_text().split()[0])
    assert total >= 2
    ids = [a.get_attribute("href").removeprefix("/documents/")
           for a in page.locator("ol.hits li.hit a.title").all()]
    export = page.locator("p.export")
    expect(export).to_be_visible()
    shot(page, "1-results-with-export")

    with page.expect_download() as info:
        export.locator("a[data-format=csv]").click()
    download = info.value
    assert download.suggested_filename == "patentsift-search-glove-OR-helmet.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == total
    assert [r["id"] for r in rows][:len(ids)] == ids  # the same order as on the page
    assert all(r["title"] and r["publication_date"] for r in rows)

    with page.expect_download() as info:
        export.locator("a[data-format=ris]").click()
    ris = Path(info.value.path()).read_text(encoding="utf-8")
    assert info.value.suggested_filename.endswith(".ris")
    assert ris.count("TY  - PAT") == total and ris.count("ER  - ") == total
    assert {m for m in re.findall(r"^ID  - (\S+)", ris, re.M)} == {r["id"] for r in rows}

    page.goto("/search?q=glove AND ipc:A41D*")  # a narrowed search exports only what it shows
    narrowed = int(page.locator("p.total").inner_text().split()[0])
    href = page.locator("p.export a[data-format=csv]").get_attribute("href")
    assert "ipc%3AA41D" in href
    body = page.request.get(href)
    assert body.ok and body.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(body.text())))) == narrowed


def test_facet_chips_class_titles_and_page_size(staff_page: Any, shot: Shot) -> None:
    page = staff_page
    page.fill("input[name=q]", "glove OR helmet")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=glove"))
    total = int(page.locator("p.total").inner_text().split()[0])
    expect(page.locator("p.chips")).to_have_count(0)
    ipc = page.locator("section.facet[data-facet=ipc] li", has_text="A42B")
    expect(ipc.locator(".class-title")).to_contain_text(re.compile(r"[Hh]eadwear|[Hh]at"))  # the subclass title
    ipc.locator("a").click()
    page.wait_for_url(re.compile(r"ipc%3AA42B"))
    chip = page.locator("p.chips a.chip")
    expect(chip).to_have_count(1)
    expect(chip).to_have_attribute("data-clause", "ipc:A42B*")
    narrowed = int(page.locator("p.total").inner_text().split()[0])
    assert narrowed < total
    shot(page, "1-chip")
    chip.click()  # removing the chip gives the query (and the results) from before
    expect(page.locator("p.chips")).to_have_count(0)
    expect(page.locator("input[name=q]")).to_have_value("(glove OR helmet)")
    assert int(page.locator("p.total").inner_text().split()[0]) == total

    page.goto("/search?q=")
    everything = int(page.locator("p.total").inner_text().split()[0])
    assert everything > 25, everything
    expect(page.locator("ol.hits li.hit")).to_have_count(10)
    page.locator("p.sizes a[data-size='25']").click()
    page.wait_for_url(re.compile(r"size=25"))
    expect(page.locator("ol.hits li.hit")).to_have_count(25)
    page.locator("nav.pager a[rel=next]").click()
    page.wait_for_url(re.compile(r"offset=25"))
    assert "size=25" in page.url
    expect(page.locator("ol.hits li.hit")).to_have_count(min(25, everything - 25))
    expect(page.locator("ol.hits")).to_have_attribute("start", "26")
    page.fill("input[name=q]", "glove")  # a new search keeps the page size
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"size=25"))


# --- 4. phone width: no sideways scrolling ----------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_main_pages_fit_a_phone(mobile_page: Any, desktop: Any, lang: str, shot: Shot) -> None:
    page = mobile_page
    doc = _first_document(page)
    if lang == "zh":
        page.goto("/lang/zh?next=/search")
        desktop.goto("/lang/zh?next=/search")
    pages = {"search": "/search?q=glove", "document": doc, "curation": "/curation", "reports": "/reports",
             "organizations": "/organizations", "staff": "/staff", "profiles": "/profiles",
             "subscriptions": "/subscriptions", "audit": "/curation/audit", "api-docs": "/api/docs"}
    for name, url in pages.items():
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        _no_sideways_scroll(page)
        shot(page, f"{name}-mobile")
        desktop.goto(url)
        shot(desktop, f"{name}-desktop")
    page.goto("/curation")  # the queue's cards and their controls stay on screen too
    item = page.locator("ol.queue li.item").first
    box = item.bounding_box()
    assert box and box["x"] + box["width"] <= MOBILE["width"]
    page.goto("/search")  # the syntax help opened, and a bad query's caret, still fit
    page.click("details#syntax-help summary")
    _no_sideways_scroll(page)
    page.goto("/search?q=" + "glove AND (ti:" + "x" * 80)
    _no_sideways_scroll(page)


@pytest.fixture
def desktop(staff_page: Any) -> Any:
    return staff_page


# --- 5. the API docs page ---------------------------------------------------------------------------------------
def test_api_docs_work_offline_under_the_csp(staff_page: Any, live_server: str, shot: Shot) -> None:
    page = staff_page
    violations: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: None if r.url.startswith(live_server) else outside.append(r.url))
    page.context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())  # offline
    page.locator("footer a[href='/api/docs']").click()
    page.wait_for_url("**/api/docs")
    response = page.request.get("/api/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("h1")).to_contain_text("patentsift")
    expect(page.locator("header nav.areas a")).to_have_count(len(AREAS))  # logged in: the bar is there too
    search = page.locator("details.operation", has=page.locator("code.path", has_text=re.compile(r"^/api/search$")))
    expect(search).to_have_count(1)
    expect(search.locator("span.method")).to_have_text("GET")
    search.locator("summary").click()
    expect(search.locator("table.params")).to_contain_text("limit")
    expect(search.locator("ul.responses")).to_contain_text("SearchOut")
    export = page.locator("details.operation", has=page.locator("code.path", has_text="/api/search/export"))
    expect(export).to_have_count(1)
    for path in ("/api/profiles", "/api/subscriptions", "/api/queue", "/api/reports"):
        expect(page.locator("code.path", has_text=re.compile(f"^{re.escape(path)}$")).first).to_be_visible()
    schema = page.locator("details#schema-SearchOut")
    schema.locator("summary").click()
    expect(schema.locator("ul.fields")).to_contain_text("next_cursor")
    shot(page, "1-api-docs")
    assert not violations, violations
    assert not outside, outside
    assert page.locator("a.openapi-json").get_attribute("href") == "/api/openapi.json"
