"""The web core on a real app: SQLite shared database, embedded index of the shipped USPTO samples, real
argon2 staff logins, real embeddings for "more like this"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harvest.ingest import parse_path
from index.embedded import EmbeddedIndex
from index.model import PatentDocument
from patentsift.config import Config
from patentsift.db import open_database
from patentsift.searching import safe_highlight
from patentsift.web.app import create_app
from subscribers.service import create_outlet, create_staff
from tests.conftest import SAMPLE_DATA

PASSWORD = "correct horse battery"


def sample_documents() -> list[PatentDocument]:
    return list(parse_path(SAMPLE_DATA / "uspto"))  # sequence listings and other rejects are skipped


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    data_dir: Path = tmp_path_factory.mktemp("web")
    cfg = Config(data_dir=data_dir, secret_key="s" * 48)
    docs = sample_documents()
    from matching.embeddings import document_text, load_embedder

    vectors = load_embedder().encode([document_text(d) for d in docs])
    with EmbeddedIndex(cfg.index_path) as index:
        report = index.upsert(docs)
        assert not report.failed
        index.set_vectors({d.id: v for d, v in zip(docs, vectors, strict=True)})
    with open_database(cfg) as db, db.begin() as s:
        east, west = create_outlet(s, "East"), create_outlet(s, "West")
        create_staff(s, east.id, "staff@east.example", PASSWORD, name="Ada")
        create_staff(s, west.id, "admin@west.example", PASSWORD, role="admin")
    return cfg


@pytest.fixture
def client(cfg: Config) -> Iterator[TestClient]:
    with TestClient(create_app(cfg, testing=True)) as c:  # a fresh app: fresh rate limits
        yield c


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


def login(client: TestClient, email: str = "staff@east.example", password: str = PASSWORD,
          follow: bool = False) -> object:
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token,
                                       "next": "/search?q=glove"}, follow_redirects=follow)


def test_unauthenticated_html_is_redirected_and_api_gets_401(client: TestClient) -> None:
    res = client.get("/search?q=glove", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"].startswith("/login?next=%2Fsearch%3Fq%3Dglove")
    res = client.get("/api/search?q=glove")
    assert res.status_code == 401 and res.json() == {"error": "not logged in"}
    assert client.get("/api/documents/US-20040000003-A1").status_code == 401


def test_login_ok_sets_a_hardened_session_cookie_and_logout_ends_it(client: TestClient) -> None:
    res = login(client)
    assert res.status_code == 303 and res.headers["location"] == "/search?q=glove"
    cookie = res.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain-http test app
    page = client.get("/search")
    assert page.status_code == 200 and "Ada" in page.text
    res = client.post("/logout", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert res.status_code == 303
    assert client.get("/api/search").status_code == 401


def test_bad_password_and_unknown_user_are_refused_alike(client: TestClient) -> None:
    for email, password in (("staff@east.example", "wrong password"), ("nobody@east.example", PASSWORD),
                            ("not an address", PASSWORD)):
        res = login(client, email, password)
        assert res.status_code == 400 and "Wrong e-mail address or password." in res.text
    assert client.get("/api/search").status_code == 401


def test_login_is_rate_limited_per_address_and_email(client: TestClient) -> None:
    codes = [login(client, password=f"wrong {i}").status_code for i in range(6)]
    assert codes == [400] * 5 + [429]
    res = login(client)  # even the right password waits out the window
    assert res.status_code == 429 and int(res.headers["retry-after"]) > 0
    assert login(client, "admin@west.example").status_code == 303  # another account is not blocked


def test_csrf_token_is_required_for_state_changing_requests(client: TestClient) -> None:
    client.get("/login")
    res = client.post("/login", data={"email": "staff@east.example", "password": PASSWORD},
                      follow_redirects=False)
    assert res.status_code == 403 and "CSRF" in res.text
    res = client.post("/login", data={"email": "staff@east.example", "password": PASSWORD,
                                      "csrf_token": "forged"}, follow_redirects=False)
    assert res.status_code == 403
    assert login(client).status_code == 303
    assert client.post("/logout", follow_redirects=False).status_code == 403  # no token: still logged in
    assert client.get("/api/search").status_code == 200


def test_security_headers_on_every_response(client: TestClient) -> None:
    for res in (client.get("/login"), client.get("/api/search"), client.get("/static/app.css")):
        assert "default-src 'self'" in res.headers["content-security-policy"]
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["x-frame-options"] == "DENY"
        assert res.headers["referrer-policy"]
        assert "strict-transport-security" not in res.headers  # only over https
    https = TestClient(client.app, base_url="https://testserver")
    assert "max-age=" in https.get("/login").headers["strict-transport-security"]


def test_search_page_shows_results_facets_and_highlights(client: TestClient) -> None:
    login(client)
    res = client.get("/search", params={"q": "glove"})
    assert res.status_code == 200
    assert "US-20130014306-A1" in res.text
    assert "<mark>GLOVE</mark>" in res.text  # the embedded backend's highlight, rendered as markup
    facet_links = re.findall(r'href="(/search\?q=[^"]+)"', res.text)
    assert any("ipc%3AA41D%2A" in link for link in facet_links), facet_links
    narrowed = client.get(next(link for link in facet_links if "ipc%3AA41D" in link).replace("&amp;", "&"))
    assert narrowed.status_code == 200 and "glove AND ipc:A41D*" in narrowed.text


def test_search_page_paginates(client: TestClient) -> None:
    login(client)
    first = client.get("/search", params={"q": ""})
    assert first.status_code == 200 and "75 results" in first.text
    next_url = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert "offset=10" in next_url and "cursor=" not in next_url  # grouped pages count families by offset
    second = client.get(next_url)
    ids_first = set(re.findall(r'class="title" href="/documents/([^"]+)"', first.text))
    ids_second = set(re.findall(r'class="title" href="/documents/([^"]+)"', second.text))
    assert len(ids_first) == len(ids_second) == 10 and not ids_first & ids_second
    assert 'start="11"' in second.text and 'rel="prev"' in second.text
    flat = client.get("/search", params={"q": "", "group": 0})  # a flat list pages with the cursor
    flat_next = re.search(r'href="([^"]+)" rel="next"', flat.text).group(1).replace("&amp;", "&")
    assert "cursor=" in flat_next and "offset=10" in flat_next and "group=0" in flat_next
    flat_second = set(re.findall(r'class="title" href="/documents/([^"]+)"', client.get(flat_next).text))
    assert len(flat_second) == 10 and not flat_second & ids_first


def test_bad_query_shows_the_message_and_position(client: TestClient) -> None:
    login(client)
    res = client.get("/search", params={"q": "glove AND (ti:vest"})
    assert res.status_code == 400
    assert "Invalid query" in res.text and 'role="alert"' in res.text
    res = client.get("/api/search", params={"q": "glove AND (ti:vest"})
    body = res.json()
    assert res.status_code == 400 and isinstance(body["error"], str) and body["error"]
    assert isinstance(body["position"], int) and 0 <= body["position"] <= len("glove AND (ti:vest")
    page = client.get("/search", params={"q": "glove AND (ti:vest"}).text
    assert f"(at position {body['position'] + 1}): {body['error']}" in page.replace("&#39;", "'")


def test_document_page_and_similar(client: TestClient) -> None:
    login(client)
    res = client.get("/documents/US-20130014306-A1")
    assert res.status_code == 200
    assert "TACTICAL MIXED MARTIAL ARTS GLOVE" in res.text
    assert "A41D" in res.text and "Claims" in res.text
    assert client.get("/documents/US20130014306A1").status_code == 200  # compact spelling
    assert client.get("/documents/US-1-B1").status_code == 404
    similar = client.get("/documents/US-20130014306-A1/similar", headers={"X-Fragment": "1"})
    assert similar.status_code == 200 and "<html" not in similar.text
    linked = re.findall(r'href="/documents/([^"]+)"', similar.text)
    assert len(linked) == 10 and "US-20130014306-A1" not in linked


def test_api_json_shapes(client: TestClient) -> None:
    login(client)
    body = client.get("/api/search", params={"q": "glove", "facets": "ipc,year", "limit": 5}).json()
    assert body["total"] >= 1 and body["limit"] == 5 and set(body["facets"]) == {"ipc", "year"}
    hit = body["hits"][0]
    assert set(hit) == {"id", "score", "document", "highlights"}
    assert {"id", "title", "publication_date", "applicants", "ipc"} <= set(hit["document"])
    assert any("<mark>" in s for snippets in hit["highlights"].values() for s in snippets)
    assert client.get("/api/search", params={"facets": "colour"}).status_code == 400
    assert client.get("/api/search", params={"limit": 0}).status_code == 422
    page1 = client.get("/api/search", params={"limit": 30}).json()
    page2 = client.get("/api/search", params={"limit": 30, "cursor": page1["next_cursor"]}).json()
    assert not {h["id"] for h in page1["hits"]} & {h["id"] for h in page2["hits"]}
    doc = client.get("/api/documents/US-20130014306-A1").json()
    assert doc["id"] == "US-20130014306-A1" and len(doc["claims"]) == 14
    assert doc["classifications"][0]["scheme"] == "IPC"
    assert client.get("/api/documents/US-1-B1").json() == {"error": "no document US-1-B1 in the index"}
    sim = client.get("/api/documents/US-20130014306-A1/similar", params={"k": 3}).json()
    assert sim["id"] == "US-20130014306-A1" and len(sim["hits"]) == 3
    scores = [h["score"] for h in sim["hits"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
    schema = client.get("/api/openapi.json").json()
    assert {"/api/search", "/api/documents/{pn}", "/api/documents/{pn}/similar"} <= set(schema["paths"])


def test_language_switch(client: TestClient) -> None:
    login(client)
    client.get("/lang/zh?next=/search", follow_redirects=False)
    assert "专利检索" in client.get("/search").text
    assert client.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/search"


@pytest.mark.parametrize(("raw", "safe"), [
    ("a &lt;b&gt; <mark>x</mark>", "a &lt;b&gt; <mark>x</mark>"),  # embedded: already escaped
    ("a <b> <mark>x&y</mark>", "a &lt;b&gt; <mark>x&amp;y</mark>"),  # Elasticsearch: raw text
    ("<script>alert(1)</script><mark>z</mark>", "&lt;script&gt;alert(1)&lt;/script&gt;<mark>z</mark>"),
])
def test_highlights_keep_only_mark_tags(raw: str, safe: str) -> None:
    assert safe_highlight(raw) == safe
