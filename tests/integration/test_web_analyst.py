"""Issue 13 through the real ASGI app (the site of tests/integration/web_site.py: two outlets, real SQLite, real embedded index):
editable subscriptions (cron in words, time zone, every field error at once, duplicates refused, delivery status),
search sorted by date and grouped by family, "save as profile", a profile's signed Atom feed (parsed with a real
XML parser, its links followed), report charts (pygal SVG images) and outlet scoping of each."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from index.model import PatentDocument, PublicationNumber
from patentsift.wiring import System, standalone_match_store
from tests.integration.test_web_authz import send
from tests.integration.web_site import Site, build_site, login

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    from tests.integration.dist_support import load_documents

    return load_documents(shared_patents)


@pytest.fixture(scope="module")
def site_template(tmp_path_factory: pytest.TempPathFactory, docs: list[PatentDocument]) -> Site:
    site = build_site(tmp_path_factory.mktemp("site"), docs)
    # one patent family of three: a document and two later members (the corpus has no family ids)
    base = next(d for d in docs if d.pn.country == "US" and d.publication_date and d.application_date)
    family = [dataclasses.replace(base, family_id="FAM-13"),
              dataclasses.replace(base, pn=PublicationNumber("EP", "9" + base.pn.number[-6:], "A1"),
                                  family_id="FAM-13"),
              dataclasses.replace(base, pn=PublicationNumber("WO", "2099" + base.pn.number[-6:], "A1"),
                                  family_id="FAM-13")]
    system = System(site.cfg)
    try:
        assert not system.index.upsert(family).failed
    finally:
        system.close()
    return site


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- subscriptions -------------------------------------------------------------------------------------------
def test_edit_subscription_to_cron_and_time_zone(client: TestClient, site: Site) -> None:
    csrf = login(client)
    page = client.get(f"/subscriptions/{site.east_sub}/edit")
    assert page.status_code == 200
    assert '<option value="Europe/Berlin">' in page.text and 'name="cron"' in page.text
    assert "Next due" in page.text and "never" in page.text
    res = client.post(f"/subscriptions/{site.east_sub}/edit", data={
        "csrf_token": csrf, "profiles": ["semis"], "frequency": "cron", "cron": "0 8 * * 1-5", "max_items": "7",
        "format": "text", "contact_language": "en", "timezone": "Europe/Berlin"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    sub = client.get(f"/api/subscriptions/{site.east_sub}").json()
    assert (sub["frequency"], sub["max_items"], sub["format"], sub["timezone"], sub["language"]) == (
        "0 8 * * 1-5", 7, "text", "Europe/Berlin", "en")
    listing = client.get(res.headers["location"]).text
    row = listing[listing.index(f'id="sub-{site.east_sub}"'):]
    assert "At 08:00, Monday through Friday" in row[:3000] and "Europe/Berlin" in row[:3000]
    assert re.search(r'class="next-due">\d{4}-\d\d-\d\d 08:00 Europe/Berlin', row)
    client.get("/lang/zh")
    zh = client.get("/subscriptions").text
    assert "在 08:00" in zh and "下次发送" in zh
    words = client.get("/api/frequency/words", params={"frequency": "30 6 1 * *", "lang": "zh"}).json()
    assert words["valid"] and "06:30" in words["words"]
    assert not client.get("/api/frequency/words", params={"frequency": "61 * * * *"}).json()["valid"]


def test_every_field_error_is_shown_at_once(client: TestClient, site: Site) -> None:
    csrf = login(client)
    res = client.post(f"/subscriptions/{site.east_sub}/edit", data={
        "csrf_token": csrf, "profiles": ["semis"], "frequency": "cron", "cron": "0 25 * * *", "max_items": "0",
        "format": "html", "contact_language": "fr", "timezone": "Mars/Olympus", "auto_approve_above": "2"})
    assert res.status_code == 422
    for name in ("cron", "max_items", "language", "timezone", "auto_approve_above"):
        assert f'id="err-{name}"' in res.text, name
    assert client.get(f"/api/subscriptions/{site.east_sub}").json()["frequency"] == "weekly"  # nothing saved


def test_duplicates_are_refused(client: TestClient, site: Site) -> None:
    csrf = login(client)
    res = client.post("/subscriptions", data={"csrf_token": csrf, "contact_id": str(site.east_contact),
                                              "profiles": ["semis"], "frequency": "daily", "max_items": "5",
                                              "format": "html"})
    assert res.status_code == 422
    assert f"already has subscription #{site.east_sub}" in res.text and 'id="err-profiles"' in res.text
    api = send(client, "POST", "/api/subscriptions", None, {"contact_id": site.east_contact, "profiles": ["semis"]},
               csrf)
    assert api.status_code == 409 and "already has subscription" in api.json()["error"]
    ok = client.post("/subscriptions", data={"csrf_token": csrf, "contact_id": str(site.east_contact),
                                             "profiles": ["semis", "general"], "frequency": "monthly",
                                             "max_items": "5", "format": "html"}, follow_redirects=False)
    assert ok.status_code == 303
    new_id = max(s["id"] for s in client.get("/api/subscriptions").json())
    res = client.post(f"/subscriptions/{new_id}/edit", data={
        "csrf_token": csrf, "profiles": ["semis"], "frequency": "weekly", "max_items": "5", "format": "html",
        "contact_language": "zh", "timezone": "UTC"})
    assert res.status_code == 422 and f"#{site.east_sub}" in res.text


def test_other_outlets_subscriptions_cannot_be_edited(client: TestClient, site: Site) -> None:
    csrf = login(client)
    assert client.get(f"/subscriptions/{site.west_sub}/edit").status_code == 404
    res = client.post(f"/subscriptions/{site.west_sub}/edit", data={
        "csrf_token": csrf, "profiles": ["general"], "frequency": "daily", "max_items": "5", "format": "html",
        "contact_language": "zh", "timezone": "UTC"})
    assert res.status_code == 404
    assert client.post(f"/subscriptions/{site.east_sub}/edit", data={"profiles": ["semis"]}).status_code == 403


# --- search --------------------------------------------------------------------------------------------------
def _ids(html: str) -> list[str]:
    return re.findall(r'<a class="title" href="/documents/([^"]+)"', html)


def test_search_sorted_by_dates(client: TestClient, site: Site) -> None:
    login(client)
    by_pd = _ids(client.get("/search", params={"q": "*", "sort": "pd", "size": 50, "group": 0}).text)
    by_ad = _ids(client.get("/search", params={"q": "*", "sort": "ad", "size": 50, "group": 0}).text)
    assert len(by_pd) == len(by_ad) > 20 and set(by_pd) == set(by_ad) and by_pd != by_ad
    docs = {i: client.get(f"/api/documents/{i}").json() for i in by_pd}
    pds = [docs[i]["publication_date"] or "" for i in by_pd]
    ads = [docs[i]["application_date"] or "" for i in by_ad]
    assert pds == sorted(pds, reverse=True) and ads == sorted(ads, reverse=True)
    page = client.get("/search", params={"q": "*", "sort": "ad"}).text
    assert '<option value="ad" selected>' in page and "sort=ad" in page  # links keep the order
    export = client.get("/search/export", params={"q": "*", "sort": "ad", "format": "csv"}).text
    assert [line.split(",")[0] for line in export.splitlines()[1:]][:5] == by_ad[:5]


def test_one_result_per_family_expands_to_members(client: TestClient, site: Site) -> None:
    login(client)
    q = "fam:FAM-13 OR semiconductor"
    grouped = client.get("/search", params={"q": q, "size": 100}).text
    flat = client.get("/search", params={"q": q, "size": 100, "group": 0}).text
    fam_flat = [i for i in _ids(flat) if i.startswith(("EP-9", "WO-2099")) or "FAM-13" in i]
    assert len(_ids(flat)) - len(_ids(grouped)) == 2
    assert grouped.count('data-family="FAM-13"') == 1 and flat.count('data-family="FAM-13"') == 3
    details = grouped[grouped.index('<details class="family">'):]
    details = details[:details.index("</details>")]
    assert details.count('href="/documents/') == 2 and "2 other family members" in details
    assert len(fam_flat) == 2


def test_families_are_counted_over_the_whole_result_set_not_per_page(client: TestClient, site: Site) -> None:
    """Paging two families per page: every family shows once, on one page, where its best member ranks."""
    from html import unescape

    login(client)
    q = "fam:FAM-13 OR semiconductor"
    flat = _ids(client.get("/search", params={"q": q, "size": 100, "group": 0}).text)
    pages: list[str] = []
    url: str | None = f"/search?{urlencode({'q': q, 'size': 2})}"
    while url and len(pages) < 100:
        pages.append(client.get(url).text)
        m = re.search(r'<a href="([^"]+)" rel="next">', pages[-1])
        url = unescape(m.group(1)) if m else None
    shown = [i for page in pages for i in _ids(page)]
    assert all(len(_ids(page)) == 2 for page in pages[:-1]) and 1 <= len(_ids(pages[-1])) <= 2
    assert len(shown) == len(set(shown)) == len(flat) - 2  # two family members folded into their family
    assert [i for i in flat if i in shown] == shown  # each family where its best-ranked member ranks
    assert sum(page.count('data-family="FAM-13"') for page in pages) == 1
    assert "families 1–2" in pages[0] and "families 3–4" in pages[1]


def test_save_search_as_profile_opens_the_editor(client: TestClient, site: Site) -> None:
    csrf = login(client)
    q = "ti:semiconductor AND pd>=2010"
    res = client.post("/search/save-profile", data={"csrf_token": csrf, "query": q, "name": "saved-semis"},
                      follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/profiles/saved-semis"
    assert client.get("/profiles/saved-semis").status_code == 200
    with standalone_match_store(site.cfg.database) as store:
        saved = store.profile("saved-semis")
    assert saved.query == q and saved.outlet_id == 1 and saved.owner == "staff@east.example"
    again = client.post("/search/save-profile", data={"csrf_token": csrf, "query": q, "name": "saved-semis"})
    assert again.status_code == 422 and 'id="save-error"' in again.text and "not available" in again.text
    bad = client.post("/search/save-profile", data={"csrf_token": csrf, "query": "ti:(open", "name": "broken"})
    assert bad.status_code == 422 and "query:" in bad.text
    assert client.post("/search/save-profile", data={"query": q, "name": "x"}).status_code == 403  # no CSRF token


# --- Atom feed -----------------------------------------------------------------------------------------------
def test_profile_feed_parses_and_links_work(client: TestClient, site: Site) -> None:
    login(client)
    url = client.get("/api/profiles/semis/feed").json()["url"]
    assert url in client.get("/profiles/semis/feed").text
    anonymous = TestClient(client.app)
    res = anonymous.get(_path(url))
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(res.content)
    assert feed.tag == f"{ATOM}feed" and "semis" in feed.findtext(f"{ATOM}title", "")
    entries = feed.findall(f"{ATOM}entry")
    assert entries
    for entry in entries[:5]:
        assert entry.findtext(f"{ATOM}title") and entry.findtext(f"{ATOM}summary")
        assert re.match(r"\d{4}-\d\d-\d\dT", entry.findtext(f"{ATOM}published", ""))
        link = entry.find(f"{ATOM}link").get("href")
        page = client.get(_path(link))
        assert page.status_code == 200 and entry.findtext(f"{ATOM}title")[:20] in page.text
    tampered = _path(url)[:-3] + ("AAA" if not _path(url).endswith("AAA") else "BBB")
    assert anonymous.get(tampered).status_code == 404
    assert anonymous.get("/feeds/profile.atom?token=not-a-token").status_code == 404


def test_feed_of_another_outlets_profile_is_hidden(client: TestClient, site: Site) -> None:
    login(client)
    assert client.get("/api/profiles/west-private/feed").status_code == 404
    assert client.get("/profiles/west-private/feed").status_code == 404
    west = TestClient(client.app)
    login(west, "staff@west.example")
    assert west.get("/api/profiles/west-private/feed").status_code == 200


# --- reports -------------------------------------------------------------------------------------------------
def test_report_charts_are_svg_images_in_both_languages(client: TestClient, site: Site) -> None:
    login(client)
    page = client.get("/reports").text
    srcs = re.findall(r'<img src="(/reports/charts/[a-z]+\.svg\?[^"]+)"', page)
    assert len(srcs) == 6
    chart = client.get(srcs[1].replace("&amp;", "&"))
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert "<script" not in chart.text and "Matches" in chart.text
    ElementTree.fromstring(chart.content)  # well-formed
    client.get("/lang/zh")
    assert "匹配" in client.get(re.sub(r"lang=en", "lang=zh", srcs[1].replace("&amp;", "&"))).text
    assert client.get("/reports/charts/matches.svg", params={"outlet_id": 2}).status_code == 404
    assert client.get("/reports/charts/bogus.svg").status_code == 422


def test_cli_html_report_has_the_same_charts(site: Site, tmp_path: Path) -> None:
    from datetime import date

    from distribution.charts import render_html, report_charts
    from distribution.reports import build_report
    from patentsift.db import open_database

    with open_database(site.cfg) as db, db.begin() as s:
        rep = build_report(s, date(2020, 1, 1), date(2030, 12, 31))
    html = render_html(rep)
    assert html.count("<svg") == 6 and "<script" not in html
    assert [m for m, _ in report_charts(rep)] == ["harvested", "matches", "selected", "sent", "failed",
                                                  "unsubscribes"]


# --- the CLI: search --sort, report --html ------------------------------------------------------------------
def test_cli_search_sort_and_html_report(site: Site, tmp_path: Path) -> None:
    import json

    from tests.integration.test_cli import run

    data_dir = site.cfg.data_dir
    env = {"PATENTSIFT_SECRET_KEY": site.cfg.secret_key or ""}
    res = run(data_dir, "search", "*", "--sort", "ad", "--json", "--limit", "100", env=env)
    assert res.returncode == 0, res.stderr
    ids = [h["id"] for h in json.loads(res.stdout)["hits"]]
    csv_out = run(data_dir, "search", "*", "--sort", "ad", "--format", "csv", env=env)
    assert [line.split(",")[0] for line in csv_out.stdout.splitlines()[1:]] == ids
    bad = run(data_dir, "search", "*", "--sort", "title", env=env)
    assert bad.returncode == 2 and "unknown --sort" in bad.stderr + bad.stdout
    html = tmp_path / "report.html"
    rep = run(data_dir, "report", "--from", "2020-01-01", "--to", "2030-12-31", "--html", str(html), env=env)
    assert rep.returncode == 0, rep.stderr
    text = html.read_text(encoding="utf-8")
    assert text.count("<svg") == 6 and "<script" not in text and "Digests sent" in text
    rep = run(data_dir, "report", "--from", "2020-01-01", "--to", "2030-12-31", "--html", str(html), "--lang", "zh",
              env=env)
    assert rep.returncode == 0, rep.stderr
    assert "已发送快讯" in html.read_text(encoding="utf-8")
    bad = run(data_dir, "report", "--from", "2020-01-01", "--to", "2030-12-31", "--lang", "fr", env=env)
    assert bad.returncode == 2 and "unknown --lang" in bad.stderr + bad.stdout
