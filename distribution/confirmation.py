"""The double opt-in message: mailed to a contact when a subscription is requested (web, API, CLI) and when staff
resend it; it names the outlet and carries the signed confirm link (distribution/urls.py). The subscription is
active only once the contact has followed the link and pressed the button there (patentsift/web/routes_public.py).

The message is built by distribution/message.py (the same header encoding as digests) and sent with the delivery
room's `SmtpSender`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from distribution import urls
from distribution.delivery import RetryPolicy, SendError, SmtpSender, SmtpSettings
from distribution.i18n import language_of, translate
from distribution.message import address_line, assemble, date_line, header_line, identity_of
from distribution.render import render_template

if TYPE_CHECKING:
    from subscribers.models import Subscription


class ConfirmationNotSent(RuntimeError):
    """The confirmation message could not be mailed; the subscription stays pending (resend later)."""


@dataclass
class ConfirmationMessage:
    recipient: str
    message_id: str
    subject: str
    text: str
    html: str
    data: bytes  # the RFC 5322 message
    confirm_url: str


def confirmation_message(subscription: Subscription, *, settings: SmtpSettings, secret: str, base_url: str | None = None,
                         when: datetime | None = None) -> ConfirmationMessage:
    """The double opt-in message of a (pending) subscription, in its contact's language."""
    contact = subscription.contact
    lang = language_of(contact.language)
    identity = identity_of(subscription)
    link = urls.confirm_url(base_url or settings.base_url, secret, subscription.id)
    frequency = subscription.frequency
    if frequency in ("daily", "weekly", "monthly"):
        frequency = translate(f"confirm.freq.{frequency}", lang)
    ctx = {"t": lambda key: translate(key, lang), "lang": lang, "identity": identity, "confirm_url": link,
           "intro": translate("confirm.intro", lang, outlet=identity.name, email=contact.email),
           "profiles": ", ".join(subscription.profile_names or []), "frequency": frequency}
    text = render_template("confirmation.txt", ctx)
    html = render_template("confirmation.html", ctx)
    subject = translate("confirm.subject", lang, outlet=identity.name)
    message_id = make_msgid(f"confirm.{subscription.id}", "patentsift")
    head = [
        header_line("Subject", subject),
        address_line("From", identity.display_name, settings.from_address),
        address_line("To", contact.name or "", contact.email),
        address_line("Reply-To", "", settings.reply_to) if settings.reply_to else b"",
        date_line(when or datetime.now(UTC)),
        header_line("Message-ID", message_id, True),
        header_line("Auto-Submitted", "auto-generated"),
    ]
    return ConfirmationMessage(contact.email, message_id, subject, text, html,
                               assemble(head, text, html, message_id), link)


async def asend_confirmation(session: Session, subscription_id: int, *, settings: SmtpSettings, secret: str,
                             base_url: str | None = None, policy: RetryPolicy | None = None,
                             now: datetime | None = None) -> ConfirmationMessage:
    """Mail the confirmation message of a pending subscription and record when (`confirmation_sent_at`;
    flushed, the caller commits). Transient failures (4xx, lost connection) are retried per `policy`.

    Raises subscribers.service.StateError when the subscription is not pending or its contact is flagged, and
    ConfirmationNotSent when the server did not take the message."""
    from subscribers.service import StateError, get_subscription

    sub = get_subscription(session, subscription_id)
    if sub.status != "pending":
        raise StateError(f"subscription {sub.id} is {sub.status}: only a pending one is waiting for confirmation")
    if sub.contact.flagged:
        raise StateError(f"contact {sub.contact.email} is flagged ({sub.contact.flag_reason}): un-flag it first "
                         f"(patentsift contact unflag {sub.contact.id})")
    msg = confirmation_message(sub, settings=settings, secret=secret, base_url=base_url, when=now)
    policy = policy or RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=1.0)  # someone is waiting
    sender = SmtpSender(settings, 1)
    try:
        for attempt in range(1, policy.max_attempts + 1):
            try:
                await sender.send(settings.from_address, msg.recipient, msg.data)
                break
            except SendError as exc:
                if exc.permanent or attempt == policy.max_attempts:
                    raise ConfirmationNotSent(f"the confirmation message to {msg.recipient} was not sent: {exc}") \
                        from exc
                await asyncio.sleep(policy.delay(attempt))
            except (RuntimeError, OSError) as exc:  # the server or our configuration (DeliveryHalted)
                raise ConfirmationNotSent(f"the confirmation message to {msg.recipient} was not sent: {exc}") \
                    from exc
    finally:
        await sender.close()
    sub.confirmation_sent_at = now or datetime.now(UTC)
    session.flush()
    return msg


def send_confirmation(session: Session, subscription_id: int, *, settings: SmtpSettings, secret: str,
                      base_url: str | None = None, policy: RetryPolicy | None = None) -> ConfirmationMessage:
    """Synchronous `asend_confirmation` (CLI, web routes: no event loop running in the calling thread)."""
    return asyncio.run(asend_confirmation(session, subscription_id, settings=settings, secret=secret,
                                          base_url=base_url, policy=policy))
