"""Signed, expiring, purpose-bound tokens for subscriber links (confirm, unsubscribe, manage, feedback), via
itsdangerous.

A token carries the subscription id and its purpose, signed with the service's secret key and timestamped; a
token made for one purpose is refused for another, so a leaked "manage" link cannot unsubscribe and vice versa.
A feedback token also carries the digest item it is about (a review item id) and the judgement (relevant or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PURPOSES = ("confirm", "unsubscribe", "manage", "feedback")
DAY = 24 * 3600
# how long a token is good for when read_token gets no max_age; None: no expiry (an unsubscribe link in an old
# digest must keep working)
DEFAULT_MAX_AGE: dict[str, int | None] = {"confirm": 14 * DAY, "unsubscribe": None, "manage": 90 * DAY,
                                          "feedback": 365 * DAY}
_SALT = "patentsift.subscription"


class InvalidToken(ValueError):
    """A token that cannot be used; `reason` is one of 'bad-signature', 'expired', 'wrong-purpose', 'malformed'."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _serializer(secret: str) -> URLSafeTimedSerializer:
    if not secret:
        raise ValueError("no secret key: set PATENTSIFT_SECRET_KEY or let patentsift create data_dir/secret.key")
    return URLSafeTimedSerializer(secret, salt=_SALT)


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}: use one of {', '.join(PURPOSES)}")


def make_token(secret: str, purpose: str, subscription_id: int) -> str:
    """A URL-safe token for `purpose` on subscription `subscription_id`."""
    _check_purpose(purpose)
    return _serializer(secret).dumps({"p": purpose, "s": int(subscription_id)})


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> int:
    """The subscription id in a valid token for `purpose`; `max_age` seconds (default: DEFAULT_MAX_AGE[purpose]).

    Raises InvalidToken saying why: bad signature (tampered, or another key), expired, or wrong purpose.
    """
    return int(_payload(secret, purpose, token, max_age)["s"])


@dataclass(frozen=True)
class FeedbackClaim:
    """What a feedback link says: subscription `subscription_id` judges digest item `item_id` (relevant or not)."""

    subscription_id: int
    item_id: int
    relevant: bool


def make_feedback_token(secret: str, subscription_id: int, item_id: int, relevant: bool) -> str:
    """A token for one reader judgement: subscription, digest item (review item id), relevant or not."""
    return _serializer(secret).dumps({"p": "feedback", "s": int(subscription_id), "i": int(item_id),
                                      "r": 1 if relevant else 0})


def read_feedback_token(secret: str, token: str, max_age: int | None = None) -> FeedbackClaim:
    """The claim in a valid feedback token; InvalidToken (see read_token) otherwise."""
    payload = _payload(secret, "feedback", token, max_age)
    if not isinstance(payload.get("i"), int) or payload.get("r") not in (0, 1):
        raise InvalidToken("malformed", "the feedback link does not name a digest item")
    return FeedbackClaim(payload["s"], payload["i"], payload["r"] == 1)


def _payload(secret: str, purpose: str, token: str, max_age: int | None) -> dict[str, Any]:
    _check_purpose(purpose)
    age = DEFAULT_MAX_AGE[purpose] if max_age is None else max_age
    try:
        payload: Any = _serializer(secret).loads(token.strip(), max_age=age)
    except SignatureExpired as exc:
        signed = f" (issued {exc.date_signed:%Y-%m-%d %H:%M} UTC)" if exc.date_signed else ""
        raise InvalidToken("expired", f"the {purpose} link has expired{signed}; ask for a new one") from None
    except BadSignature:
        raise InvalidToken("bad-signature", f"the {purpose} link is not valid (damaged, or not issued by this "
                           "service)") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int) or "p" not in payload:
        raise InvalidToken("malformed", f"the {purpose} link does not name a subscription")
    if payload["p"] != purpose:
        raise InvalidToken("wrong-purpose", f"this is a {payload['p']!r} link, not a {purpose!r} link")
    return payload
