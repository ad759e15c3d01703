"""Every link a subscriber gets by mail, followed through the real web app (no login): the confirmation message
(mailed to a real aiosmtpd server when staff add a subscription) and a digest of real, curated documents.

A GET never changes anything (mail scanners follow links); the confirm and feedback buttons and the RFC 8058
one-click POST do; feedback reaches the profile's feedback and the curation view; a profile's own seed patents
are never in its subscribers' digests; hostile names are refused at input and harmless if forced in."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from distribution.curation import decide, enqueue_new_matches, queue
from distribution.delivery import SmtpSettings, message_id_for
from distribution.digest import build_digest, worth_sending
from distribution.feedback import reader_judgements
from distribution.message import digest_message
from distribution.models import AuditEvent
from index.model import PatentDocument
from patentsift.config import Config, SmtpConfig
from patentsift.db import open_database
from patentsift.web.app import create_app
from subscribers import service
from subscribers.models import ConsentEvent, Subscription
from subscribers.profiles import Profile
from tests.integration.dist_support import QUERY, SECRET, Sink, World, free_port, load_documents, make_world

BASE = "https://news.example.org"
PASSWORD = "correct horse battery"
PERIOD = "weekly:2026-W48"
_URL = re.compile(r"https?://[^\s\"'<>]+")



@dataclass
class Loop:
    cfg: Config
    world: World
    sink: Sink
    settings: SmtpSettings
    contact_id: int


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    return load_documents(shared_patents)


@pytest.fixture
def loop(tmp_path: Path, docs: list[PatentDocument]) -> Iterator[Loop]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    cfg = Config(data_dir=tmp_path, secret_key=SECRET,
                 smtp=SmtpConfig(host="127.0.0.1", port=controller.port, security="none",
                                 from_address="digest@news.example.org", base_url=BASE, timeout=10))
    world = make_world(tmp_path, docs)  # data_dir/index.sqlite and data_dir/patentsift.sqlite: the app's own
    with open_database(cfg) as db, db.begin() as s:
        outlet = service.create_outlet(s, "Shanghai outlet", sender_name="上海专利信息推送",
                                       contact_address="100 Century Ave, Shanghai · ip@sh.example")
        service.create_staff(s, outlet.id, "staff@sh.example", PASSWORD, name="Ada")
        org = service.create_organization(s, outlet.id, "Acme Semiconductors")
        contact_id = service.add_contact(s, org.id, "reader@acme.example", name="Zhang Wei", language="en").id
    settings = SmtpSettings(host="127.0.0.1", port=controller.port, security="none",
                            from_address="digest@news.example.org", base_url=BASE, timeout=10)
    try:
        yield Loop(cfg, world, sink, settings, contact_id)
    finally:
        world.close()
        controller.stop()


@pytest.fixture
def client(loop: Loop) -> Iterator[TestClient]:
    with TestClient(create_app(loop.cfg, testing=True), base_url=BASE) as c:
        yield c


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "the page has no CSRF field"
    return m.group(1)


def _login(client: TestClient) -> str:
    token = _csrf(client.get("/login").text)
    res = client.post("/login", data={"email": "staff@sh.example", "password": PASSWORD, "csrf_token": token,
                                      "next": "/subscriptions"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    return _csrf(client.get("/subscriptions").text)


def _links(msg: EmailMessage) -> list[str]:
    """Every URL in a message: List-Unsubscribe, the text part, the HTML part's href attributes."""
    found: list[str] = []
    if msg["List-Unsubscribe"]:
        found += [p.strip().strip("<>") for p in str(msg["List-Unsubscribe"]).split(",")]
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            found += _URL.findall(part.get_content())
        elif part.get_content_type() == "text/html":
            found += [html_lib.unescape(h) for h in re.findall(r'href="([^"]+)"', part.get_content())]
    return list(dict.fromkeys(u.rstrip(".,") for u in found))


def _ours(urls: list[str]) -> dict[str, list[str]]:
    """Our links by path (/unsubscribe, /manage, /confirm, /feedback); the office links go elsewhere."""
    out: dict[str, list[str]] = {}
    for u in urls:
        if u.startswith(BASE + "/"):
            out.setdefault(urlsplit(u).path, []).append(u)
        else:
            assert u.startswith(("https://ppubs.uspto.gov/", "https://epub.cnipa.gov.cn/", "mailto:",
                                 "https://www.j-platpat.inpit.go.jp/", "https://worldwide.espacenet.com/")), u
    return out


def _status(loop: Loop, sub_id: int) -> str:
    with open_database(loop.cfg) as db, db.begin() as s:
        return s.get(Subscription, sub_id).status


def _consent(loop: Loop, sub_id: int) -> list[tuple[str, str]]:
    with open_database(loop.cfg) as db, db.begin() as s:
        return [(e.kind, e.detail) for e in s.scalars(select(ConsentEvent).where(
            ConsentEvent.subscription_id == sub_id).order_by(ConsentEvent.id))]


def _curated_digest(loop: Loop, sub_id: int) -> EmailMessage:
    """Queue the subscription's matches, approve them, and build its digest message as delivery does."""
    with open_database(loop.cfg) as db, db.begin() as s:
        enqueue_new_matches(s, loop.world.store)
    with open_database(loop.cfg) as db, db.begin() as s:
        ids = [i.id for i in queue(s, sub_id)]
        assert ids
        decide(s, ids, "approve", "staff@sh.example")
    with open_database(loop.cfg) as db, db.begin() as s:
        sub = s.get(Subscription, sub_id)
        digest = build_digest(s, sub, PERIOD, loop.world.index, max_items=4)
        assert len(digest) == 4
        data = digest_message(sub, digest, settings=loop.settings, secret=SECRET,
                              message_id=message_id_for(sub_id, PERIOD))
    return message_from_bytes(data, policy=policy.default)


def _confirm_by_mail(loop: Loop, client: TestClient, csrf: str, profile: str = "semis") -> int:
    """Staff add a subscription in the web app: the contact is mailed the confirmation link; following it (GET)
    changes nothing, its button activates the subscription."""
    before = len(loop.sink.received)
    res = client.post("/subscriptions", data={"contact_id": loop.contact_id, "profiles": profile,
                                              "frequency": "weekly", "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303 and "mailed=" in res.headers["location"], res.headers["location"]
    assert len(loop.sink.received) == before + 1
    mail = loop.sink.received[-1]
    assert mail["To"].addresses[0].addr_spec == "reader@acme.example"
    assert mail["From"].addresses[0].display_name == "上海专利信息推送"
    assert "Shanghai outlet" in str(mail["Subject"]) and mail["List-Unsubscribe"] is None
    ours = _ours(_links(mail))
    assert set(ours) == {"/confirm"} and len(ours["/confirm"]) == 1
    url = ours["/confirm"][0]
    assert url in mail.get_body(("plain",)).get_content() and "100 Century Ave" in mail.get_body(
        ("html",)).get_content()
    sub_id = int(res.headers["location"].split("mailed=")[1].split("&")[0])
    reader = TestClient(client.app, base_url=BASE)  # the contact's browser: no staff session
    page = reader.get(url)
    assert page.status_code == 200 and "Confirm subscription" in page.text
    assert _status(loop, sub_id) == "pending"  # a GET confirms nothing
    done = reader.post("/confirm", data={"token": parse_qs(urlsplit(url).query)["token"][0],
                                         "csrf_token": _csrf(page.text)})
    assert done.status_code == 200 and "active" in done.text
    assert _status(loop, sub_id) == "active"
    return sub_id


def test_confirmation_mail_resend_and_every_digest_link(loop: Loop, client: TestClient) -> None:
    csrf = _login(client)
    sub_id = _confirm_by_mail(loop, client, csrf)
    with open_database(loop.cfg) as db, db.begin() as s:
        assert s.get(Subscription, sub_id).confirmation_sent_at is not None
    # a confirmed subscription has nothing to resend; the resend button is for pending ones
    res = client.post(f"/subscriptions/{sub_id}/confirmation/resend", data={"csrf_token": csrf},
                      follow_redirects=False)
    assert res.status_code == 409

    msg = _curated_digest(loop, sub_id)
    assert msg["From"].addresses[0].display_name == "上海专利信息推送"
    assert "100 Century Ave, Shanghai" in msg.get_body(("plain",)).get_content()
    ours = _ours(_links(msg))
    assert set(ours) == {"/unsubscribe", "/manage", "/feedback"}
    assert len(ours["/unsubscribe"]) == 1 and len(ours["/feedback"]) == 2 * 4  # relevant / not relevant, each item
    one_click = ours["/unsubscribe"][0]
    assert str(msg["List-Unsubscribe"]).startswith(f"<{one_click}>")

    reader = TestClient(client.app, base_url=BASE)
    for url in [u for urls in ours.values() for u in urls]:  # a mail scanner follows every link: nothing changes
        assert reader.get(url).status_code == 200, url
    assert _status(loop, sub_id) == "active"
    with open_database(loop.cfg) as db, db.begin() as s:
        assert reader_judgements(s) == {}

    # the first item's "relevant" link and the second item's "not relevant" link, through their pages' buttons
    store = loop.world.store
    chosen: dict[int, bool] = {}
    for url in ours["/feedback"]:
        token = parse_qs(urlsplit(url).query)["token"][0]
        from subscribers.tokens import read_feedback_token

        claim = read_feedback_token(SECRET, token)
        if len(chosen) < 2 and claim.item_id not in chosen and claim.relevant == (not chosen):
            page = reader.get(url)
            res = reader.post("/feedback", data={"token": token, "csrf_token": _csrf(page.text)})
            assert res.status_code == 200 and "recorded" in res.text
            again = reader.post("/feedback", data={"token": token, "csrf_token": _csrf(page.text)})
            assert again.status_code == 200 and "already" in again.text  # recorded once
            chosen[claim.item_id] = claim.relevant
    assert list(chosen.values()) == [True, False]
    with open_database(loop.cfg) as db, db.begin() as s:
        judged = reader_judgements(s)
        assert {i: j.relevant for i, j in judged.items()} == chosen
        assert all(j.who == "reader:reader@acme.example" for j in judged.values())
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "feedback")))
        assert len(events) == 2
        rows = s.execute(text("SELECT f.relevant, f.source FROM matching_feedback f JOIN dist_review_items r "
                              "ON r.match_id = f.match_id WHERE r.id IN (:a, :b) ORDER BY r.id"),
                         dict(zip("ab", sorted(chosen), strict=True))).all()
    assert [(bool(r), src) for r, src in rows] == [(chosen[i], "subscriber") for i in sorted(chosen)]
    assert store.feedback("semis")  # the profile's feedback, as curators' decisions feed it
    page = client.get(f"/curation?subscription={sub_id}&status=approved")
    assert page.status_code == 200
    assert "reader: relevant" in page.text and "reader: not relevant" in page.text

    # RFC 8058 one-click: a mail client POSTs to the List-Unsubscribe URL, no cookie, no CSRF token
    mail_client = TestClient(client.app, base_url=BASE)
    for _ in range(2):  # idempotent
        res = mail_client.post(one_click, content="List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert res.status_code == 200 and "unsubscribed" in res.text
        assert _status(loop, sub_id) == "unsubscribed"
    assert _consent(loop, sub_id)[-1] == ("unsubscribed", "list-unsubscribe-post")
    assert [k for k, _ in _consent(loop, sub_id)].count("unsubscribed") == 1
    assert reader.get(one_click).status_code == 200  # the page still answers, saying so


def test_unsubscribe_page_button_and_bad_tokens(loop: Loop, client: TestClient) -> None:
    csrf = _login(client)
    sub_id = _confirm_by_mail(loop, client, csrf, profile="general")
    ours = _ours(_links(_curated_digest(loop, sub_id)))
    url = ours["/unsubscribe"][0]
    reader = TestClient(client.app, base_url=BASE)
    page = reader.get(url)
    assert page.status_code == 200 and "Unsubscribe" in page.text and _status(loop, sub_id) == "active"
    action = html_lib.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    assert action.startswith("/unsubscribe?token=")
    res = reader.post(action, data={"csrf_token": _csrf(page.text)})
    assert res.status_code == 200 and _status(loop, sub_id) == "unsubscribed"
    assert _consent(loop, sub_id)[-1] == ("unsubscribed", "link")
    token = parse_qs(urlsplit(url).query)["token"][0]
    manage_token = parse_qs(urlsplit(ours["/manage"][0]).query)["token"][0]  # a token of another purpose
    for bad_token in (token[:-3] + "xyz", manage_token):
        assert reader.get(f"/unsubscribe?token={bad_token}").status_code == 403
        assert reader.post(f"/unsubscribe?token={bad_token}", content="List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 403
    feedback = ours["/feedback"][0]
    assert reader.get(feedback.replace("token=", "token=x")).status_code == 403
    assert reader.post("/feedback", data={"token": token, "csrf_token": _csrf(page.text)}).status_code == 403


def test_resend_confirmation_and_pending_subscription_gets_nothing(loop: Loop, client: TestClient) -> None:
    csrf = _login(client)
    with open_database(loop.cfg) as db, db.begin() as s:
        sub, _ = service.subscribe(s, SECRET, loop.contact_id, ["semis"])
        sub_id = sub.id
    assert loop.sink.received == []  # nothing was mailed by the service alone
    res = client.post(f"/subscriptions/{sub_id}/confirmation/resend", data={"csrf_token": csrf},
                      follow_redirects=False)
    assert res.status_code == 303 and f"mailed={sub_id}" in res.headers["location"]
    api = client.post(f"/api/subscriptions/{sub_id}/confirmation/resend", headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200 and api.json() == {"subscription_id": sub_id, "sent": True, "error": None}
    assert len(loop.sink.received) == 2
    urls_sent = [_ours(_links(m))["/confirm"][0] for m in loop.sink.received]
    assert all(urlsplit(u).path == "/confirm" for u in urls_sent)
    assert _status(loop, sub_id) == "pending"
    page = client.get("/subscriptions")
    assert "Resend confirmation" in page.text

    # the SMTP server is gone: the subscription is created all the same, staff are told, nothing is flagged
    loop.cfg.smtp.port = free_port()
    res = client.post("/subscriptions", data={"contact_id": loop.contact_id, "profiles": "general",
                                              "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303 and "mail_error=" in res.headers["location"]
    page = client.get(res.headers["location"])
    assert "was not sent" in page.text and "/confirm?token=" in page.text


def test_seed_patents_never_go_back_and_send_when_empty(loop: Loop, client: TestClient) -> None:
    csrf = _login(client)
    sub_id = _confirm_by_mail(loop, client, csrf)
    with open_database(loop.cfg) as db, db.begin() as s:
        enqueue_new_matches(s, loop.world.store)
    with open_database(loop.cfg) as db, db.begin() as s:
        items = queue(s, sub_id)
        decide(s, [i.id for i in items], "approve", "staff@sh.example")
        seed = items[0].doc_id  # the best match is one of the profile's own example patents
        before = {i.doc_id for i in build_digest(s, s.get(Subscription, sub_id), PERIOD, loop.world.index,
                                                 max_items=500).items}
        assert seed in before
    loop.world.store.save_profile(Profile(name="semis", owner="test", description="semis test profile",
                                          query=QUERY, classes=["H01L", "G06F", "H04"], seeds=[seed]))
    with open_database(loop.cfg) as db, db.begin() as s:
        sub = s.get(Subscription, sub_id)
        digest = build_digest(s, sub, PERIOD, loop.world.index, max_items=500)
        assert {i.doc_id for i in digest.items} == before - {seed}
        kindless = seed.rsplit("-", 1)[0]  # a seed given without its kind code names it too
    loop.world.store.save_profile(Profile(name="semis", owner="test", description="semis test profile",
                                          query=QUERY, classes=["H01L", "G06F", "H04"], seeds=[kindless]))
    with open_database(loop.cfg) as db, db.begin() as s:
        sub = s.get(Subscription, sub_id)
        assert seed not in {i.doc_id for i in build_digest(s, sub, PERIOD, loop.world.index, max_items=500).items}

        # send when empty: off by default; on, an empty digest says "nothing new" and carries its links
        from distribution.digest import Digest

        empty = Digest(sub_id, PERIOD, "en", [])
        assert sub.send_when_empty is False and not worth_sending(sub, empty)
        service.set_send_when_empty(s, sub_id, True)
        assert worth_sending(sub, empty)
        msg = message_from_bytes(digest_message(sub, empty, settings=loop.settings, secret=SECRET,
                                                message_id=message_id_for(sub_id, PERIOD)), policy=policy.default)
    assert "nothing new" in str(msg["Subject"])
    assert "No new publications this period." in msg.get_body(("plain",)).get_content()
    assert set(_ours(_links(msg))) == {"/unsubscribe", "/manage"}


def test_hostile_names_are_refused_at_input_and_harmless_when_forced_in(loop: Loop, client: TestClient) -> None:
    csrf = _login(client)
    hostile = "Evil\r\nBcc: victim@evil.example"
    with open_database(loop.cfg) as db, db.begin() as s:
        org_id = service.get_organization(s, "Acme Semiconductors").id
    res = client.post(f"/organizations/{org_id}/contacts", data={"email": "x@acme.example", "name": hostile,
                                                                 "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 422 and "control characters" in res.text
    res = client.post("/organizations", data={"name": hostile, "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 422
    with open_database(loop.cfg) as db, db.begin() as s:
        with pytest.raises(service.InvalidText):
            service.set_outlet_identity(s, service.get_outlet(s, "Shanghai outlet"), sender_name=hostile)

    sub_id = _confirm_by_mail(loop, client, csrf)
    with open_database(loop.cfg) as db, db.begin() as s:  # forced past validation, as raw SQL would
        s.execute(text("UPDATE sub_contacts SET name = :n"), {"n": hostile})
        s.execute(text("UPDATE sub_outlets SET sender_name = :n, name = :m"),
                  {"n": hostile, "m": "Outlet\nReply-To: attacker@evil.example"})
    msg = _curated_digest(loop, sub_id)
    assert msg["Bcc"] is None and msg["Reply-To"] is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["reader@acme.example"]
    assert [a.addr_spec for a in msg["From"].addresses] == ["digest@news.example.org"]
    assert not msg.defects


def test_cli_mails_confirmation_resends_unflags_and_sets_outlet_identity(
        loop: Loop, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from patentsift.cli import app
    from patentsift.cli_common import STATE

    for name in ("PATENTSIFT_DATABASE_URL", "PATENTSIFT_HOME", "PATENTSIFT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATENTSIFT_SECRET_KEY", SECRET)
    config = tmp_path / "patentsift.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[smtp]\nhost = "127.0.0.1"\nport = {loop.settings.port}\n'
                      f'security = "none"\nfrom_address = "digest@news.example.org"\nbase_url = "{BASE}"\n')
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, ["--config", str(config), *args])
        assert res.exit_code == code, res.output
        return res.output

    try:
        out = run("outlet", "set", "Shanghai outlet", "--sender-name", "SH patent alerts", "--contact-address",
                  "ip@sh.example")
        assert "SH patent alerts" in out
        assert "control characters" in run("outlet", "set", "Shanghai outlet", "--sender-name", "a\nBcc: x",
                                           code=2)
        out = run("subscription", "add", "--contact", "reader@acme.example", "--profile", "semis",
                  "--send-when-empty")
        assert "confirmation link mailed to reader@acme.example" in out
        sub_id = int(out.split("subscription ")[1].split(":")[0])
        mail = loop.sink.received[-1]
        assert mail["From"].addresses[0].display_name == "SH patent alerts"
        assert "ip@sh.example" in mail.get_body(("plain",)).get_content()
        assert "mailed to" in run("subscription", "resend-confirmation", str(sub_id))
        assert len(loop.sink.received) == 2
        with open_database(loop.cfg) as db, db.begin() as s:
            assert s.get(Subscription, sub_id).send_when_empty is True
            service.flag_contact(s, loop.contact_id, "550 5.1.1 no such user")
        assert "flagged" in run("subscription", "resend-confirmation", str(sub_id), code=1)
        assert "un-flagged (was: 550 5.1.1 no such user)" in run("contact", "unflag", "reader@acme.example")
        assert "was not flagged" in run("contact", "unflag", str(loop.contact_id))
        assert "send when empty: no" in run("subscription", "set", str(sub_id), "--skip-when-empty")
        config.write_text(config.read_text().replace(f"port = {loop.settings.port}", f"port = {free_port()}"))
        out = run("subscription", "resend-confirmation", str(sub_id), code=3)
        assert "not sent" in out
    finally:
        STATE.close()


def test_staff_set_outlet_identity_and_unflag_contacts_in_the_web_app(loop: Loop, client: TestClient) -> None:
    csrf = _login(client)
    with open_database(loop.cfg) as db, db.begin() as s:
        outlet_id = service.get_outlet(s, "Shanghai outlet").id
        service.flag_contact(s, loop.contact_id, "550 5.1.1 no such user")
    page = client.get("/subscriptions")
    assert "上海专利信息推送" in page.text and "Un-flag" in page.text
    res = client.post(f"/outlets/{outlet_id}/identity", data={"sender_name": "SH\r\nBcc: x@evil.example",
                                                               "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 422
    res = client.post(f"/outlets/{outlet_id}/identity", data={
        "sender_name": "SH alerts", "contact_address": "ip@sh.example", "footer_note": "Line one\r\nLine two",
        "csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303
    res = client.post(f"/contacts/{loop.contact_id}/unflag", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303 and "unflagged=" in res.headers["location"]
    api = client.post(f"/api/contacts/{loop.contact_id}/unflag", headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200 and api.json()["flagged"] is False
    sub_id = _confirm_by_mail_as(loop, client, csrf, sender="SH alerts")
    msg = _curated_digest(loop, sub_id)
    assert msg["From"].addresses[0].display_name == "SH alerts"
    body = msg.get_body(("plain",)).get_content()
    assert "Shanghai outlet" in body and "ip@sh.example" in body and "Line two" in body


def _confirm_by_mail_as(loop: Loop, client: TestClient, csrf: str, *, sender: str) -> int:
    res = client.post("/api/subscriptions", json={"contact_id": loop.contact_id, "profiles": ["semis"]},
                      headers={"X-CSRF-Token": csrf})
    assert res.status_code == 201 and res.json()["confirmation_sent"] is True, res.text
    mail = loop.sink.received[-1]
    assert mail["From"].addresses[0].display_name == sender
    url = _ours(_links(mail))["/confirm"][0]
    reader = TestClient(client.app, base_url=BASE)
    page = reader.get(url)
    assert reader.post("/confirm", data={"token": parse_qs(urlsplit(url).query)["token"][0],
                                         "csrf_token": _csrf(page.text)}).status_code == 200
    return res.json()["id"]
