"""Every URL a subscriber gets by mail (digests, confirmation messages), built from the public base URL and signed
tokens (pure). The web routes that serve them (patentsift/web/routes_public.py) use the same paths.

| URL                                | served by                     | what a GET does          | what a POST does            |
|------------------------------------|-------------------------------|--------------------------|-----------------------------|
| /unsubscribe?token=…               | unsubscribe (RFC 8058 target) | a page with a button     | unsubscribes (idempotent)   |
| /confirm?token=…                   | double opt-in                 | a page with a button     | activates the subscription  |
| /manage?token=…                    | the subscriber's own page     | the page                 | pause / resume / unsubscribe|
| /feedback?token=…                  | "relevant" / "not relevant"   | a page with a button     | records the judgement       |

A GET never changes anything: mail scanners and link previewers follow every link in a message.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from subscribers.tokens import make_feedback_token, make_token

UNSUBSCRIBE_PATH = "/unsubscribe"
CONFIRM_PATH = "/confirm"
MANAGE_PATH = "/manage"
FEEDBACK_PATH = "/feedback"


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
