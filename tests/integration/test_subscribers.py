"""Subscribers on a real database (SQLite, and PostgreSQL when its binaries are here): outlets, staff, contacts,
the double opt-in subscription lifecycle with its consent trail, validation, due digests, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from db import Database, open_url
from patentsift.wiring import standalone_match_store
from subscribers import service as sv
from subscribers.models import ConsentEvent, Contact, Subscription
from subscribers.profiles import Profile
from subscribers.tokens import InvalidToken, make_token
from tests.integration.pg_support import db_url, pg_server, pg_url  # noqa: F401 - fixtures

SECRET = "subscriber-tests-secret-0123456789abcdef"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:  # noqa: F811 - the fixture imported above
    with standalone_match_store(db_url) as store:  # real matching profiles in the same database
        store.save_profile(Profile(name="batteries", description="lithium battery anodes", classes=["H01M"]))
        store.save_profile(Profile(name="wireless-charging", query="ti:(wireless AND charging)"))
    with open_url(db_url) as database:
        yield database


@pytest.fixture
def contact_id(db: Database) -> int:
    with db.begin() as s:
        outlet = sv.create_outlet(s, "Jiangsu Patent Information Centre", "Jiangsu")
        org = sv.create_organization(s, outlet.id, "Nanjing Battery Co.")
        return sv.add_contact(s, org.id, "Li.Wei@Example.COM", name="李伟", language="zh",
                              timezone="Asia/Shanghai").id


def _kinds(db: Database, sub_id: int) -> list[tuple[str, str]]:
    with db.begin() as s:
        q = select(ConsentEvent).where(ConsentEvent.subscription_id == sub_id).order_by(ConsentEvent.id)
        return [(e.kind, e.detail) for e in s.scalars(q)]


def test_subscribe_confirm_pause_resume_unsubscribe_with_consent_trail(db: Database, contact_id: int) -> None:
    with db.begin() as s:
        sub, token = sv.subscribe(s, SECRET, contact_id, ["batteries", "wireless-charging", "batteries"],
                                  frequency="weekly", max_items=15, format="text", auto_approve_above=0.8)
        sub_id = sub.id
        assert (sub.status, sub.profile_names, sub.confirmed_at) == ("pending", ["batteries", "wireless-charging"],
                                                                     None)
    with db.begin() as s:  # nothing goes out before the contact confirms
        assert sv.due_subscriptions(s, utc(2030, 1, 1)) == []
        sub = sv.confirm(s, SECRET, token)
        assert sub.status == "active" and sub.confirmed_at is not None
        assert sub.confirmed_at.tzinfo is not None
        assert sv.confirm(s, SECRET, token).status == "active"  # a second click changes nothing
    with db.begin() as s:
        assert sv.pause(s, sub_id).status == "paused"
        assert sv.pause(s, sub_id).status == "paused"
        assert sv.resume(s, sub_id, detail="manage-page").status == "active"
    unsub = make_token(SECRET, "unsubscribe", sub_id)
    with db.begin() as s:
        sub = sv.unsubscribe(s, SECRET, unsub, via="list-unsubscribe-post")
        assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None
        assert sv.unsubscribe(s, SECRET, unsub, via="link").status == "unsubscribed"  # idempotent
    assert _kinds(db, sub_id) == [("requested", "cli"), ("confirmed", "link"), ("paused", "cli"),
                                  ("resumed", "manage-page"), ("unsubscribed", "list-unsubscribe-post")]
    with db.begin() as s:
        with pytest.raises(sv.StateError, match="was unsubscribed"):
            sv.confirm(s, SECRET, token)  # replaying the old confirm link does not resubscribe
        with pytest.raises(sv.StateError, match="only a paused one can be resumed"):
            sv.resume(s, sub_id)
        with pytest.raises(InvalidToken) as info:
            sv.unsubscribe(s, SECRET, token)  # a confirm token cannot unsubscribe
        assert info.value.reason == "wrong-purpose"


def test_staff_passwords_are_argon2_hashed_and_verified(db: Database) -> None:
    with db.begin() as s:
        outlet = sv.create_outlet(s, "Suzhou outlet")
        user = sv.create_staff(s, outlet.id, "Curator@Example.org", "correct horse battery", name="Wang",
                               role="admin")
        assert user.email == "curator@example.org" and user.role == "admin"
        assert user.password_hash.startswith("$argon2id$") and "correct horse" not in user.password_hash
        assert sv.verify_password(user, "correct horse battery")
        assert not sv.verify_password(user, "correct horse batterY")
        assert sv.authenticate(s, "Curator@EXAMPLE.org", "correct horse battery") is user
        assert sv.authenticate(s, "curator@example.org", "wrong") is None
        assert sv.authenticate(s, "nobody@example.org", "correct horse battery") is None
        user.active = False
        assert not sv.verify_password(user, "correct horse battery")
        with pytest.raises(sv.SubscriberError, match="already exists"):
            sv.create_staff(s, outlet.id, "CURATOR@example.org", "another password")
        with pytest.raises(sv.SubscriberError, match="unknown role 'root'"):
            sv.create_staff(s, outlet.id, "x@example.org", "long enough", role="root")
        with pytest.raises(sv.SubscriberError, match="at least 12"):
            sv.create_staff(s, outlet.id, "y@example.org", "short")


def test_bad_input_is_rejected_with_clear_errors(db: Database, contact_id: int) -> None:
    with db.begin() as s:
        org_id = s.get(Contact, contact_id).organization_id
        with pytest.raises(sv.InvalidEmail, match="invalid e-mail address 'li.wei@'"):
            sv.add_contact(s, org_id, "li.wei@")
        with pytest.raises(sv.InvalidLanguage, match="unknown language 'fr': use one of zh, en"):
            sv.add_contact(s, org_id, "a@example.com", language="fr")
        with pytest.raises(sv.InvalidTimezone, match="unknown time zone 'Asia/Peking'"):
            sv.add_contact(s, org_id, "a@example.com", timezone="Asia/Peking")
        with pytest.raises(sv.InvalidTimezone):
            sv.add_contact(s, org_id, "a@example.com", timezone="../../etc/passwd")
        with pytest.raises(sv.SubscriberError, match="already a contact"):
            sv.add_contact(s, org_id, "li.wei@example.com")  # the same address in another case
        for bad in ("0 8 * *", "61 * * * *", "0 0 8 * * *", "@daily", "fortnightly"):
            with pytest.raises(sv.InvalidFrequency, match="5-field cron expression"):
                sv.subscribe(s, SECRET, contact_id, ["batteries"], frequency=bad)
        with pytest.raises(sv.NotFound, match="unknown profile\\(s\\): solar"):
            sv.subscribe(s, SECRET, contact_id, ["batteries", "solar"])
        with pytest.raises(sv.SubscriberError, match="max_items must be between 1 and 500"):
            sv.subscribe(s, SECRET, contact_id, ["batteries"], max_items=0)
        with pytest.raises(sv.SubscriberError, match="unknown format 'pdf'"):
            sv.subscribe(s, SECRET, contact_id, ["batteries"], format="pdf")
        with pytest.raises(sv.SubscriberError, match="at least one profile"):
            sv.subscribe(s, SECRET, contact_id, [])
        sub, _ = sv.subscribe(s, SECRET, contact_id, ["batteries"], frequency="0  8 * * 1-5")
        assert sub.frequency == "0 8 * * 1-5"
        assert all(isinstance(e, ValueError) for e in (sv.InvalidEmail("x"), sv.NotFound("x")))


def test_database_constraints_back_the_validation(db: Database, contact_id: int) -> None:
    with pytest.raises(IntegrityError):
        with db.begin() as s:
            contact = s.get(Contact, contact_id)
            s.add(Contact(organization_id=contact.organization_id, email="x@example.com", language="fr"))
    with pytest.raises(IntegrityError):
        with db.begin() as s:
            s.add(Subscription(contact_id=999_999, profile_names=["batteries"]))  # no such contact


def test_lists_by_outlet_and_organization(db: Database, contact_id: int) -> None:
    with db.begin() as s:
        other_outlet = sv.create_outlet(s, "Wuxi outlet")
        other_org = sv.create_organization(s, other_outlet.id, "Nanjing Battery Co.")  # same name, other outlet
        other = sv.add_contact(s, other_org.id, "li.wei@example.com", timezone="Europe/Berlin")
        mine, _ = sv.subscribe(s, SECRET, contact_id, ["batteries"])
        theirs, _ = sv.subscribe(s, SECRET, other.id, ["wireless-charging"], frequency="daily")
        first_outlet = s.get(Contact, contact_id).organization.outlet_id
        assert [x.id for x in sv.list_subscriptions(s)] == [mine.id, theirs.id]
        assert [x.id for x in sv.list_subscriptions(s, outlet_id=other_outlet.id)] == [theirs.id]
        assert [x.id for x in sv.list_subscriptions(s, organization_id=other_org.id)] == [theirs.id]
        assert [x.id for x in sv.list_subscriptions(s, outlet_id=first_outlet)] == [mine.id]
        with pytest.raises(sv.SubscriberError, match="2 organizations are named"):
            sv.get_organization(s, "Nanjing Battery Co.")
        assert sv.get_organization(s, "Nanjing Battery Co.", other_outlet.id).id == other_org.id
        with pytest.raises(sv.SubscriberError, match="contact of 2 organizations"):
            sv.get_contact(s, "li.wei@example.com")


def test_due_subscriptions_follow_the_contacts_time_zone(db: Database, contact_id: int) -> None:
    with db.begin() as s:
        daily, token = sv.subscribe(s, SECRET, contact_id, ["batteries"], frequency="daily")
        sv.confirm(s, SECRET, token).confirmed_at = utc(2026, 11, 24, 10, 0)  # 18:00 in Shanghai
        cron, token = sv.subscribe(s, SECRET, contact_id, ["batteries"], frequency="0 8 * * 1-5")
        sv.confirm(s, SECRET, token).confirmed_at = utc(2026, 11, 24, 10, 0)
        ids = (daily.id, cron.id)
    with db.begin() as s:
        assert sv.due_subscriptions(s, utc(2026, 11, 24, 12, 0)) == []  # 20:00 local: no new period yet
        due = sv.due_subscriptions(s, utc(2026, 11, 24, 16, 30))  # 00:30 on the 25th in Shanghai
        assert [(d.subscription.id, d.period_key) for d in due] == [(ids[0], "daily:2026-11-25")]
        due = sv.due_subscriptions(s, utc(2026, 11, 25, 0, 5))  # 08:05 local, a Wednesday
        assert [(d.subscription.id, d.period_key) for d in due] == [
            (ids[0], "daily:2026-11-25"), (ids[1], "cron:2026-11-25T08:00:00+08:00")]
        assert due[1].fired_at == utc(2026, 11, 25, 0, 0)
        sent = {(ids[0], "daily:2026-11-25")}
        assert [d.subscription.id for d in sv.due_subscriptions(s, utc(2026, 11, 25, 0, 5), sent)] == [ids[1]]
        sv.pause(s, ids[1])
        assert [d.subscription.id for d in sv.due_subscriptions(s, utc(2026, 11, 25, 0, 5))] == [ids[0]]
        sv.flag_contact(s, contact_id, "550 5.1.1 mailbox unavailable")
        assert sv.due_subscriptions(s, utc(2026, 11, 25, 0, 5)) == []


def _sub(frequency: str, tz: str) -> Subscription:
    return Subscription(frequency=frequency, contact=Contact(timezone=tz))


@pytest.mark.parametrize(("frequency", "tz", "now", "key"), [
    ("daily", "Asia/Shanghai", utc(2026, 11, 24, 17, 30), "daily:2026-11-25"),
    ("daily", "America/Los_Angeles", utc(2026, 11, 24, 17, 30), "daily:2026-11-24"),
    ("weekly", "Asia/Shanghai", utc(2026, 11, 29, 16, 30), "weekly:2026-W49"),  # Monday 00:30 local
    ("weekly", "Europe/Berlin", utc(2026, 11, 29, 16, 30), "weekly:2026-W48"),  # still Sunday
    ("weekly", "UTC", utc(2027, 1, 1, 12, 0), "weekly:2026-W53"),  # ISO year differs from the calendar's
    ("monthly", "Asia/Shanghai", utc(2026, 11, 30, 16, 30), "monthly:2026-12"),
    ("monthly", "America/New_York", utc(2026, 11, 30, 16, 30), "monthly:2026-11"),
    ("0 8 * * 1-5", "Asia/Shanghai", utc(2026, 11, 25, 0, 30), "cron:2026-11-25T08:00:00+08:00"),
    ("0 8 * * 1-5", "Asia/Shanghai", utc(2026, 11, 25, 0, 0), "cron:2026-11-25T08:00:00+08:00"),  # on the dot
    ("0 8 * * 1-5", "Asia/Shanghai", utc(2026, 11, 24, 23, 59), "cron:2026-11-24T08:00:00+08:00"),
    ("0 8 * * 1-5", "Asia/Shanghai", utc(2026, 11, 29, 3, 0), "cron:2026-11-27T08:00:00+08:00"),  # weekend
    ("30 7 1,15 * *", "Europe/Berlin", utc(2026, 4, 2, 12, 0), "cron:2026-04-01T07:30:00+02:00"),  # summer time
    ("30 7 1,15 * *", "Europe/Berlin", utc(2026, 3, 20, 12, 0), "cron:2026-03-15T07:30:00+01:00"),  # winter time
])
def test_period_keys(frequency: str, tz: str, now: datetime, key: str) -> None:
    assert sv.period_key(_sub(frequency, tz), now) == key


def test_weekly_period_starts_at_local_monday_midnight_across_summer_time() -> None:
    assert sv.last_fire("weekly", utc(2026, 3, 31, 12, 0), "Europe/Berlin") == utc(2026, 3, 29, 22, 0)
    assert sv.last_fire("weekly", utc(2026, 3, 29, 12, 0), "Europe/Berlin") == utc(2026, 3, 22, 23, 0)
    with pytest.raises(ValueError, match="aware"):
        sv.last_fire("daily", datetime(2026, 1, 1), "UTC")


# --- the CLI ------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CliRunner, typer.Typer, Path]]:
    import patentsift.cli as shell
    from patentsift import cli_common
    from patentsift.cli_subscribers import register

    monkeypatch.setenv("PATENTSIFT_CONFIG", str(tmp_path / "none.toml"))
    for name in ("PATENTSIFT_DATABASE_URL", "PATENTSIFT_SECRET_KEY", "PATENTSIFT_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_common, "STATE", cli_common.State())
    app = typer.Typer(callback=shell.main_options)
    register(app)
    data_dir = tmp_path / "home"
    with standalone_match_store(data_dir / "patentsift.sqlite") as store:
        store.save_profile(Profile(name="batteries", classes=["H01M"]))
    yield CliRunner(), app, data_dir


def test_cli_end_to_end(cli: tuple[CliRunner, typer.Typer, Path]) -> None:
    runner, app, data_dir = cli

    def run(*args: str, input: str | None = None, code: int = 0) -> str:
        res = runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input)
        assert res.exit_code == code, res.output
        return res.output

    assert "outlet 1: Jiangsu PIC" in run("outlet", "add", "Jiangsu PIC", "--region", "Jiangsu")
    assert "staff 1: curator@example.org (admin)" in run("staff", "add", "curator@example.org", "--outlet",
                                                         "Jiangsu PIC", "--role", "admin", "--password-stdin",
                                                         input="s3cret-pass-word\n")
    assert "organization 1" in run("org", "add", "Nanjing Battery Co.", "--outlet", "Jiangsu PIC")
    assert "(zh, Asia/Shanghai)" in run("contact", "add", "li@example.com", "--org", "Nanjing Battery Co.",
                                        "--language", "zh", "--tz", "Asia/Shanghai")
    out = run("subscription", "add", "--contact", "li@example.com", "--profile", "batteries", "--frequency",
              "weekly", "--max-items", "20", "--format", "html")
    assert "subscription 1: pending" in out
    token = out.split("token:")[1].split()[0]
    assert (data_dir / "secret.key").exists()  # generated on first use, reused after
    assert "subscription 1: active" in run("subscription", "confirm", token)
    assert "subscription 1: paused" in run("subscription", "pause", "1")
    assert "subscription 1: active" in run("subscription", "resume", "1")
    listed = json.loads(run("subscription", "list", "--json"))
    assert [(r["id"], r["contact"], r["status"], r["profiles"]) for r in listed] == [
        (1, "li@example.com", "active", ["batteries"])]
    table = run("subscription", "list", "--org", "Nanjing Battery Co.")
    assert "li@example.com" in table and "active" in table and "batteries" in table
    assert "not valid" in run("subscription", "unsubscribe", token[:-2] + "xx", code=1)
    assert "not a 'unsubscribe' link" in run("subscription", "unsubscribe", token, code=1)
    assert "unknown language 'de'" in run("contact", "add", "x@example.com", "--org", "1", "--language", "de",
                                          code=2)
    assert "invalid frequency" in run("subscription", "add", "--contact", "li@example.com", "--profile",
                                      "batteries", "--frequency", "every day", code=2)
    assert "no subscription with id 9" in run("subscription", "pause", "9", code=1)
