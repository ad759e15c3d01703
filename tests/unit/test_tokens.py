"""Subscriber link tokens: signed, expiring, bound to one purpose; and the secret key they are signed with."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from patentsift.config import Config, ConfigError, load_config, load_secret_key
from subscribers.tokens import DAY, InvalidToken, make_token, read_token

SECRET = "a-test-secret-that-is-long-enough-0123456789"


def _reason(secret: str, purpose: str, token: str, max_age: int | None = None) -> str:
    with pytest.raises(InvalidToken) as info:
        read_token(secret, purpose, token, max_age)
    return info.value.reason


def test_round_trip_for_every_purpose() -> None:
    for purpose in ("confirm", "unsubscribe", "manage"):
        token = make_token(SECRET, purpose, 42)
        assert read_token(SECRET, purpose, token) == 42
        assert token.isascii() and " " not in token and "/" not in token  # safe in a URL as is


def test_tampered_token_or_other_key_is_a_bad_signature() -> None:
    token = make_token(SECRET, "confirm", 7)
    payload, ts, sig = token.split(".")
    forged = make_token(SECRET, "confirm", 8).split(".")[0] + f".{ts}.{sig}"  # someone else's id, this signature
    assert _reason(SECRET, "confirm", forged) == "bad-signature"
    # flip the signature's first character: the last one of unpadded base64 carries unused bits, so changing it
    # may decode to the same bytes
    flipped = f"{payload}.{ts}." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert _reason(SECRET, "confirm", flipped) == "bad-signature"
    assert _reason("another-secret-of-another-installation-xyz", "confirm", token) == "bad-signature"
    assert _reason(SECRET, "confirm", "not a token") == "bad-signature"
    assert read_token(SECRET, "confirm", f"  {token}\n") == 7  # pasted with whitespace still works


def test_token_for_one_purpose_is_refused_for_another() -> None:
    token = make_token(SECRET, "manage", 3)
    with pytest.raises(InvalidToken, match="'manage' link, not a 'unsubscribe' link") as info:
        read_token(SECRET, "unsubscribe", token)
    assert info.value.reason == "wrong-purpose"
    assert _reason(SECRET, "confirm", make_token(SECRET, "unsubscribe", 3)) == "wrong-purpose"


def test_expiry_per_purpose_and_explicit_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    issued = int(time.time()) - 20 * DAY
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued)
    old = {p: make_token(SECRET, p, 5) for p in ("confirm", "unsubscribe", "manage")}
    monkeypatch.undo()
    with pytest.raises(InvalidToken, match="expired") as info:
        read_token(SECRET, "confirm", old["confirm"])  # confirm links last 14 days
    assert info.value.reason == "expired"
    assert read_token(SECRET, "manage", old["manage"]) == 5  # 90 days
    assert read_token(SECRET, "unsubscribe", old["unsubscribe"]) == 5  # an old digest's link keeps working
    assert _reason(SECRET, "unsubscribe", old["unsubscribe"], max_age=DAY) == "expired"
    assert read_token(SECRET, "confirm", old["confirm"], max_age=30 * DAY) == 5


def test_unknown_purpose_and_missing_secret_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown token purpose 'delete'"):
        make_token(SECRET, "delete", 1)
    with pytest.raises(ValueError, match="no secret key"):
        make_token("", "confirm", 1)


def test_secret_key_generated_once_private_and_env_overrides(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATENTSIFT_SECRET_KEY", raising=False)
    cfg = Config(data_dir=tmp_path / "home")
    key = load_secret_key(cfg)
    path = tmp_path / "home" / "secret.key"
    assert len(key) >= 32 and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(Config(data_dir=tmp_path / "home")) == key  # stable across runs
    assert load_secret_key(Config(data_dir=tmp_path / "other")) != key
    monkeypatch.setenv("PATENTSIFT_SECRET_KEY", "from-the-environment-" + "x" * 20)
    monkeypatch.setenv("PATENTSIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATENTSIFT_CONFIG", str(tmp_path / "none.toml"))
    assert load_secret_key(load_config()) == "from-the-environment-" + "x" * 20
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        load_secret_key(Config(data_dir=tmp_path / "home"))
