"""Every URL a subscriber gets by mail (digests, confirmation messages), built from the public base URL and signed
tokens (pure). The web routes that serve them (patentsift/web/routes_public.py) use the same paths.

| URL                                | served by                     | what a GET does          | what a POST does            |
|------------------------------------|-------------------------------|--------------------------|-----------------------------|
| /unsubscribe?token=…               | unsubscribe (RFC 8058 target) | a page with a button     | unsubscribes (idempotent)   |
| /confirm?token=…                   | double opt-in                 | a page with a button     | activates the subscription  |
| /manage?token=…                    | the subscriber's own page     | the page                 | pause / resume / unsubscribe|
| /feedback?token=…                  | "relevant" / "not relevant"   | a page with a button     | records the judgement       |
| /feeds/profile.atom?token=…        | a profile's Atom feed         | the feed (reads only)    | -                           |

A GET never changes anything: mail scanners and link previewers follow every link in a message.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from subscribers.tokens import make_feedback_token, make_token

UNSUBSCRIBE_PATH = "/unsubscribe"
CONFIRM_PATH = "/confirm"
MANAGE_PATH = "/manage"
FEEDBACK_PATH = "/feedback"
FEED_PATH = "/feeds/profile.atom"
_FEED_SALT = "patentsift-profile-feed"


def _url(base_url: str, path: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def unsubscribe_url(base_url: str, secret: str, subscription_id: int) -> str:
    """The unsubscribe link of a subscription; also the RFC 8058 one-click POST target (List-Unsubscribe)."""
    return _url(base_url, UNSUBSCRIBE_PATH, make_token(secret, "unsubscribe", subscription_id))


def one_click_url(base_url: str, secret: str, subscription_id: int) -> str:
    """Where a mail client POSTs `List-Unsubscribe=One-Click`: the same URL as the unsubscribe link."""
    return unsubscribe_url(base_url, secret, subscription_id)


def unsubscribe_mailto(mailbox: str, secret: str, subscription_id: int) -> str:
    """The List-Unsubscribe mailto alternative: a message to `mailbox` whose subject carries the token."""
    token = make_token(secret, "unsubscribe", subscription_id)
    return f"mailto:{mailbox}?subject={quote('unsubscribe ' + token)}"


def manage_url(base_url: str, secret: str, subscription_id: int) -> str:
    return _url(base_url, MANAGE_PATH, make_token(secret, "manage", subscription_id))


def confirm_url(base_url: str, secret: str, subscription_id: int) -> str:
    """The double opt-in link of a pending subscription."""
    return _url(base_url, CONFIRM_PATH, make_token(secret, "confirm", subscription_id))


def feedback_url(base_url: str, secret: str, subscription_id: int, item_id: int, relevant: bool) -> str:
    """A reader's "relevant" (`relevant=True`) or "not relevant" link for one digest item (a review item id)."""
    return _url(base_url, FEEDBACK_PATH, make_feedback_token(secret, subscription_id, item_id, relevant))


# --- a profile's Atom feed: a long-lived signed token naming the profile (by stored row id and name) -----------
def feed_token(secret: str, profile_id: int, profile_name: str) -> str:
    """The token of a profile's feed: a profile deleted and re-created under the same name gets a new one."""
    return URLSafeSerializer(secret, salt=_FEED_SALT).dumps([profile_id, profile_name])


def read_feed_token(secret: str, token: str) -> tuple[int, str] | None:
    """(profile id, name) a feed token names, or None when it was not signed with `secret` (tampered)."""
    try:
        value = URLSafeSerializer(secret, salt=_FEED_SALT).loads(token)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        return None
    return value[0], value[1]


def feed_url(base_url: str, secret: str, profile_id: int, profile_name: str) -> str:
    """Where a feed reader fetches a profile's latest matched documents as Atom."""
    return _url(base_url, FEED_PATH, feed_token(secret, profile_id, profile_name))
