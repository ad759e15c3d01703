"""The profile editor as outlet staff use it, on the real app (the two-outlet site of tests/integration/web_site.py): every
field's error at once and the query's error with its position, a preview of the form as edited (fragment and
whole page, CSRF checked, nothing stored), applicant watch against the names stored in the index, readers'
feedback counts, delete only after confirmation, Unicode names, and other outlets' staff kept out (404/403)."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi.testclient import TestClient

from distribution.feedback import record_reader_feedback
from patentsift.db import open_database
from patentsift.wiring import standalone_match_store
from tests.integration.web_site import Site, login

FRAGMENT = {"X-Fragment": "1"}


def fields_with_errors(html: str) -> set[str]:
    return set(re.findall(r'class="field-error[^"]*" data-field="([a-z_]+)"', html))


def stored_profiles(site: Site) -> set[str]:
    with standalone_match_store(site.cfg.database) as store:
        return {p.name for p in store.profiles()}


GOOD = {"description": "semiconductor devices and their packaging", "query": "semiconductor OR device",
        "classes": "h01l", "applicants": "PolyPlus Battery Co.\nNobody Such Ltd", "threshold": "0.35",
        "max_items": "20", "weeks": "5200"}


def test_every_field_error_at_once_beside_its_field(client: TestClient) -> None:
    csrf = login(client)
    form = {"name": "bad name!", "query": "battery AND (wireless OR", "classes": "H02J, ZZ9", "seeds": "not-a-number",
            "threshold": "high", "max_items": "0", "applicants": "Acme", "csrf_token": csrf}
    res = client.post("/profiles/new", data=form)
    assert res.status_code == 422
    assert fields_with_errors(res.text) == {"name", "query", "classes", "seeds", "threshold", "max_items"}
    # the query's error says where: position and the character marked in the query as typed
    assert 'id="query-error"' in res.text and "position 23" in res.text and "nothing after it" in res.text
    assert '<code>battery AND (wireless <span class="at">O</span>R</code>' in res.text
    # the form keeps what was typed, the fields with errors are marked, the syntax help is there
    assert 'value="bad name!"' in res.text and 'value="H02J, ZZ9"' in res.text and ">Acme</textarea>" in res.text
    assert res.text.count('aria-invalid="true"') == 6 and 'id="query-help"' in res.text
    assert re.search(r"\bnovalidate\b", res.text)  # no browser bubbles, one field at a time
    client.get("/lang/zh")
    zh = client.post("/profiles/new", data=form).text
    assert "检索式有误" in zh and "主题有误" in zh and fields_with_errors(zh) == fields_with_errors(res.text)


def test_preview_of_the_unsaved_form(client: TestClient, site: Site) -> None:
    csrf = login(client)
    before = stored_profiles(site)
    res = client.post("/profiles/new/preview", data=GOOD, headers={**FRAGMENT, "X-CSRF-Token": csrf})
    assert res.status_code == 200, res.text[-800:]
    assert "<html" not in res.text and "preview-count" in res.text and "draft-note" in res.text
    found = re.findall(r'href="/documents/([^"]+)"', res.text)
    assert found and int(re.search(r'preview-count" data-count="(\d+)"', res.text).group(1)) == len(found)  # type: ignore[union-attr]
    assert stored_profiles(site) == before  # a preview stores nothing (no name needed either)
    # without the CSRF token: refused
    assert client.post("/profiles/new/preview", data=GOOD, headers=FRAGMENT).status_code == 403
    # a draft with errors: each named by its field, for the editor to put beside it; no preview runs
    bad = client.post("/profiles/new/preview", data={**GOOD, "query": "ti:", "threshold": "2"},
                      headers={**FRAGMENT, "X-CSRF-Token": csrf})
    assert bad.status_code == 422 and fields_with_errors(bad.text) == {"query", "threshold"}
    assert "preview-count" not in bad.text and "position 1" in bad.text
    # without JS: the whole page, the form as sent, and the preview under it
    page = client.post("/profiles/new/preview", data={**GOOD, "name": "drafty", "csrf_token": csrf})
    assert page.status_code == 200 and "<html" in page.text and "preview-count" in page.text
    assert 'value="drafty"' in page.text and 'value="semiconductor OR device"' in page.text
    assert "PolyPlus Battery Co.\nNobody Such Ltd</textarea>" in page.text
    assert "drafty" not in stored_profiles(site)


def test_preview_as_edited_uses_the_edits_not_the_saved_profile(client: TestClient, site: Site) -> None:
    csrf = login(client)
    res = client.post("/profiles/new", data={**GOOD, "name": "east-cells", "csrf_token": csrf},
                      follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/profiles/east-cells"
    saved = {m["doc_id"] for m in client.get("/api/profiles/east-cells/preview?weeks=5200").json()["matches"]}
    assert saved

    def draft(**changes: str) -> set[str]:
        r = client.post("/profiles/east-cells/preview", data={**GOOD, **changes},
                        headers={**FRAGMENT, "X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text[-500:]
        return set(re.findall(r'href="/documents/([^"]+)"', r.text))

    assert draft() == saved  # the same fields: the same matches as the saved profile's preview
    narrowed = draft(query="semiconductor AND package", classes="", applicants="", description="")
    assert narrowed != saved
    assert client.get("/api/profiles/east-cells").json()["query"] == "semiconductor OR device"  # unsaved


def test_applicant_watch_shows_the_stored_names_it_matches(client: TestClient) -> None:
    csrf = login(client)
    res = client.get("/profiles/-/applicants", params={"applicants": "PolyPlus Battery Co.\n\nNobody Such Ltd"},
                     headers=FRAGMENT)
    assert res.status_code == 200 and "<html" not in res.text
    watched = re.findall(r'<li class="watched" data-matches="(\d+)"><span class="watched-name">([^<]+)</span>',
                         res.text)
    assert watched == [("1", "PolyPlus Battery Co."), ("0", "Nobody Such Ltd")]
    assert ">POLYPLUS BATTERY</a>" in res.text and "/search?q=pa%3A%22POLYPLUS%20BATTERY%22" in res.text
    # the saved profile's page shows them under the field too
    client.post("/profiles/new", data={**GOOD, "name": "cells", "csrf_token": csrf})
    page = client.get("/profiles/cells").text
    assert ">POLYPLUS BATTERY</a>" in page and "matches no stored applicant name" in page
    assert client.get("/profiles/-/applicants").text.strip() == ""  # nothing watched, nothing to say


def test_reader_feedback_counts_on_the_profile_page(client: TestClient, site: Site) -> None:
    login(client)
    page = client.get("/profiles/semis").text
    assert '<strong data-count="relevant">0</strong>' in page and "No reader feedback yet." in page
    with open_database(site.cfg) as db, db.begin() as s:
        for item, relevant in zip(site.east_items[:3], (True, True, False), strict=True):
            record_reader_feedback(s, site.east_sub, item, relevant)
        record_reader_feedback(s, site.east_sub, site.east_items[1], False)  # a reader changed their mind
    page = client.get("/profiles/semis").text
    assert '<strong data-count="relevant">1</strong>' in page
    assert '<strong data-count="irrelevant">2</strong>' in page
    client.get("/lang/zh")
    assert "读者对推送的反馈" in client.get("/profiles/semis").text


def test_delete_only_after_confirmation(client: TestClient, site: Site) -> None:
    csrf = login(client)
    client.post("/profiles/new", data={**GOOD, "name": "锂电池隔膜", "csrf_token": csrf})
    url = "/profiles/" + quote("锂电池隔膜")
    assert f'href="{url}/delete"' in client.get(url).text
    res = client.post(f"{url}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"{url}/delete"  # not confirmed: asked first
    assert "锂电池隔膜" in stored_profiles(site)
    ask = client.get(f"{url}/delete")
    assert ask.status_code == 200 and "cannot be undone" in ask.text and 'name="confirm" value="yes"' in ask.text
    res = client.post(f"{url}/delete", data={"csrf_token": csrf, "confirm": "yes"}, follow_redirects=False)
    assert res.status_code == 303 and "锂电池隔膜" not in stored_profiles(site)
    assert "锂电池隔膜" in client.get(res.headers["location"]).text  # "Profile deleted: ..."
    # a profile a subscription follows says so before it goes
    assert "follow this profile" not in ask.text and "follows this profile" not in ask.text
    login(client, "admin@west.example")
    assert "1 subscription follows this profile; it will" in client.get("/profiles/semis/delete").text


def test_other_outlets_staff_are_kept_out(client: TestClient, site: Site) -> None:
    csrf = login(client)
    client.post("/profiles/new", data={**GOOD, "name": "east-cells", "csrf_token": csrf})
    # East's staff: a shared profile may be previewed as edited, not deleted; West's private one is unseen
    assert client.post("/profiles/semis/preview", data=GOOD, headers={**FRAGMENT, "X-CSRF-Token": csrf}
                       ).status_code == 200
    assert client.get("/profiles/semis/delete").status_code == 403
    assert client.post("/profiles/semis/delete", data={"csrf_token": csrf, "confirm": "yes"}).status_code == 403
    for method, url in (("GET", "/profiles/west-private/delete"), ("POST", "/profiles/west-private/preview"),
                        ("POST", "/profiles/west-private/delete")):
        res = client.request(method, url, data={**GOOD, "csrf_token": csrf, "confirm": "yes"}, headers=FRAGMENT)
        assert res.status_code == 404, (method, url)
    # West's staff on East's profile: 404 everywhere, and it survives
    client.post("/logout", data={"csrf_token": csrf})
    west = login(client, "staff@west.example")
    for method, url in (("GET", "/profiles/east-cells"), ("GET", "/profiles/east-cells/delete"),
                        ("POST", "/profiles/east-cells/preview"), ("POST", "/profiles/east-cells/delete"),
                        ("POST", "/profiles/east-cells")):
        res = client.request(method, url, data={**GOOD, "csrf_token": west, "confirm": "yes"}, headers=FRAGMENT)
        assert res.status_code == 404, (method, url)
    assert "east-cells" in stored_profiles(site)
    # and no session at all: the editor's fetches go to the login page
    client.post("/logout", data={"csrf_token": west})
    res = client.get("/profiles/-/applicants?applicants=PolyPlus", follow_redirects=False)
    assert res.status_code in (303, 307, 401) and "POLYPLUS" not in res.text


def test_cli_profile_show_lists_the_matched_stored_names(client: TestClient, site: Site) -> None:
    import os
    import subprocess
    import sys

    csrf = login(client)
    client.post("/profiles/new", data={**GOOD, "name": "cells", "csrf_token": csrf})
    env = {**os.environ, "COLUMNS": "200", "PATENTSIFT_SECRET_KEY": site.cfg.secret_key or ""}
    env.pop("PATENTSIFT_CONFIG", None)
    env.pop("PATENTSIFT_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "patentsift", "--data-dir", str(site.cfg.data_dir), "profile", "show",
                          "cells"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert 'name = "cells"' in out.stdout
    assert "PolyPlus Battery Co. -> POLYPLUS BATTERY (" in out.stdout
    assert "Nobody Such Ltd -> no stored applicant name" in out.stdout
