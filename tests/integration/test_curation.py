"""Curation queue on a real database and real stored matches: enqueue, bulk decisions, audit, auto-approve,
feedback to matching, and the digest built from the decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from distribution.curation import CurationError, audit_trail, decide, enqueue_new_matches, queue
from distribution.digest import build_digest
from distribution.models import ReviewItem
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
