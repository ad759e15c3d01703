"""The curation, profile, subscription and report pages and their API on a real app (same setup as
test_web_authz): rendering in both languages, bulk decisions audited and fed back to matching, per-field
profile errors, previews, digest preview in a sandboxed frame, reports with charts and CSV."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from index.model import PatentDocument
from patentsift.wiring import standalone_match_store
from tests.integration.test_web_authz import send
from tests.integration.web_site import Site, csrf_from, login


def test_curation_page_in_both_languages_with_explanations(client: TestClient, site: Site) -> None:
    login(client)
    page = client.get("/curation")
    assert page.status_code == 200
    assert page.text.count('class="item"') == len(site.east_items)
    assert "Matched terms:" in page.text and "Score" in page.text and "/static/curation.js" in page.text
    client.get("/lang/zh")
    zh = client.get("/curation").text
    assert "审核队列" in zh and "匹配词" in zh and "快捷键" in zh
    assert client.get("/static/curation.js").status_code == 200


def test_bulk_decisions_are_audited_and_fed_back(client: TestClient, site: Site) -> None:
    csrf = login(client)
    good, bad = site.east_items[:3], site.east_items[3:4]
    res = client.post("/curation/decide", data={"ids": good, "action": "approve", "csrf_token": csrf,
                                                "back": "/curation?status=pending"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/curation?status=pending&done=3"
    res = send(client, "POST", "/api/queue/decisions", None, {"ids": bad, "action": "reject", "note": "off topic"},
               csrf)
    assert res.json() == {"action": "reject", "count": 1}
    assert send(client, "POST", "/api/queue/decisions", None, {"ids": good[:1], "action": "annotate",
                                                                "note": "Compare with ours"}, csrf).status_code == 200
    assert send(client, "POST", "/api/queue/decisions", None, {"ids": good, "action": "promote"},
                csrf).status_code == 422
    pending = {i["id"] for i in client.get("/api/queue").json()}
    assert not pending & set(good + bad)
    approved = {i["id"]: i for i in client.get("/api/queue?status=approved").json()}
    assert set(good) <= set(approved) and approved[good[0]]["note"] == "Compare with ours"
    assert all(approved[i]["decided_by"] == "staff@east.example" for i in good)
    audit = client.get("/api/queue/audit").json()
    assert [(e["action"], e["item_ids"]) for e in audit] == [("annotate", good[:1]), ("reject", bad),
                                                            ("approve", good)]
    assert audit[1]["detail"] == {"note": "off topic"} and audit[2]["who"] == "staff@east.example"
    page = client.get("/curation/audit").text
    assert page.count('class="event"') == 3 and "off topic" in page
    with standalone_match_store(site.cfg.database) as store:
        feedback = store.feedback("semis")
        docs = {i["id"]: i["doc_id"] for i in approved.values()}
    assert all(feedback[docs[i]] is True for i in good)
    assert len(feedback) == 4 and list(feedback.values()).count(False) == 1


def test_profile_create_with_field_errors_edit_and_preview(client: TestClient, site: Site) -> None:
    csrf = login(client)
    assert "New profile" in client.get("/profiles/new").text
    res = client.post("/profiles/new", data={"name": "bad name!", "query": "battery AND (", "classes": "H02J, ZZ9",
                                             "seeds": "not-a-number", "threshold": "high", "csrf_token": csrf})
    assert res.status_code == 422
    fields = set(__import__("re").findall(r'data-field="([a-z_]+)"', res.text))
    assert {"name", "threshold"} <= fields
    res = client.post("/profiles/new", data={"name": "gloves", "query": "battery AND (", "classes": "H02J, ZZ9",
                                             "seeds": "not-a-number", "csrf_token": csrf})
    fields = set(__import__("re").findall(r'data-field="([a-z_]+)"', res.text))
    assert fields == {"query", "classes", "seeds"}, res.text
    res = client.post("/profiles/new", data={"name": "semis-east", "description": "chips",
                                             "query": "semiconductor OR device", "classes": "h01l",
                                             "applicants": "Acme, Inc.\nGlobex", "csrf_token": csrf},
                      follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/profiles/semis-east"
    made = client.get("/api/profiles/semis-east").json()
    assert made["outlet_id"] == 1 and made["classes"] == ["H01L"] and made["editable"] is True
    assert made["applicants"] == ["Acme, Inc.", "Globex"]
    res = send(client, "PUT", "/api/profiles/semis-east", None, {**made, "description": "chips and wafers"}, csrf)
    assert res.status_code == 200 and res.json()["description"] == "chips and wafers"
    res = send(client, "PUT", "/api/profiles/semis-east", None, {**made, "threshold": 3}, csrf)
    assert res.status_code == 422 and "threshold" in res.json()["error"]["fields"]
    page = client.get("/profiles/semis-east?weeks=5200")
    assert page.status_code == 200 and "preview-count" in page.text
    preview = client.get("/api/profiles/semis-east/preview?weeks=5200").json()
    assert preview["matches"] and all(m["score"] >= 0.35 for m in preview["matches"])
    n = len(preview["matches"])
    assert f'data-count="{n}">{n} document{"" if n == 1 else "s"} would have matched since' in page.text
    assert client.get("/api/profiles/semis-east/preview?weeks=1").json()["matches"] == []  # old documents
    assert "semis-east" in client.get("/profiles").text
    assert send(client, "DELETE", "/api/profiles/semis-east", None, None, csrf).status_code == 204
    assert client.get("/api/profiles/semis-east").status_code == 404


def test_a_profile_may_have_a_chinese_name(client: TestClient, site: Site) -> None:
    csrf = login(client)
    res = client.post("/profiles/new", data={"name": "锂电池隔膜", "description": "锂电池的隔膜与负极保护",
                                             "classes": "H01M", "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303, res.text[-500:]
    page = client.get(res.headers["location"])
    assert page.status_code == 200 and "锂电池隔膜" in page.text
    assert client.get("/api/profiles/锂电池隔膜").json()["classes"] == ["H01M"]
    assert "锂电池隔膜" in client.get("/profiles").text
    bad = client.post("/profiles/new", data={"name": "锂 电池", "classes": "H01M", "csrf_token": csrf})
    assert bad.status_code == 422 and 'data-field="name"' in bad.text


def test_organizations_contacts_subscriptions_pause_resume(client: TestClient, site: Site) -> None:
    csrf = login(client)
    assert client.post("/organizations", data={"name": "Delta Labs", "csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    page = client.get("/subscriptions").text
    org_id = int(__import__("re").search(r'id="org-(\d+)">\s*<h3>Delta Labs', page).group(1))
    res = client.post(f"/organizations/{org_id}/contacts", data={"email": "Li@Delta.example", "name": "Li",
                                                                "contact_language": "zh",
                                                                "timezone": "Asia/Shanghai", "csrf_token": csrf},
                      follow_redirects=False)
    assert res.status_code == 303
    assert client.post(f"/organizations/{org_id}/contacts", data={"email": "nope", "csrf_token": csrf}
                       ).status_code == 422
    page = client.get("/subscriptions").text
    contact_id = int(__import__("re").search(r'<option value="(\d+)">Delta Labs · li@delta.example', page).group(1))
    res = client.post("/subscriptions", data={"contact_id": contact_id, "profiles": ["semis", "general"],
                                              "frequency": "daily", "csrf_token": csrf})
    assert res.status_code == 200 and "/confirm?token=" in res.text
    created = [s for s in client.get("/api/subscriptions").json() if s["contact"] == "li@delta.example"]
    assert len(created) == 1 and created[0]["status"] == "pending"
    assert created[0]["profiles"] == ["semis", "general"]
    bad = send(client, "POST", "/api/subscriptions", None,
               {"contact_id": contact_id, "profiles": ["west-private"]}, csrf)
    assert bad.status_code == 422  # another outlet's private profile is unknown here
    made = send(client, "POST", "/api/subscriptions", None, {"contact_id": contact_id, "profiles": ["semis"],
                                                             "frequency": "0 8 * * 1-5"}, csrf).json()
    confirm = client.get(made["confirm_url"].split("8000", 1)[1])
    assert confirm.status_code == 200 and "Confirm subscription" in confirm.text
    res = client.post("/confirm", data={"token": made["confirm_url"].split("token=")[1],
                                        "csrf_token": csrf_from(confirm.text)})
    assert res.status_code == 200
    assert client.get(f"/api/subscriptions/{made['id']}").json()["status"] == "active"
    res = client.post(f"/subscriptions/{site.east_sub}/pause", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303
    assert client.get(f"/api/subscriptions/{site.east_sub}").json()["status"] == "paused"
    assert send(client, "POST", f"/api/subscriptions/{site.east_sub}/resume", None, None,
                csrf).json()["status"] == "active"
    assert send(client, "POST", f"/api/subscriptions/{made['id']}/resume", None, None, csrf).status_code == 200


def test_digest_preview_sandboxed(client: TestClient, site: Site) -> None:
    csrf = login(client)
    send(client, "POST", "/api/queue/decisions", None, {"ids": site.east_items[:2], "action": "approve"}, csrf)
    page = client.get(f"/subscriptions/{site.east_sub}/digest")
    assert page.status_code == 200 and "<iframe" in page.text and "sandbox" in page.text
    raw = client.get(f"/subscriptions/{site.east_sub}/digest/raw")
    assert raw.status_code == 200 and raw.headers["content-security-policy"].startswith("sandbox")
    assert "<script" not in raw.text and "专利快讯" in raw.text  # the contact reads Chinese
    api = client.get(f"/api/subscriptions/{site.east_sub}/digest/preview").json()
    assert api["items"] == 2 and "/manage?token=" in api["text"] and api["subject"] in page.text


def test_subscriber_manage_page_pause_resume_unsubscribe(client: TestClient, site: Site) -> None:
    from subscribers.tokens import make_token
    from tests.integration.dist_support import SECRET

    token = make_token(SECRET, "manage", site.west_sub)
    page = client.get(f"/manage?token={token}", headers={"Accept-Language": "zh-CN"})
    assert "您的订阅" in page.text and "暂停" in page.text
    csrf = csrf_from(page.text)
    for action, status in (("pause", "已暂停"), ("resume", "生效中"), ("unsubscribe", "已退订")):
        res = client.post("/manage", data={"token": token, "action": action, "csrf_token": csrf},
                          headers={"Accept-Language": "zh-CN"})
        assert res.status_code == 200 and status in res.text, action
    res = client.post("/manage", data={"token": token, "action": "resume", "csrf_token": csrf})
    assert res.status_code == 409  # an unsubscribed subscription cannot be resumed


def test_reports_page_charts_and_csv(client: TestClient, site: Site) -> None:
    csrf = login(client)
    send(client, "POST", "/api/queue/decisions", None, {"ids": site.east_items[:2], "action": "approve"}, csrf)
    page = client.get("/reports")
    assert page.status_code == 200 and page.text.count('<img src="/reports/charts/') == 6  # pygal SVG images
    assert "Items selected" in page.text
    data = client.get("/api/reports").json()
    assert data["rows"][0]["figures"]["selected"] == 2 and data["outlet"] == "East"
    res = client.get("/reports.csv")
    assert res.headers["content-type"].startswith("text/csv") and "attachment" in res.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert rows[0]["level"] == "total" and rows[0]["selected"] == "2"
    assert any(r["organization"] == "East Works" and r["selected"] == "2" for r in rows)
    assert client.get("/reports?start=2026-02-01&end=2026-01-01").status_code == 422
    client.get("/lang/zh")
    assert "工作报表" in client.get("/reports").text


def test_openapi_lists_the_api(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/profiles", "/api/profiles/{name}", "/api/profiles/{name}/preview", "/api/subscriptions",
                 "/api/subscriptions/{sub_id}/{action}", "/api/queue", "/api/queue/decisions",
                 "/api/subscriptions/{sub_id}/digest/preview", "/api/reports"):
        assert path in paths, path
    assert not any(p.startswith(("/curation", "/manage", "/profiles")) for p in paths)


# --- issue 13: navigation, directory lists, search export, API docs (and the CLI's lists and export) -----------
AREAS = ["/search", "/curation", "/profiles", "/organizations", "/subscriptions", "/reports"]


def _nav_hrefs(html: str) -> list[str]:
    import re

    nav = re.search(r'<nav class="areas"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, "the page has no navigation bar"
    return re.findall(r'<a href="([^"]+)" data-area=', nav.group(1))


def test_navigation_bar_on_every_staff_page(client: TestClient, site: Site) -> None:
    import re

    login(client)
    for url in [*AREAS, "/staff", "/curation/audit", "/profiles/new", f"/subscriptions/{site.east_sub}/digest",
                "/documents/NO-SUCH-DOC"]:
        page = client.get(url)
        assert _nav_hrefs(page.text) == AREAS, url
        assert '<span class="outlet" title="Outlet">East</span>' in page.text, url
        assert '<span class="who"' in page.text and ">Ada</span>" in page.text, url
        assert 'action="/logout"' in page.text
    current = re.findall(r'data-area="(\w+)" aria-current="page"', client.get("/staff").text)
    assert current == ["directory"]
    client.get("/lang/zh")
    assert "企业与联系人" in client.get("/search").text
    assert 'class="areas"' not in client.get("/login").text  # nobody logged in: no bar


def test_directory_lists_only_the_own_outlet(client: TestClient, site: Site) -> None:
    login(client)
    page = client.get("/organizations").text
    assert "East Works" in page and "buyer@east.example" in page
    assert "West Works" not in page and "buyer@west.example" not in page
    assert page.count('class="organization"') == 1 and page.count('class="contact"') == 1
    assert client.get("/organizations?q=buyer@east").text.count('class="contact"') == 1
    assert client.get("/organizations?q=nothing-like-it").text.count('class="contact"') == 0
    assert client.get("/organizations?q=100%25").status_code == 200  # LIKE wildcards are literal
    staff = client.get("/staff").text
    assert "staff@east.example" in staff and "staff@west.example" not in staff and "admin@west" not in staff
    assert "argon2" not in staff
    assert client.get(f"/organizations?outlet_id={site.west_outlet}").status_code == 404

    client.post("/logout", data={"csrf_token": csrf_from(staff)})
    login(client, "admin@west.example")  # an admin sees every outlet, or the one asked for
    every = client.get("/organizations").text
    assert "East Works" in every and "West Works" in every
    west = client.get(f"/organizations?outlet_id={site.west_outlet}").text
    assert "West Works" in west and "East Works" not in west
    assert "staff@east.example" in client.get("/staff").text
    assert client.get("/staff?outlet_id=999").status_code == 404


def test_search_export_csv_and_ris(client: TestClient, site: Site) -> None:
    from tests.integration.dist_support import QUERY

    login(client)
    total = client.get("/api/search", params={"q": QUERY}).json()["total"]
    page = client.get("/search", params={"q": QUERY}).text
    assert '/search/export?q=' in page and 'data-format="ris"' in page
    res = client.get("/search/export", params={"q": QUERY, "format": "csv"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"].startswith('attachment; filename="patentsift-search-')
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert len(rows) == min(total, 1000) and all(r["id"] for r in rows)
    ris = client.get("/search/export", params={"q": QUERY, "format": "ris"}).text
    assert ris.count("TY  - PAT\r\n") == len(rows) and ris.count("ER  - ") == len(rows)
    assert client.get("/search/export", params={"q": "a AND (", "format": "csv"}).status_code == 400
    assert client.get("/search/export", params={"q": "a", "format": "xls"}).status_code == 422
    api = client.get("/api/search/export", params={"q": QUERY, "format": "ris"})
    assert api.status_code == 200 and api.text == ris
    assert client.get("/api/search/export", params={"q": "a AND ("}).json()["position"] is not None


def test_export_escapes_formulas_and_keeps_ris_records_on_one_line() -> None:
    from index.base import Hit
    from index.model import Party, PublicationNumber
    from patentsift.searching import export_csv, export_ris

    doc = PatentDocument(pn=PublicationNumber.parse("US-1234567-B2"), titles={"en": '=HYPERLINK("http://x","y")'},
                         abstracts={"en": "first line\nER  - \nTY  - JOUR"},
                         applicants=[Party(name="@SUM(1+1)", role="applicant")],
                         inventors=[Party(name="-2+3", role="inventor")])
    rows = list(csv.DictReader(io.StringIO(export_csv([Hit(doc.id, 1.0, doc)]))))
    assert rows[0]["title"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert rows[0]["applicants"] == "'@SUM(1+1)" and rows[0]["inventors"] == "'-2+3"
    ris = export_ris([Hit(doc.id, 1.0, doc)])
    assert ris.count("ER  - ") == 1 and ris.count("TY  - ") == 1  # the abstract cannot start a record
    assert "AB  - first line ER - TY - JOUR" in ris


def test_api_docs_page_is_built_in_and_complete(client: TestClient) -> None:
    import re

    res = client.get("/api/docs")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', res.text)
    assert scripts == ["/static/app.js"] and "<script>" not in res.text  # nothing inline, nothing from a CDN
    assert not re.search(r'(src|href)="(https?:)?//', res.text)
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in paths:
        assert f'<code class="path">{path}</code>' in res.text, path
    assert 'id="schema-SearchOut"' in res.text


def test_cli_lists_and_search_export(site: Site) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.integration.dist_support import QUERY

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "COLUMNS": "200", "PATENTSIFT_SECRET_KEY": site.cfg.secret_key or ""}
        env.pop("PATENTSIFT_CONFIG", None)
        env.pop("PATENTSIFT_DATABASE_URL", None)
        return subprocess.run([sys.executable, "-m", "patentsift", "--data-dir", str(site.cfg.data_dir), *args],
                              capture_output=True, text=True, timeout=120, env=env)

    orgs = run("org", "list", "--json")
    assert orgs.returncode == 0, orgs.stderr
    assert {(o["name"], o["outlet"], o["contacts"], o["active_subscriptions"]) for o in json.loads(orgs.stdout)} == {
        ("East Works", "East", 1, 1), ("West Works", "West", 1, 1)}
    east = run("org", "list", "--outlet", "East")
    assert "East Works" in east.stdout and "West Works" not in east.stdout
    contacts = json.loads(run("contact", "list", "--json", "--org", "West Works").stdout)
    assert [c["email"] for c in contacts] == ["buyer@west.example"]
    assert "buyer@east.example" in run("contact", "list", "--match", "east").stdout
    staff = run("staff", "list", "--json", "--outlet", "West")
    assert {s["email"] for s in json.loads(staff.stdout)} == {"staff@west.example", "admin@west.example"}
    assert "argon2" not in staff.stdout
    exported = run("search", QUERY, "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert rows and rows[0].keys() >= {"id", "title", "applicants", "ipc", "abstract"}
    ris = run("search", QUERY, "--format", "ris", "--limit", "3")
    assert ris.stdout.count("TY  - PAT") == min(3, len(rows))
    bad = run("search", QUERY, "--format", "xls")
    assert bad.returncode == 2 and "csv or ris" in bad.stderr


def test_document_page_abstract_first_office_link_and_cited_documents(client: TestClient, site: Site) -> None:
    from index.embedded import EmbeddedIndex
    from index.model import Citation, PublicationNumber

    login(client)
    existing = client.get("/api/search", params={"q": "", "limit": 1}).json()["hits"][0]["id"]
    compact = existing.replace("-", "")  # cited in another spelling: still found
    doc = PatentDocument(pn=PublicationNumber.parse("US-9999998-B2"), titles={"en": "Citing document"},
                         abstracts={"en": "An abstract that comes first."},
                         citations=[Citation("patent", number=compact, category="X"),
                                    Citation("patent", number="US-1111111-A"), Citation("npl", text="A paper")])
    with EmbeddedIndex(site.cfg.index_path) as index:
        assert not index.upsert([doc]).failed
    page = client.get("/documents/US9999998B2").text
    assert f'<a href="/documents/{existing}" class="cited"' in page
    assert "US-1111111-A" in page and 'href="/documents/US-1111111-A"' not in page and "A paper" in page
    assert 'href="https://worldwide.espacenet.com/patent/search?q=pn%3DUS9999998B2"' in page
    assert page.index('class="abstract"') < page.index('class="classes"')


def test_facet_chips_remove_exactly_their_clause() -> None:
    from index.query.parser import parse_query
    from patentsift.searching import add_clause, facet_chips

    q = add_clause(add_clause("glove OR helmet", "ipc:A41D*"), 'pa:"ACME CORP"')
    chips = dict(facet_chips(q))
    assert chips == {"ipc:A41D*": '((glove OR helmet)) AND pa:"ACME CORP"',
                     'pa:"ACME CORP"': "((glove OR helmet) AND ipc:A41D*)"}
    for rest in chips.values():
        parse_query(rest)  # still a valid query
    assert facet_chips("ipc:A41D*") == []  # nothing to remove it from
    assert facet_chips("x AND pd:2013 AND cc:US") == [("pd:2013", "x AND cc:US"), ("cc:US", "x AND pd:2013")]
    assert facet_chips("ti:(ipc:A41D* AND x)") == []
