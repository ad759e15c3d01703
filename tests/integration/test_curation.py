"""Curation queue on a real database and real stored matches: enqueue, bulk decisions, audit, auto-approve,
feedback to matching, and the digest built from the decisions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from distribution.curation import (
    AlreadySent,
    CurationError,
    audit_trail,
    decide,
    decide_event,
    enqueue_new_matches,
    queue,
    undo,
)
from distribution.curation_queue import QueueFilter, document_page
from distribution.digest import build_digest
from distribution.models import Delivery, ReviewItem, SentItem
from index.model import PatentDocument
from subscribers import service
from subscribers.models import Subscription
from tests.integration.dist_support import World, add_subscriber, load_documents, make_world


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    return load_documents(shared_patents)


@pytest.fixture
def world(tmp_path: Path, docs: list[PatentDocument]):  # noqa: ANN201
    w = make_world(tmp_path, docs)
    yield w
    w.close()


def test_enqueue_is_idempotent_and_auto_approves_above_threshold(world: World) -> None:
    with world.sessions() as s:
        manual = add_subscriber(s, "a@example.com", profiles=("semis",))
        auto = add_subscriber(s, "b@example.com", profiles=("general",), auto_approve_above=0.9)
        paused = add_subscriber(s, "c@example.com", profiles=("general",))
        paused.status = "paused"
        s.commit()
        added = enqueue_new_matches(s, world.store)
        assert {i.subscription_id for i in added} == {manual.id, auto.id}
        assert len([i for i in added if i.subscription_id == manual.id]) == len(world.match_ids["semis"])
        assert enqueue_new_matches(s, world.store) == []  # nothing new the second time
        auto_items = queue(s, auto.id, status=None)
        approved = [i for i in auto_items if i.status == "approved"]
        assert approved and all(i.score >= 0.9 and i.decided_by == "auto" for i in approved)
        assert all(i.status == "pending" for i in auto_items if i.score < 0.9)
        assert all(i.status == "pending" for i in queue(s, manual.id, status=None))
        events = audit_trail(s)
        assert [e.action for e in events] == ["approve"] and events[0].who == "auto"
        assert sorted(events[0].item_ids) == sorted(i.id for i in approved)
        first = added[0]
        assert first.explanation and first.doc_id in {d.id for d in world.docs}


def test_bulk_decisions_audit_and_feedback(world: World) -> None:
    with world.sessions() as s:
        sub = add_subscriber(s, "curated@example.com", profiles=("semis",))
        enqueue_new_matches(s, world.store)
        items = queue(s, sub.id)
        assert len(items) >= 4
        good, bad = [i.id for i in items[:3]], [items[3].id]
        decide(s, good, "approve", "alice@outlet", match_store=world.store)
        decide(s, bad, "reject", "bob@outlet", note="off topic", match_store=world.store)
        decide(s, [good[2]], "pin", "alice@outlet")
        decide(s, [good[1]], "annotate", "alice@outlet", note="Compare with our 2024 filing")
        s.commit()  # the caller commits (db/__init__.py)
        with pytest.raises(CurationError):
            decide(s, [999999], "approve", "alice@outlet")
        with pytest.raises(CurationError):
            decide(s, good, "promote", "alice@outlet")
        rows = {i.id: i for i in s.query(ReviewItem).filter(ReviewItem.id.in_(good + bad))}
        assert all(rows[i].status == "approved" and rows[i].decided_by == "alice@outlet" for i in good)
        assert rows[bad[0]].status == "rejected" and rows[bad[0]].note == "off topic"
        assert rows[good[2]].pinned and rows[good[1]].note == "Compare with our 2024 filing"
        trail = audit_trail(s)
        assert [(e.action, e.who) for e in trail] == [("approve", "alice@outlet"), ("reject", "bob@outlet"),
                                                     ("pin", "alice@outlet"), ("annotate", "alice@outlet")]
        assert trail[0].item_ids == good and trail[1].detail == {"note": "off topic"}
        assert [e.action for e in audit_trail(s, good[2])] == ["approve", "pin"]
        feedback = world.store.feedback("semis")
        assert all(feedback[rows[i].doc_id] is True for i in good)
        assert feedback[rows[bad[0]].doc_id] is False
        assert {m.feedback for m in world.store.matches(ids=[rows[i].match_id for i in good])} == {True}

        digest = build_digest(s, s.get(Subscription, sub.id), "weekly:2026-W48", world.index)
        assert digest.items[0].review_id == good[2] and digest.items[0].pinned  # pinned first
        assert [i.review_id for i in digest.items] == [good[2], good[0], good[1]]
        assert bad[0] not in digest.review_ids and digest.groups[0].profile == "semis"
        noted = next(i for i in digest.items if i.review_id == good[1])
        assert noted.note == "Compare with our 2024 filing" and noted.link.startswith("https://")
        assert build_digest(s, s.get(Subscription, sub.id), "w", world.index, max_items=2).review_ids == good[2:] + good[:1]


def test_digest_groups_by_profile_in_contact_language(world: World) -> None:
    with world.sessions() as s:
        sub = add_subscriber(s, "zh@example.com", language="zh", profiles=("semis", "general"),
                             auto_approve_above=0.0)
        enqueue_new_matches(s, world.store)
        s.commit()  # the caller commits (db/__init__.py)
        digest = build_digest(s, sub, "weekly:2026-W48", world.index, max_items=100)
        assert digest.language == "zh" and [g.profile for g in digest.groups] == ["semis", "general"]
        ids = [i.doc_id for i in digest.items]
        assert len(ids) == len(set(ids))  # a document matched by both profiles appears once
        cn = [i for i in digest.items if i.doc_id.startswith("CN-")]
        assert cn and all(any("\u4e00" <= ch <= "\u9fff" for ch in i.title) for i in cn)
        assert all("cnipa.gov.cn" in i.link for i in cn)


def test_cli_digest_preview_writes_html(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    import patentsift.cli as shell
    from patentsift.cli_distribution import register

    with world.sessions() as s:
        sub = add_subscriber(s, "preview@example.com", profiles=("semis",), auto_approve_above=0.0)
        enqueue_new_matches(s, world.store)
        s.commit()  # the caller commits (db/__init__.py)
    app = typer.Typer()
    app.callback()(shell.main_options)
    register(app)
    monkeypatch.setenv("PATENTSIFT_HOME", str(tmp_path))  # index.sqlite and patentsift.sqlite of the world
    monkeypatch.setenv("PATENTSIFT_SECRET_KEY", "cli-secret")
    monkeypatch.delenv("PATENTSIFT_DATABASE_URL", raising=False)
    out = tmp_path / "preview.html"
    result = CliRunner().invoke(app, ["digest", "preview", str(sub.id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Your patent digest" in html and "unsubscribe?token=" in html
    assert world.docs and any(d.id in html for d in world.docs)
    listed = CliRunner().invoke(app, ["review", "list", "--status", "approved", "--subscription", str(sub.id)])
    assert listed.exit_code == 0 and "semis" in listed.output


def test_cli_decisions_are_made_by_a_staff_user_of_the_items_outlet(world: World, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from patentsift import cli_common
    from patentsift.cli import main_options
    from patentsift.cli_distribution import register

    with world.sessions() as s:
        sub = add_subscriber(s, "who@example.com", profiles=("semis",))
        outlet_id = sub.contact.organization.outlet_id
        other = service.create_outlet(s, "Elsewhere")
        service.create_staff(s, outlet_id, "ada@outlet.example", "a long and unusual passphrase 1")
        service.create_staff(s, other.id, "eve@elsewhere.example", "a long and unusual passphrase 2")
        enqueue_new_matches(s, world.store)
        s.commit()
        item = queue(s, sub.id)[0].id
    app = typer.Typer()
    app.callback()(main_options)
    register(app)
    monkeypatch.setattr(cli_common, "STATE", cli_common.State())
    monkeypatch.setenv("PATENTSIFT_HOME", str(tmp_path))
    monkeypatch.delenv("PATENTSIFT_DATABASE_URL", raising=False)
    runner = CliRunner()
    unknown = runner.invoke(app, ["review", "approve", str(item), "--who", "nobody@example.com"])
    assert unknown.exit_code == 2 and "not an active staff user" in unknown.output
    foreign = runner.invoke(app, ["review", "approve", str(item), "--who", "eve@elsewhere.example"])
    assert foreign.exit_code == 1 and "outlet" in foreign.output
    ok = runner.invoke(app, ["review", "approve", str(item), "--who", "ADA@outlet.example"])
    assert ok.exit_code == 0, ok.output
    with world.sessions() as s:
        decided = s.get(ReviewItem, item)
        assert decided.status == "approved" and decided.decided_by == "ada@outlet.example"


# --- the queue grouped by document (issue 13) -------------------------------------------------------------------
@contextmanager
def site_sessions(site) -> Iterator[Session]:  # noqa: ANN001
    """A session on a web test site's database (the app's own file)."""
    from patentsift.db import open_database

    with open_database(site.cfg) as db, db.session() as s:
        yield s


def _mail(s, item: ReviewItem, when: datetime) -> None:  # noqa: ANN001
    """Record `item` as mailed to its subscriber, as delivery does after the server's 250."""
    row = Delivery(subscription_id=item.subscription_id, period_key=f"t:{item.id}",
                   idempotency_key=f"{item.subscription_id}:t:{item.id}", message_id=f"<t{item.id}@test>",
                   status="sent", item_ids=[item.id], created_at=when, sent_at=when)
    s.add(row)
    s.flush()
    s.add(SentItem(subscription_id=item.subscription_id, item_key=item.doc_id, delivery_id=row.id, sent_at=when))
    s.flush()


def test_document_queue_groups_filters_totals_and_pages(world: World) -> None:
    with world.sessions() as s:
        a = add_subscriber(s, "one@example.com", profiles=("semis",))
        b = add_subscriber(s, "two@example.com", profiles=("semis", "general"))
        enqueue_new_matches(s, world.store)
        s.commit()
        everything = QueueFilter(status="all")
        first = document_page(s, everything, page=1, per_page=3)
        semis_docs = {i.doc_id for i in queue(s, a.id)}
        assert first.documents == len({i.doc_id for i in queue(s, None, None)}) and first.pages > 1
        assert len(first.groups) == 3 and [g.score for g in first.groups] == sorted(
            (g.score for g in first.groups), reverse=True)
        pages = [g.doc_id for p in range(1, first.pages + 1) for g in document_page(s, everything, p, 3).groups]
        assert len(pages) == len(set(pages)) == first.documents  # every document once, across the pages
        both = next(g for p in range(1, first.pages + 1) for g in document_page(s, everything, p, 3).groups
                    if g.doc_id in semis_docs)
        assert {i.subscription_id for i in both.items} >= {a.id, b.id} and both.status == "pending"
        totals = first.totals
        assert totals["items"] == totals["pending"] == s.query(ReviewItem).count() and totals["sent"] == 0

        only_general = document_page(s, QueueFilter(profile="general", status="all"), per_page=200)
        assert all(i.profile_name == "general" for g in only_general.groups for i in g.items)
        org_a = s.get(Subscription, a.id).contact.organization_id
        of_a = document_page(s, QueueFilter(organization_id=org_a, status="all"), per_page=200)
        assert {i.subscription_id for g in of_a.groups for i in g.items} == {a.id}
        high = document_page(s, QueueFilter(min_score=0.5, status="all"), per_page=200)
        assert all(i.score >= 0.5 for g in high.groups for i in g.items)

        decide(s, [i.id for i in both.items], "approve", "alice@outlet")
        _mail(s, both.items[0], datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
        s.commit()
        with pytest.raises(AlreadySent):
            decide(s, [both.items[0].id], "reject", "alice@outlet")
        sent = document_page(s, QueueFilter(status="sent"), per_page=200)
        assert [g.doc_id for g in sent.groups] == [both.doc_id]
        assert sent.groups[0].sent == {both.items[0].id: datetime(2026, 1, 5, 9, 30, tzinfo=UTC)}
        assert both.doc_id not in {g.doc_id for g in document_page(s, QueueFilter(), per_page=200).groups}
        assert document_page(s, everything).totals["sent"] == 1


def test_undo_restores_the_previous_decisions_and_is_audited(world: World) -> None:
    with world.sessions() as s:
        sub = add_subscriber(s, "undo@example.com", profiles=("semis",))
        enqueue_new_matches(s, world.store)
        items = queue(s, sub.id)[:4]
        ids = [i.id for i in items]
        decide(s, ids[:1], "reject", "bob@outlet", note="off topic")
        s.commit()
        _, event = decide_event(s, ids, "approve", "alice@outlet", match_store=world.store, undoable=True)
        s.commit()
        assert {s.get(ReviewItem, i).status for i in ids} == {"approved"}
        assert set(world.store.feedback("semis").values()) == {True}
        restored, record = undo(s, event.id, "alice@outlet", match_store=world.store)
        s.commit()
        rows = {i: s.get(ReviewItem, i) for i in ids}
        assert rows[ids[0]].status == "rejected" and rows[ids[0]].decided_by == "bob@outlet"
        assert rows[ids[0]].note == "off topic"
        assert all(rows[i].status == "pending" and rows[i].decided_by is None for i in ids[1:])
        assert record.action == "undo" and record.detail["undoes"] == event.id and sorted(record.item_ids) == ids
        feedback = world.store.feedback("semis")
        assert feedback[rows[ids[0]].doc_id] is False  # the rejection counts again
        assert not {rows[i].doc_id for i in ids[1:]} & set(feedback)  # the undone approvals teach nothing
        with pytest.raises(CurationError, match="undone already"):
            undo(s, event.id, "alice@outlet")
        with pytest.raises(CurationError, match="not a decision that can be undone"):
            undo(s, record.id, "alice@outlet")


# --- the web routes: grouped cards, in-place decisions, override, undo, sent items, outlets ---------------------
def _post(client, url: str, data: dict, csrf: str):  # noqa: ANN001, ANN202
    return client.post(url, data=data, headers={"X-CSRF-Token": csrf, "Accept": "application/json"})


def test_web_queue_decides_in_place_overrides_undoes_and_locks_sent_items(tmp_path: Path,
                                                                         docs: list[PatentDocument]) -> None:
    from fastapi.testclient import TestClient

    from patentsift.web.app import create_app
    from patentsift.wiring import standalone_match_store
    from tests.integration.web_site import build_site, login

    site = build_site(tmp_path / "site", docs)
    with site_sessions(site) as s:  # a second East subscription to the same profile: two items per document
        org = s.get(Subscription, site.east_sub).contact.organization_id
        contact = service.add_contact(s, org, "second@east.example")
        second, token = service.subscribe(s, "x" * 48, contact.id, ["semis"])
        second.status = "active"
        s.commit()
        with standalone_match_store(site.cfg.database) as store:
            enqueue_new_matches(s, store)
        s.commit()
        pairs = {}
        for item in queue(s, None, None, outlet_ids=[1]):  # East's items
            pairs.setdefault(item.doc_id, []).append(item)
        doc, (one, two) = next((d, its) for d, its in pairs.items() if len(its) == 2)
    with TestClient(create_app(site.cfg, testing=True)) as client:
        csrf = login(client)
        page = client.get("/curation?per_page=2")
        assert page.status_code == 200 and 'rel="next"' in page.text and "Page 1 of" in page.text
        assert page.text.count('class="item"') == 2 and 'class="sub"' in page.text
        card = client.get("/curation?status=all&per_page=200&profile=semis").text
        assert f'data-doc="{doc}"' in card and "Abstract" in card and "Why it matched" in card
        # one decision on the card decides both subscriptions; the answer holds the re-rendered card
        res = _post(client, "/curation/decide", {"action": "approve", "ids": f"{one.id} {two.id}",
                                                 "shown": f"{one.id} {two.id}"}, csrf)
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["count"] == 2 and f'data-doc="{doc}"' in body["cards"] and 'data-status="approved"' in body["cards"]
        # override: only the second subscription is rejected
        res = _post(client, "/curation/decide", {"action": "reject", "override": f"reject:{two.id}",
                                                 "shown": f"{one.id} {two.id}"}, csrf)
        assert res.status_code == 200 and res.json()["count"] == 1 and 'data-status="mixed"' in res.json()["cards"]
        override_event = res.json()["event"]
        # undo the override: back to approved
        res = _post(client, "/curation/undo", {"event": override_event, "shown": f"{one.id} {two.id}"}, csrf)
        assert res.status_code == 200 and res.json()["count"] == 1
        assert _post(client, "/curation/undo", {"event": override_event}, csrf).status_code == 409
        with site_sessions(site) as s:
            assert s.get(ReviewItem, two.id).status == "approved" == s.get(ReviewItem, one.id).status
            trail = [e.action for e in audit_trail(s, two.id)]
            assert trail[-3:] == ["approve", "reject", "undo"]
            _mail(s, s.get(ReviewItem, one.id), datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
            s.commit()
        # a mailed item cannot be decided again; the card says when it went out
        res = _post(client, "/curation/decide", {"action": "reject", "override": f"reject:{one.id}"}, csrf)
        assert res.status_code == 409 and "mailed already" in res.json()["error"]
        res = _post(client, "/curation/decide", {"action": "reject", "ids": f"{one.id} {two.id}"}, csrf)
        assert res.status_code == 200 and res.json()["count"] == 1  # the card's decision skips the mailed one
        sent_page = client.get("/curation?status=sent").text
        assert "sent 2026-01-05 09:30" in sent_page
        # the API audit hides the undo snapshots
        assert all(not {"before", "feedback"} & set(e["detail"]) for e in client.get("/api/queue/audit").json())

        # another outlet's staff: 404 on East's items, events and organization
        client.post("/logout", data={"csrf_token": csrf})
        west = login(client, "staff@west.example")
        assert _post(client, "/curation/decide", {"action": "approve", "ids": str(two.id)}, west).status_code == 404
        assert _post(client, "/curation/undo", {"event": override_event}, west).status_code == 404
        assert client.get(f"/curation?organization={org}").status_code == 404
        west_page = client.get("/curation?status=all&per_page=200").text
        assert f'data-id="{one.id}"' not in west_page and f'data-id="{two.id}"' not in west_page
        assert "second@east.example" not in west_page
    with site_sessions(site) as s:
        assert s.get(ReviewItem, two.id).status == "rejected"
