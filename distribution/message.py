"""The messages patentsift mails, as RFC 5322 bytes: digests and confirmation messages (text, or
multipart/alternative text + HTML; UTF-8 bodies in base64).

Header safety: every header value is made into a header by the standard library's email policy
(`email.policy.SMTP`, `email.headerregistry`: addresses are `Address` objects, non-ASCII text becomes RFC 2047
encoded words, lines are folded by the policy) after `header_text` has replaced every control character (CR, LF,
TAB, NUL, the Unicode line and paragraph separators ...) with a space. Input validation (subscribers/service.py)
refuses such values; this is the second line, for values that reach the database some other way: whatever a name
or subject holds, it stays inside its own header and can never start another.

The bodies are written directly (their structure is fixed), several times faster than the email package's
generator; `build_message` parses a message back for callers that want an `email.message.Message`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.headerregistry import Address
from email.message import Message
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from distribution import urls
from distribution.render import FeedbackUrl, OutletIdentity, RenderedDigest, render_digest

if TYPE_CHECKING:
    from distribution.delivery import SmtpSettings
    from distribution.digest import Digest
    from subscribers.models import Subscription

SMTP_POLICY = email_policy.SMTP  # CRLF, lines folded at 78, non-ASCII as RFC 2047 encoded words
# URLs and message ids are never folded inside (a folded or encoded URL breaks List-Unsubscribe): lines up to
# RFC 5322's hard limit
WIDE_POLICY = email_policy.SMTP.clone(max_line_length=998)
# C0 and C1 controls (CR, LF, TAB, NUL, ESC, NEL ...) and the characters str.splitlines also breaks lines at
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def header_text(value: str) -> str:
    """`value` with every control character replaced by a space (and no leading or trailing space)."""
    return _CONTROL.sub(" ", value).strip()


@lru_cache(maxsize=4096)  # subjects and senders repeat across a run's digests
def header_line(name: str, value: str, wide: bool = False) -> bytes:
    """One header, `Name: value` CRLF, made and folded by the email policy from `header_text(value)`."""
    pol = WIDE_POLICY if wide else SMTP_POLICY
    return pol.header_factory(name, header_text(value)).fold(policy=pol).encode("utf-8")


def _ascii_domain(address: str) -> str:
    """`user@例子.公司` -> `user@xn--fsqu00a.xn--55qx5d` (IDNA); anything else as it is."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


@lru_cache(maxsize=4096)
def address_line(name: str, display_name: str, address: str) -> bytes:
    """An address header (From, To, Reply-To) of one mailbox, an `Address` the policy quotes or encodes (the
    domain in IDNA). An address `Address` refuses (a non-ASCII local part, which needs SMTPUTF8, or one forced
    into the database past validation) is still made by the policy from the control-free text, in UTF-8: one
    bad address must not stop a delivery run, and it cannot add a header."""
    display, addr = header_text(display_name), header_text(address)
    try:
        mailbox = Address(display_name=display, addr_spec=_ascii_domain(addr))
        return SMTP_POLICY.header_factory(name, [mailbox]).fold(policy=SMTP_POLICY).encode("utf-8")
    except ValueError:  # email.errors.HeaderDefect, e.g. NonASCIILocalPartDefect
        addr = re.sub(r'[<>,;:"()\[\]\\\s]', "", addr)  # one mailbox (no list, group or comment syntax)
        quoted = display.replace("\\", "\\\\").replace('"', '\\"')
        pol = email_policy.SMTPUTF8
        return pol.header_factory(name, f'"{quoted}" <{addr}>' if display else addr).fold(
            policy=pol).encode("utf-8")


def date_line(when: datetime) -> bytes:
    return SMTP_POLICY.header_factory("Date", when).fold(policy=SMTP_POLICY).encode("ascii")


def text_part(text: str, subtype: str) -> bytes:
    """A text/<subtype> body part in UTF-8, base64 (its lines can never look like a boundary, which has `=_`)."""
    data = base64.b64encode(text.encode())
    return b"".join([f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                     .encode(), *(data[i:i + 76] + b"\r\n" for i in range(0, len(data), 76))])


def assemble(head: Sequence[bytes], text: str, html: str | None, message_id: str) -> bytes:
    """Headers + body: text/plain alone when there is no HTML, else multipart/alternative (text, then HTML)."""
    head = [*head, header_line("MIME-Version", "1.0")]
    if html is None:
        return b"".join([*head, text_part(text, "plain")])
    boundary = ("=_" + hashlib.sha1(message_id.encode()).hexdigest()).encode()
    content_type = header_line("Content-Type", f'multipart/alternative; boundary="{boundary.decode()}"')
    return b"".join([*head, content_type, b"\r\n",
                     b"--", boundary, b"\r\n", text_part(text, "plain"),
                     b"--", boundary, b"\r\n", text_part(html, "html"),
                     b"--", boundary, b"--\r\n"])


# --- digests ------------------------------------------------------------------------------------------------------
@dataclass
class Links:
    unsubscribe_url: str  # https link with a signed token; also the RFC 8058 one-click POST target
    unsubscribe_mailto: str
    manage_url: str
    feedback: FeedbackUrl | None = None  # (review item id, relevant) -> signed link


def subscriber_links(settings: SmtpSettings, secret: str, subscription_id: int) -> Links:
    """Every link a digest of this subscription carries (distribution/urls.py)."""
    base = settings.base_url
    mailbox = settings.unsubscribe_mailto or settings.from_address
    return Links(urls.unsubscribe_url(base, secret, subscription_id),
                 urls.unsubscribe_mailto(mailbox, secret, subscription_id),
                 urls.manage_url(base, secret, subscription_id),
                 partial(urls.feedback_url, base, secret, subscription_id))


def identity_of(subscription: Subscription) -> OutletIdentity:
    """The identity of the outlet serving a subscription's contact (its name, sender name, footer)."""
    org = getattr(getattr(subscription, "contact", None), "organization", None)
    outlet = getattr(org, "outlet", None)
    if outlet is None:
        return OutletIdentity()
    return OutletIdentity(name=outlet.name, sender_name=getattr(outlet, "sender_name", "") or "",
                          contact_address=getattr(outlet, "contact_address", "") or "",
                          footer_note=getattr(outlet, "footer_note", "") or "")


def message_bytes(rendered: RenderedDigest, *, to: str, to_name: str = "", settings: SmtpSettings,
                  message_id: str, links: Links, when: datetime | None = None,
                  from_name: str | None = None) -> bytes:
    """A digest as an RFC 5322 message, with List-Unsubscribe (RFC 8058 one-click). `from_name`: the sender's
    display name (default `settings.from_name`; digests use the outlet's, see `digest_message`)."""
    head = [
        header_line("Subject", rendered.subject),
        address_line("From", settings.from_name if from_name is None else from_name, settings.from_address),
        address_line("To", to_name, to),
        address_line("Reply-To", "", settings.reply_to) if settings.reply_to else b"",
        date_line(when or datetime.now(UTC)),
        header_line("Message-ID", message_id, True),
        header_line("List-Unsubscribe", f"<{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>", True),
        header_line("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        header_line("Auto-Submitted", "auto-generated"),
    ]
    return assemble(head, rendered.text, rendered.html, message_id)


def build_message(rendered: RenderedDigest, *, to: str, to_name: str = "", settings: SmtpSettings,
                  message_id: str, links: Links, when: datetime | None = None,
                  from_name: str | None = None) -> Message:
    """`message_bytes` parsed back into an email.message.Message (previews, tests)."""
    return message_from_bytes(message_bytes(rendered, to=to, to_name=to_name, settings=settings,
                                            message_id=message_id, links=links, when=when, from_name=from_name))


def render_for(digest: Digest, subscription: Subscription, *, settings: SmtpSettings, secret: str,
               links: Links | None = None) -> RenderedDigest:
    """A subscription's digest rendered as it is mailed: its links, feedback links, format and outlet footer."""
    links = links or subscriber_links(settings, secret, subscription.id)
    return render_digest(digest, unsubscribe_url=links.unsubscribe_url, manage_url=links.manage_url,
                         fmt=getattr(subscription, "format", "html"), feedback_url=links.feedback,
                         identity=identity_of(subscription))


def digest_message(subscription: Subscription, digest: Digest, *, settings: SmtpSettings, secret: str, message_id: str,
                   when: datetime | None = None) -> bytes:
    """The serialized digest message of a subscription: to its contact, from the outlet's sender name."""
    contact = subscription.contact
    links = subscriber_links(settings, secret, subscription.id)
    rendered = render_for(digest, subscription, settings=settings, secret=secret, links=links)
    return message_bytes(rendered, to=contact.email, to_name=contact.name or "", settings=settings,
                         message_id=message_id, links=links, when=when,
                         from_name=identity_of(subscription).display_name)
