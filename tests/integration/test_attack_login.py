"""Attacks on logins and sessions through the real ASGI app (issue 14, points 1-3 and the argon2 pool of 5):
captured cookies after logout, sessions outliving a password change or the staff user, idle and absolute
lifetimes, throttle evasion by address spellings and X-Forwarded-For, login timing, argon2 on the event loop."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from harvest.ingest import parse_path
from index.embedded import EmbeddedIndex
from patentsift.config import Config, ConfigError
from patentsift.db import open_database
from patentsift.web import security
from patentsift.web.app import SESSION_COOKIE, create_app
from patentsift.web.security import ADDRESS_LIMIT, LoginThrottle, forwarded_client, parse_trusted_proxies
from patentsift.web.sessions import ABSOLUTE_LIFETIME, IDLE_TIMEOUT, WebSession
from subscribers import service
from subscribers.models import StaffUser
from tests.conftest import SAMPLE_DATA

PASSWORD = "correct horse battery"
_emails = itertools.count(1)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    data_dir: Path = tmp_path_factory.mktemp("attack-login")
    cfg = Config(data_dir=data_dir, secret_key="k" * 48)
    with EmbeddedIndex(cfg.index_path) as index:
        assert not index.upsert(list(parse_path(SAMPLE_DATA / "uspto"))).failed
    with open_database(cfg) as db, db.begin() as s:
        east = service.create_outlet(s, "East")
        service.create_staff(s, east.id, "staff@east.example", PASSWORD, name="Ada")
        service.create_staff(s, east.id, "other@east.example", PASSWORD, name="Bo")
    return cfg


@pytest.fixture
def client(cfg: Config) -> Iterator[TestClient]:
    with TestClient(create_app(cfg, testing=True)) as c:  # a fresh app: fresh throttle
        yield c


def new_staff(cfg: Config, password: str = PASSWORD) -> str:
    """A staff user of its own for a test that changes it; returns the address."""
    email = f"user{next(_emails)}@east.example"
    with open_database(cfg) as db, db.begin() as s:
        service.create_staff(s, 1, email, password)
    return email


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


def login(client: TestClient, email: str = "staff@east.example", password: str = PASSWORD) -> httpx.Response:
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       follow_redirects=False)


def logged_in(cfg: Config, email: str = "staff@east.example", password: str = PASSWORD) -> TestClient:
    c = TestClient(create_app(cfg, testing=True))
    assert login(c, email, password).status_code == 303
    return c


def with_cookie(cfg: Config, cookie: str, app: object = None) -> TestClient:
    """Another browser (the attacker's) holding a copy of a session cookie."""
    c = TestClient(app or create_app(cfg, testing=True))
    c.cookies.set(SESSION_COOKIE, cookie)
    return c


def update_staff(cfg: Config, email: str, **values: object) -> None:
    with open_database(cfg) as db, db.begin() as s:
        user = s.query(StaffUser).filter_by(email=email).one()
        for key, value in values.items():
            setattr(user, key, value)


# --- 1. server-side sessions --------------------------------------------------------------------------------
def test_a_cookie_captured_before_logout_is_dead_after_it(cfg: Config, client: TestClient) -> None:
    assert login(client).status_code == 303
    captured = client.cookies[SESSION_COOKIE]
    assert with_cookie(cfg, captured).get("/api/search?q=glove").status_code == 200  # the copy works ...
    page = client.get("/search")
    assert client.post("/logout", data={"csrf_token": csrf_from(page.text)},
                       follow_redirects=False).status_code == 303
    thief = with_cookie(cfg, captured)
    assert thief.get("/api/search?q=glove").status_code == 401  # ... until the owner logs out
    assert thief.get("/search", follow_redirects=False).status_code == 303
    thief = with_cookie(cfg, captured)
    thief.get("/lang/en", follow_redirects=False)  # re-signs the cookie: that revives nothing
    assert thief.get("/api/search").status_code == 401


def test_a_signed_cookie_of_the_old_kind_logs_no_one_in(cfg: Config, client: TestClient) -> None:
    """Before, the signed cookie {"uid": 1} was the whole session (one leaked or kept copy worked for ever). Now
    the cookie only names a server-side session row."""
    import json
    from base64 import b64decode, b64encode

    from itsdangerous import TimestampSigner

    signer = TimestampSigner(str(cfg.secret_key))
    assert login(client).status_code == 303
    real = json.loads(b64decode(signer.unsign(client.cookies[SESSION_COOKIE])))  # the format is understood
    assert set(real) == {"sid", "csrf"} and "uid" not in real
    old_kind = signer.sign(b64encode(json.dumps({"uid": 1, "csrf": "x"}).encode())).decode()
    assert with_cookie(cfg, old_kind).get("/api/search").status_code == 401


def test_a_password_change_ends_every_session_of_the_user(cfg: Config) -> None:
    email = new_staff(cfg)
    laptop, phone = logged_in(cfg, email), logged_in(cfg, email)
    other = logged_in(cfg, "other@east.example")
    update_staff(cfg, email, password_hash=service.hash_password("a brand new passphrase"))
    assert laptop.get("/api/search").status_code == 401
    assert phone.get("/api/search").status_code == 401
    assert other.get("/api/search").status_code == 200  # nobody else is logged out
    assert login(TestClient(create_app(cfg, testing=True)), email).status_code == 400
    assert logged_in(cfg, email, "a brand new passphrase").get("/api/search").status_code == 200


def test_deactivating_or_removing_a_staff_user_ends_their_sessions(cfg: Config) -> None:
    email = new_staff(cfg)
    browser = logged_in(cfg, email)
    cookie = browser.cookies[SESSION_COOKIE]
    update_staff(cfg, email, active=False)
    assert browser.get("/api/search").status_code == 401
    update_staff(cfg, email, active=True)  # re-activated: the old session stays dead
    assert with_cookie(cfg, cookie).get("/api/search").status_code == 401

    email = new_staff(cfg)
    browser = logged_in(cfg, email)
    with open_database(cfg) as db, db.begin() as s:
        user = s.query(StaffUser).filter_by(email=email).one()
        assert s.query(WebSession).filter_by(user_id=user.id).count() == 1
        s.delete(user)
    assert browser.get("/api/search").status_code == 401
    with open_database(cfg) as db, db.begin() as s:
        assert s.query(WebSession).filter(~WebSession.user_id.in_(s.query(StaffUser.id))).count() == 0


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def test_sessions_have_an_idle_and_an_absolute_lifetime(cfg: Config) -> None:
    app = create_app(cfg, testing=True)
    clock = Clock()
    app.state.sessions.clock = clock
    c = TestClient(app)
    assert login(c).status_code == 303
    step = IDLE_TIMEOUT - timedelta(minutes=1)
    clock.advance(step)
    assert c.get("/api/search").status_code == 200  # used within the idle time: it goes on
    clock.advance(step)
    assert c.get("/api/search").status_code == 200
    clock.advance(IDLE_TIMEOUT + timedelta(seconds=1))
    assert c.get("/api/search").status_code == 401  # idle too long

    assert login(c).status_code == 303
    started = clock.now
    while clock.now - started < ABSOLUTE_LIFETIME - step:
        clock.advance(step)
        assert c.get("/api/search").status_code == 200
    clock.advance(ABSOLUTE_LIFETIME - (clock.now - started))
    assert c.get("/api/search").status_code == 401  # busy all along, but the absolute lifetime is over


def test_changing_the_language_does_not_extend_a_session(cfg: Config) -> None:
    app = create_app(cfg, testing=True)
    clock = Clock()
    app.state.sessions.clock = clock
    c = TestClient(app)
    assert login(c).status_code == 303
    for _ in range(3):  # 3 x 25 minutes of /lang, no other request: idle all the same
        clock.advance(timedelta(minutes=25))
        assert c.get("/lang/en", follow_redirects=False).status_code == 303
    assert c.get("/api/search").status_code == 401


# --- 2. the login throttle ----------------------------------------------------------------------------------
SPELLINGS = ["STAFF@EAST.EXAMPLE", "staff@ｅａｓｔ.example", "staff@east。example", "Staff@East．Example",
             "staff@EAST.example", " staff@east.example "]


def test_spellings_of_one_address_share_one_throttle(client: TestClient) -> None:
    for spelling in SPELLINGS[:5]:
        assert login(client, spelling, "wrong password!").status_code == 400
    res = login(client, SPELLINGS[5])  # the right password, through yet another spelling
    assert res.status_code == 429 and int(res.headers["retry-after"]) > 0
    assert login(client, "other@east.example").status_code == 303  # another account is not blocked


def small_address_limit(app: FastAPI) -> FastAPI:
    """The app with a per-address limit of LIMIT (the real one, ADDRESS_LIMIT, works alike: fewer argon2 runs)."""
    assert ADDRESS_LIMIT > LIMIT
    app.state.login_throttle = LoginThrottle(address_limit=LIMIT)
    return app


LIMIT = 4


def test_one_client_address_is_throttled_across_accounts(cfg: Config) -> None:
    app = small_address_limit(create_app(cfg, testing=True))
    attacker = TestClient(app, client=("203.0.113.7", 40000))
    for i in range(LIMIT):  # password spraying: one try per account, many accounts
        assert login(attacker, f"victim{i}@east.example", PASSWORD).status_code == 400
    assert login(attacker).status_code == 429
    neighbour = TestClient(app, client=("198.51.100.9", 40000))
    assert login(neighbour).status_code == 303  # the throttle is the attacker's, not everyone's


def spray(app: object, peer: str, forwarded: list[str]) -> list[int]:
    c = TestClient(app, client=(peer, 40000))  # type: ignore[arg-type]
    codes = []
    for i, xff in enumerate(forwarded):
        token = csrf_from(c.get("/login").text)
        codes.append(c.post("/login", data={"email": f"victim{i}@east.example", "password": PASSWORD,
                                             "csrf_token": token},
                            headers={"X-Forwarded-For": xff}, follow_redirects=False).status_code)
    return codes


def test_x_forwarded_for_counts_only_from_a_configured_proxy(cfg: Config) -> None:
    rotating = [f"192.0.2.{i}" for i in range(LIMIT + 1)]
    # default: no trusted proxy, not even 127.0.0.1: a made-up X-Forwarded-For changes nothing
    assert spray(small_address_limit(create_app(cfg, testing=True)), "127.0.0.1", rotating)[-1] == 429
    proxied = Config(data_dir=cfg.data_dir, secret_key=cfg.secret_key, trusted_proxies=["10.0.0.0/8"])
    app = small_address_limit(create_app(proxied, testing=True))
    assert spray(app, "127.0.0.1", rotating)[-1] == 429  # not a configured proxy
    assert spray(app, "10.1.2.3", rotating) == [400] * len(rotating)  # the proxy's clients are told apart
    # behind the proxy, the client's own X-Forwarded-For claims are ignored: the proxy's last entry counts
    spoofed = [f"192.0.2.{i}, 198.51.100.1" for i in range(LIMIT + 1)]
    assert spray(app, "10.1.2.3", spoofed)[-1] == 429


def test_client_address_rules() -> None:
    trusted = parse_trusted_proxies(["10.0.0.0/8", "::1"])
    assert forwarded_client("10.0.0.5", "1.2.3.4, 5.6.7.8", trusted) == "5.6.7.8"
    assert forwarded_client("10.0.0.5", "1.2.3.4, 5.6.7.8, 10.0.0.9", trusted) == "5.6.7.8"
    assert forwarded_client("::1", "2001:db8::1", trusted) == "2001:db8::1"
    assert forwarded_client("8.8.8.8", "1.2.3.4", trusted) == "8.8.8.8"
    assert forwarded_client("10.0.0.5", None, trusted) == "10.0.0.5"
    assert forwarded_client("10.0.0.5", "1.2.3.4", ()) == "10.0.0.5"
    with pytest.raises(ValueError, match="'proxy.example' is not an IP address"):
        parse_trusted_proxies(["proxy.example"])


def test_a_bad_trusted_proxies_setting_is_a_config_error(cfg: Config) -> None:
    bad = Config(data_dir=cfg.data_dir, secret_key=cfg.secret_key, trusted_proxies=["localhost"])
    with pytest.raises(ConfigError, match="trusted_proxies"):
        create_app(bad, testing=True)


# --- 3. equal work on every login path ----------------------------------------------------------------------
def test_every_login_path_costs_exactly_one_argon2_verification(cfg: Config, client: TestClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    inactive = new_staff(cfg)
    update_staff(cfg, inactive, active=False)
    calls: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str, password: str) -> bool:  # noqa: A002
        calls.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    paths = {"unknown address": ("nobody@east.example", PASSWORD, 400),
             "not an address": ("not an address", PASSWORD, 400),
             "wrong password": ("staff@east.example", "wrong password!", 400),
             "inactive user": (inactive, PASSWORD, 400),
             "right password": ("staff@east.example", PASSWORD, 303)}
    hashes = {}
    for name, (email, password, status) in paths.items():
        calls.clear()
        with TestClient(create_app(cfg, testing=True)) as c:
            assert login(c, email, password).status_code == status, name
        assert len(calls) == 1, f"{name}: {len(calls)} argon2 verifications"
        hashes[name] = calls[0]
    # the dummy hash an unknown address is checked against costs what a real one does: the same parameters
    params = {name: re.sub(r"\$[^$]*\$[^$]*$", "", h) for name, h in hashes.items()}
    assert len(set(params.values())) == 1, params


# --- 5. argon2 in a bounded pool, off the event loop ---------------------------------------------------------
def test_parallel_logins_hash_in_a_bounded_pool_off_the_event_loop(cfg: Config,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_verify = PasswordHasher.verify
    lock = threading.Lock()
    running, peak, threads = [0], [0], set()

    def observed(self: PasswordHasher, hash: str, password: str) -> bool:  # noqa: A002
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            threads.add(threading.current_thread().name)
        try:
            time.sleep(0.05)  # long enough for parallel logins to overlap
            return real_verify(self, hash, password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(PasswordHasher, "verify", observed)
    app = create_app(cfg, testing=True)

    async def attack() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            token = csrf_from((await c.get("/login")).text)
            loop_thread = threading.current_thread().name
            logins = [c.post("/login", data={"email": f"user{i}@east.example", "password": "wrong password!",
                                             "csrf_token": token}) for i in range(16)]
            codes = [r.status_code for r in await asyncio.gather(*logins)]
            assert loop_thread not in threads
            return codes

    codes = asyncio.run(attack())
    assert codes == [400] * 16
    assert threads and all(name.startswith("password") for name in threads), threads
    assert 1 <= peak[0] <= security.PASSWORD_WORKERS
