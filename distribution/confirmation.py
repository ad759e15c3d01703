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
from distribution.message import address_line, assemble, date_line, header_line, identity_of
from distribution.render import render_template

if TYPE_CHECKING:
    from subscribers.models import Subscription

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Please confirm your patent alert subscription — {outlet}",
        "heading": "Please confirm your subscription",
        "intro": "{outlet} has set up patent alerts for {email}. Nothing will be sent to you until you confirm.",
        "profiles": "Topics",
        "frequency": "How often",
        "button": "Confirm subscription",
        "action": "To confirm, open this link and press the button on the page:",
        "ignore": "If you did not expect this message, ignore it: without your confirmation you receive nothing.",
        "contact": "Contact",
        "daily": "daily", "weekly": "weekly", "monthly": "monthly",
    },
    "zh": {
        "subject": "请确认您的专利推送订阅 — {outlet}",
        "heading": "请确认您的订阅",
        "intro": "{outlet}为 {email} 开通了专利推送服务。在您确认之前，我们不会向您发送任何邮件。",
        "profiles": "关注主题",
        "frequency": "推送频率",
        "button": "确认订阅",
        "action": "请打开以下链接，并在页面上点击按钮确认：",
        "ignore": "如果您并未申请此服务，请忽略本邮件：未经确认，您不会收到任何推送。",
        "contact": "联系方式",
        "daily": "每天", "weekly": "每周", "monthly": "每月",
    },
}


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
    lang = "zh" if str(contact.language or "").lower().startswith("zh") else "en"
    t = STRINGS[lang]
    identity = identity_of(subscription)
    link = urls.confirm_url(base_url or settings.base_url, secret, subscription.id)
    ctx = {"t": {**t, "intro": t["intro"].format(outlet=identity.name, email=contact.email)}, "lang": lang,
           "identity": identity, "confirm_url": link, "profiles": ", ".join(subscription.profile_names or []),
           "frequency": t.get(subscription.frequency, subscription.frequency)}
    text = render_template("confirmation.txt", ctx)
    html = render_template("confirmation.html", ctx)
    subject = t["subject"].format(outlet=identity.name)
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
