"""Work-account report figures against rows created in a real SQLite database (migrated), CSV and HTML output."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from distribution.charts import bar_chart_svg, render_html
from distribution.models import Delivery, ReviewItem
from distribution.reports import UnknownOutlet, build_report, write_csv
from harvest.state import HarvestState
from matching.store import MatchRow, NewMatch
from patentsift.config import Config
from patentsift.db import open_database
from patentsift.wiring import standalone_match_store
from subscribers import service
from subscribers.models import ConsentEvent
from subscribers.profiles import Profile

SECRET = "report-test-secret-key-0123456789abcdef"


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> dict:
    cfg = Config(data_dir=tmp_path)
    with standalone_match_store(cfg.database) as store:
        for name in ("batteries", "lidar"):
            store.save_profile(Profile(name=name, description=name))
        ids = store.record_run("batteries", [NewMatch(f"US-{i}-B2", i, 0.9, {}, {}, {f"k{i}"}) for i in range(5)],
                               5, "r1")
        ids += store.record_run("lidar", [NewMatch(f"US-{i}-B2", i, 0.8, {}, {}, {f"l{i}"}) for i in range(3)],
                                3, "r2")
    db = open_database(cfg)
    with db.begin() as s:
        # matches: batteries 3 in Feb, 1 in Mar, 1 in May (outside); lidar 2 in Mar, 1 in Jan (outside)
        for mid, when in zip(ids, [at(2, 1), at(2, 2), at(2, 3), at(3, 1), at(5, 1), at(3, 5), at(3, 6), at(1, 9)],
                             strict=True):
            s.execute(update(MatchRow).where(MatchRow.id == mid).values(created_at=when))
        north = service.create_outlet(s, "North")
        south = service.create_outlet(s, "South")
        acme = service.create_organization(s, north.id, "Acme")
        bolt = service.create_organization(s, north.id, "Bolt")
        cyan = service.create_organization(s, south.id, "Cyan")
        subs = {}
        for org, email, profiles in ((acme, "a@acme.example", ["batteries"]), (bolt, "b@bolt.example", ["lidar"]),
                                     (cyan, "c@cyan.example", ["batteries", "lidar"])):
            contact = service.add_contact(s, org.id, email)
            sub, token = service.subscribe(s, SECRET, contact.id, profiles, frequency="weekly")
            service.confirm(s, SECRET, token)
            subs[org.name] = sub
        for n, (org, status, when) in enumerate([
                ("Acme", "approved", at(2, 5)), ("Acme", "approved", at(3, 5)), ("Acme", "rejected", at(3, 5)),
                ("Acme", "approved", at(4, 2)),  # after the period
                ("Bolt", "approved", at(3, 9)), ("Cyan", "pending", None), ("Cyan", "approved", at(2, 28))]):
            s.add(ReviewItem(subscription_id=subs[org].id, match_id=ids[n % len(ids)], doc_id=f"D{n}",
                             profile_name="batteries", score=0.9, status=status, decided_at=when))
        for n, (org, status, created, sent) in enumerate([
                ("Acme", "sent", at(2, 6), at(2, 6)), ("Acme", "sent", at(3, 6), at(3, 6)),
                ("Bolt", "failed_permanent", at(3, 10), None), ("Cyan", "sent", at(2, 27), at(3, 1)),
                ("Cyan", "failed_transient", at(3, 2), None), ("Cyan", "sent", at(1, 2), at(1, 2))]):
            s.add(Delivery(subscription_id=subs[org].id, period_key=f"p{n}", idempotency_key=f"{subs[org].id}:p{n}",
                           message_id=f"<m{n}@test>", status=status, created_at=created, sent_at=sent))
        for org, when in (("Bolt", at(3, 20)), ("Cyan", at(6, 1))):
            s.add(ConsentEvent(subscription_id=subs[org].id, kind="unsubscribed", at=when, detail="link"))
    state = HarvestState(cfg.state_path)
    for key, n in (("feb.zip", 120), ("mar.zip", 30), ("jul.zip", 7)):
        state.start(key, "fp")
        state.mark_done(key, "fp", documents=n, rejects=0)
    state.close()
    with sqlite3.connect(cfg.state_path) as raw:
        for key, when in (("feb.zip", at(2, 10)), ("mar.zip", at(3, 10)), ("jul.zip", at(7, 1))):
            raw.execute("UPDATE files SET done_at = ? WHERE key = ?", (when.isoformat(), key))
    yield {"cfg": cfg, "db": db}
    db.close()


def figures(report, name: str) -> dict:
    row = next(r for r in report.rows if (r.organization or r.outlet or "all") == name)
    f = row.figures
    return {"harvested": f.harvested, "matches": f.matches, "selected": f.selected, "sent": f.sent,
            "failed": f.failed, "unsubscribes": f.unsubscribes}


def test_figures_per_outlet_and_organization(world: dict) -> None:
    with world["db"].begin() as s:
        rep = build_report(s, date(2026, 2, 1), date(2026, 3, 31), harvest_state=world["cfg"].state_path)
    assert figures(rep, "Acme") == {"harvested": None, "matches": 4, "selected": 2, "sent": 2, "failed": 0,
                                    "unsubscribes": 0}
    assert figures(rep, "Bolt") == {"harvested": None, "matches": 2, "selected": 1, "sent": 0, "failed": 1,
                                    "unsubscribes": 1}
    assert figures(rep, "Cyan") == {"harvested": None, "matches": 6, "selected": 1, "sent": 1, "failed": 0,
                                    "unsubscribes": 0}
    # an outlet counts a match once even when two of its organizations follow the profile
    assert figures(rep, "North") == {"harvested": None, "matches": 6, "selected": 3, "sent": 2, "failed": 1,
                                     "unsubscribes": 1}
    assert figures(rep, "all") == {"harvested": 150, "matches": 6, "selected": 4, "sent": 3, "failed": 1,
                                   "unsubscribes": 1}
    assert [(m, f.harvested, f.matches, f.selected, f.sent) for m, f in rep.monthly.items()] == [
        ("2026-02", 120, 3, 2, 1), ("2026-03", 30, 3, 2, 2)]


def test_one_outlet_csv_and_html(world: dict, tmp_path: Path) -> None:
    with world["db"].begin() as s:
        rep = build_report(s, date(2026, 1, 1), date(2026, 3, 31), outlet="South",
                           harvest_state=world["cfg"].state_path)
        with pytest.raises(UnknownOutlet, match="North, South"):
            build_report(s, date(2026, 1, 1), date(2026, 3, 31), outlet="West")
    assert [r.organization or r.outlet for r in rep.rows] == ["South", "South", "Cyan"]
    assert figures(rep, "Cyan") == {"harvested": None, "matches": 7, "selected": 1, "sent": 2, "failed": 0,
                                    "unsubscribes": 0}
    write_csv(rep, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cyan = next(r for r in rows if r["organization"] == "Cyan")
    assert (cyan["matches"], cyan["sent"], cyan["harvested"]) == ("7", "2", "")
    assert [r["month"] for r in rows if r["level"] == "month"] == ["2026-01", "2026-02", "2026-03"]
    page = render_html(rep)
    assert page.count("<svg") == 6 and "<script" not in page
    assert "Cyan" in page and "Digests sent" in page and '<html lang="en">' in page
    zh = render_html(rep, "zh")
    assert '<html lang="zh">' in zh and "工作报表" in zh and "已发送快讯" in zh and "Digests sent" not in zh
    assert "统计期间 2026-01-01 至 2026-03-31" in zh and zh.count("<svg") == 6


def test_svg_escapes_labels() -> None:
    svg = bar_chart_svg("a<b", [("<x>", 3), ("y", 0)])
    assert "a&lt;b" in svg and "&lt;x&gt;" in svg and "<x>" not in svg and "<script" not in svg
