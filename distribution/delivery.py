"""Send digests by SMTP (aiosmtplib), exactly once per subscription and period.

The protocol, per digest:
1. a Delivery row keyed `f"{subscription_id}:{period_key}"` is committed with its items and a deterministic
   Message-ID before anything is sent; a row already 'sent' (or 'failed_permanent') is never sent again;
2. the row is marked 'sending' (committed) before the SMTP transaction; right after the server's 250 to DATA it is
   marked 'sent' and its items recorded in dist_sent_items, in one committed transaction;
3. 4xx replies and lost connections are retried with exponential backoff; a 5xx marks it 'failed_permanent' and
   flags the contact (no more retries); rows left 'sending' or 'failed_transient' (a crash, retries used up) are
   sent again by the next run, with the SAME Message-ID and the same items.

The remaining window: if the process dies after the server accepted DATA but before step 2's commit, the next
run sends that digest again. SMTP cannot close this window (the server's acceptance and our commit are not one
transaction); it is a few milliseconds wide, and the duplicate carries the same Message-ID, which mail stores and
clients use to drop duplicates.

Throughput: step 1 commits the rows of a chunk of subscriptions at once (read in bulk), the digests are rendered
while earlier ones are being sent (a bounded queue feeds `concurrency` workers, each keeping its SMTP connection
open), and the commits of steps 2 that concurrent workers ask for in the same event-loop turn are one COMMIT
(`GroupCommit`): a 'sent' commit waits at most one loop turn, so the window above stays a few milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import Header
from email.message import Message
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from distribution.digest import Digest, DocumentCache, DocumentSource, build_digest, digest_inputs
from distribution.models import Delivery, SentItem
from distribution.render import RenderedDigest, render_digest
from index.base import Index

UNFINISHED = ("pending", "sending", "failed_transient")
FINAL = ("sent", "failed_permanent")
PREPARE_CHUNK = 64  # subscriptions whose Delivery rows are read, created and committed together


@dataclass
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    from_address: str = "patentsift@localhost"
    from_name: str = "patentsift"
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    timeout: float = 30.0

    @classmethod
    def from_config(cls, smtp: Any) -> SmtpSettings:
        """From patentsift.config.SmtpConfig (which reads username/password from the environment)."""
        return cls(host=smtp.host, port=smtp.port, security=smtp.security, username=smtp.username,
                   password=smtp.password, from_address=smtp.from_address, reply_to=smtp.reply_to,
                   unsubscribe_mailto=smtp.unsubscribe_mailto, base_url=smtp.base_url, timeout=smtp.timeout)


@dataclass
class RetryPolicy:
    max_attempts: int = 5  # per run; what is left over stays 'failed_transient' for the next run
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before retry number `attempt` (1-based)."""
        d = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return d * (0.5 + random.random() / 2)


class SendError(Exception):
    """A failed SMTP transaction: `permanent` for a 5xx reply, otherwise (4xx, connection lost) worth retrying."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


# --- pure parts -----------------------------------------------------------------------------------------------
def idempotency_key(subscription_id: int, period_key: str) -> str:
    return f"{subscription_id}:{period_key}"


def message_id_for(subscription_id: int, period_key: str) -> str:
    """Deterministic Message-ID of one digest, e.g. `<digest.7.weekly-2026-W48.1f2e3d4c5b6a@patentsift>`."""
    digest = hashlib.sha256(idempotency_key(subscription_id, period_key).encode()).hexdigest()[:12]
    period = re.sub(r"[^A-Za-z0-9.-]+", "-", period_key).strip("-")
    return f"<digest.{subscription_id}.{period}.{digest}@patentsift>"


@dataclass
class Links:
    unsubscribe_url: str  # https link with a signed token (one-click, RFC 8058)
    unsubscribe_mailto: str
    manage_url: str


def subscriber_links(settings: SmtpSettings, secret: str, subscription_id: int) -> Links:
    from subscribers.tokens import make_token

    base = settings.base_url.rstrip("/")
    unsub = make_token(secret, "unsubscribe", subscription_id)
    manage = make_token(secret, "manage", subscription_id)
    mailbox = settings.unsubscribe_mailto or settings.from_address
    return Links(f"{base}/unsubscribe?{urlencode({'token': unsub})}",
                 f"mailto:{mailbox}?subject={quote('unsubscribe ' + unsub)}",
                 f"{base}/manage?{urlencode({'token': manage})}")


def _header(name: str, value: str, width: int = 78) -> bytes:
    """One header line: ASCII folded at spaces within `width` where it can be, anything else encoded (RFC 2047)
    and folded by email.header."""
    if not value.isascii():
        return _encoded_header(name, value)
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > width and line.strip(" :") != name:
            lines.append(line)
            line = ""
        line += " " + word
    return "\r\n".join([*lines, line + "\r\n"]).encode()


@lru_cache(maxsize=1024)  # subjects repeat across a run's digests
def _encoded_header(name: str, value: str) -> bytes:
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=chr(13) + chr(10))}\r\n".encode()


def _text_part(text: str, subtype: str) -> bytes:
    """A text/<subtype> body part in UTF-8, base64 (its lines can never look like a boundary, which has `=_`)."""
    data = base64.b64encode(text.encode())
    return b"".join([f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                     .encode(), *(data[i:i + 76] + b"\r\n" for i in range(0, len(data), 76))])


def message_bytes(rendered: RenderedDigest, *, to: str, to_name: str = "", settings: SmtpSettings,
                  message_id: str, links: Links, when: datetime | None = None) -> bytes:
    """The digest as an RFC 5322 message: multipart/alternative (text + HTML), or text only when the digest has
    no HTML; with List-Unsubscribe (RFC 8058 one-click). Written directly (its structure is fixed), several times
    faster than the email package's generator; `build_message` parses it back for callers that want a Message."""
    head = [
        _header("Subject", rendered.subject),
        _header("From", formataddr((settings.from_name, settings.from_address), "utf-8")),
        _header("To", formataddr((to_name, to), "utf-8") if to_name else to),
        _header("Reply-To", settings.reply_to) if settings.reply_to else b"",
        _header("Date", format_datetime(when or datetime.now(UTC))),
        _header("Message-ID", message_id),
        _header("List-Unsubscribe", f"<{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>"),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nAuto-Submitted: auto-generated\r\n",
        b"MIME-Version: 1.0\r\n",
    ]
    if rendered.html is None:
        return b"".join([*head, _text_part(rendered.text, "plain")])
    boundary = ("=_" + hashlib.sha1(message_id.encode()).hexdigest()).encode()
    return b"".join([*head, b'Content-Type: multipart/alternative; boundary="', boundary, b'"\r\n\r\n',
                     b"--", boundary, b"\r\n", _text_part(rendered.text, "plain"),
                     b"--", boundary, b"\r\n", _text_part(rendered.html, "html"),
                     b"--", boundary, b"--\r\n"])


def build_message(rendered: RenderedDigest, *, to: str, to_name: str = "", settings: SmtpSettings,
                  message_id: str, links: Links, when: datetime | None = None) -> Message:
    """`message_bytes` parsed back into an email.message.Message (previews, tests)."""
    return message_from_bytes(message_bytes(rendered, to=to, to_name=to_name, settings=settings,
                                            message_id=message_id, links=links, when=when))


# --- SMTP -------------------------------------------------------------------------------------------------------
def _classify(exc: BaseException) -> SendError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = exc.recipients[0].code
        return SendError(f"{code} {exc.recipients[0].message}", permanent=500 <= code < 600, code=code)
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code > 0:
        return SendError(f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600, code=exc.code)
    return SendError(f"{type(exc).__name__}: {exc}", permanent=False)


class SmtpSender:
    """SMTP transactions over reused connections; callers hold `semaphore` (at most `concurrency` at once)."""

    def __init__(self, settings: SmtpSettings, concurrency: int = 8) -> None:
        self.settings = settings
        self.semaphore = asyncio.Semaphore(concurrency)
        self._idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout, use_tls=s.security == "tls",
                                 start_tls=True if s.security == "starttls" else False)
        await client.connect()
        if s.username:
            await client.login(s.username, s.password or "")
        return client

    async def send(self, sender: str, recipient: str, message: Message | bytes) -> None:
        """One SMTP transaction; returns once the server accepted the message (250 after DATA)."""
        data = message if isinstance(message, bytes) else message.as_bytes()
        client = None
        try:
            client = self._idle.pop() if self._idle else await self._connect()
            await client.sendmail(sender, [recipient], data)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if client is not None:
                client.close()  # never reuse a connection after a failure
            raise _classify(exc) from exc
        self._idle.append(client)

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


# --- the exactly-once protocol -----------------------------------------------------------------------------------
@dataclass
class Job:
    """One digest ready to send: its Delivery row, recipient, message (serialized once) and the item keys it
    carries."""

    delivery_id: int
    subscription_id: int
    contact_id: int | None
    recipient: str
    message: bytes
    keys: list[str]
    row: Delivery | None = field(default=None, repr=False)  # keeps it in the Session's (weak) identity map


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)  # idempotency keys
    failed_permanent: list[str] = field(default_factory=list)
    failed_transient: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already final, nothing to send, contact flagged

    def merge(self, other: DeliveryReport) -> None:
        for name in ("sent", "failed_permanent", "failed_transient", "skipped"):
            getattr(self, name).extend(getattr(other, name))


class GroupCommit:
    """One COMMIT for every task sharing `session` that asks for one in the same event-loop turn. Each task makes
    its changes before it awaits `commit()`, so whichever COMMIT runs first covers them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._due: asyncio.Future[None] | None = None

    async def commit(self) -> None:
        if self._due is None:
            loop = asyncio.get_running_loop()
            self._due = loop.create_future()
            loop.call_soon(self._run, self._due)
        await asyncio.shield(self._due)  # one waiter cancelled does not cancel the others' commit

    def _run(self, due: asyncio.Future[None]) -> None:
        self._due = None
        try:
            self.session.commit()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter
            due.set_exception(exc)
        else:
            due.set_result(None)


def reserve(session: Session, pairs: Sequence[tuple[Any, str]], index: Index | DocumentSource, *,
            now: datetime | None = None, report: DeliveryReport) -> list[tuple[Delivery, Any, Digest]]:
    """Step 1 for a chunk of (subscription, period_key) pairs: find or create (and commit, once) their Delivery
    rows and build their digests; what has nothing to send (already sent, permanently failed, no items, contact
    flagged or subscription not active) goes to `report.skipped`."""
    from subscribers.models import Contact

    by_key = {idempotency_key(sub.id, pk): (sub, pk) for sub, pk in pairs}
    rows = {r.idempotency_key: r for r in session.scalars(
        select(Delivery).where(Delivery.idempotency_key.in_(list(by_key))))}
    _contacts = list(session.scalars(select(Contact).where(  # read together; `sub.contact` then finds them
        Contact.id.in_({sub.contact_id for sub, _ in by_key.values()}))))
    inputs = digest_inputs(session, [sub.id for k, (sub, _) in by_key.items() if k not in rows])
    out: list[tuple[Delivery, Any, Digest]] = []
    created = False
    for key, (sub, pk) in by_key.items():
        row = rows.get(key)
        if (row is not None and row.status in FINAL) or sub.contact.flagged or (
                row is None and sub.status != "active"):
            report.skipped.append(key)
            continue
        if row is None:
            digest = build_digest(session, sub, pk, index, inputs=inputs[sub.id])
            if not len(digest):
                report.skipped.append(key)
                continue
            row = Delivery(subscription_id=sub.id, period_key=pk, idempotency_key=key,
                           message_id=message_id_for(sub.id, pk), status="pending", item_ids=digest.review_ids,
                           created_at=now or datetime.now(UTC))
            session.add(row)
            inputs[sub.id].reserved.update(digest.review_ids)  # another period of the same subscription here
            created = True
        else:
            digest = build_digest(session, sub, pk, index, item_ids=row.item_ids)
        out.append((row, sub, digest))
    if created:
        session.commit()  # the rows (and their items, reserved) exist before anything is sent
    return out


def prepare(session: Session, subscription: Any, period_key: str, index: Index | DocumentSource, *,
            settings: SmtpSettings, secret: str, now: datetime | None = None,
            report: DeliveryReport | None = None) -> Job | None:
    """Create (or find) the Delivery row of one subscription and period and build its message; None when there
    is nothing to send (see `reserve`)."""
    ready = reserve(session, [(subscription, period_key)], index, now=now,
                    report=report if report is not None else DeliveryReport())
    return make_job(*ready[0], settings=settings, secret=secret, now=now) if ready else None


def make_job(row: Delivery, subscription: Any, digest: Digest, *, settings: SmtpSettings, secret: str,
             now: datetime | None) -> Job:
    """Render a reserved digest and serialize its message."""
    contact = subscription.contact
    links = subscriber_links(settings, secret, subscription.id)
    rendered = render_digest(digest, unsubscribe_url=links.unsubscribe_url, manage_url=links.manage_url,
                             fmt=subscription.format)
    msg = message_bytes(rendered, to=contact.email, to_name=contact.name, settings=settings,
                        message_id=row.message_id, links=links, when=now)
    keys = list(dict.fromkeys(k for item in digest.items for k in item.keys))
    return Job(row.id, subscription.id, contact.id, contact.email, msg, keys, row)


def _record_sent(session: Session, row: Delivery, keys: Sequence[str], now: datetime) -> None:
    """Step 2's changes after the server's 250 (committed by the caller)."""
    row.status, row.sent_at, row.last_error = "sent", now, None
    if keys:
        values = [{"subscription_id": row.subscription_id, "item_key": k, "delivery_id": row.id, "sent_at": now}
                  for k in keys]
        if session.get_bind().dialect.name == "sqlite":  # executemany of one cached statement; the rows'
            with session.no_autoflush:  # UPDATEs are flushed together at the (group) commit
                session.execute(sqlite_insert(SentItem).on_conflict_do_nothing(), values)
        else:
            have = set(session.scalars(select(SentItem.item_key).where(
                SentItem.subscription_id == row.subscription_id, SentItem.item_key.in_(list(keys)))))
            session.add_all(SentItem(**v) for v in values if v["item_key"] not in have)


async def send_job(session: Session, sender: SmtpSender, job: Job, settings: SmtpSettings, policy: RetryPolicy,
                   report: DeliveryReport, on_sent: Callable[[Job], None] | None = None,
                   committer: GroupCommit | None = None) -> None:
    """Send one digest following the protocol in the module docstring."""
    from subscribers.models import Contact

    commit = (committer or GroupCommit(session)).commit
    row = session.get(Delivery, job.delivery_id)
    assert row is not None
    for attempt in range(1, policy.max_attempts + 1):
        if row.status in FINAL:  # another worker (or run) finished it
            report.skipped.append(row.idempotency_key)
            return
        try:
            async with sender.semaphore:
                row.status, row.attempts = "sending", row.attempts + 1
                await commit()
                await sender.send(settings.from_address, job.recipient, job.message)
        except SendError as exc:
            row.last_error = str(exc)[:2000]
            if exc.permanent:
                row.status = "failed_permanent"
                contact = session.get(Contact, job.contact_id) if job.contact_id is not None else None
                if contact is not None:
                    contact.flagged, contact.flag_reason = True, f"permanent SMTP failure: {exc}"[:2000]
                await commit()
                report.failed_permanent.append(row.idempotency_key)
                return
            row.status = "failed_transient"
            await commit()
            if attempt < policy.max_attempts:
                await asyncio.sleep(policy.delay(attempt))
            continue
        _record_sent(session, row, job.keys, datetime.now(UTC))
        await commit()
        report.sent.append(row.idempotency_key)
        if on_sent is not None:
            on_sent(job)
        return
    report.failed_transient.append(row.idempotency_key)


async def send_jobs(session: Session, jobs: Iterable[Job], settings: SmtpSettings, *, concurrency: int = 8,
                    policy: RetryPolicy | None = None) -> DeliveryReport:
    """Send prepared jobs, at most `concurrency` at a time. The one Session is shared by the tasks: every
    database step runs without awaiting in between, so they never interleave; their commits are grouped."""
    report = DeliveryReport()
    sender = SmtpSender(settings, concurrency)
    committer = GroupCommit(session)
    policy = policy or RetryPolicy()
    try:
        await asyncio.gather(*(send_job(session, sender, j, settings, policy, report, committer=committer)
                               for j in jobs))
    finally:
        await sender.close()
    return report


def unfinished(session: Session) -> list[Delivery]:
    """Deliveries a previous run left pending, sending (it died) or failed_transient (retries used up)."""
    return list(session.scalars(select(Delivery).where(Delivery.status.in_(UNFINISHED)).order_by(Delivery.id)))


async def adeliver_due(session: Session, now: datetime, *, index: Index, settings: SmtpSettings, secret: str,
                       concurrency: int = 8, policy: RetryPolicy | None = None,
                       subscriptions: Iterable[tuple[Any, str]] | None = None) -> DeliveryReport:
    """Send every due digest (subscribers.service.due_subscriptions) and every unfinished one of earlier runs.

    `subscriptions`: (subscription, period_key) pairs to use instead of asking the subscribers service.
    Digests are reserved and rendered (`reserve`, `make_job`) while earlier ones are sent by `concurrency`
    workers; a bounded queue keeps the rendering at most a few digests ahead."""
    from subscribers.models import Subscription

    report = DeliveryReport()
    pairs: dict[str, tuple[Any, str]] = {}
    for row in unfinished(session):
        sub = session.get(Subscription, row.subscription_id)
        if sub is not None:
            pairs[row.idempotency_key] = (sub, row.period_key)
    if subscriptions is None:
        from subscribers.service import due_subscriptions

        done = {(d.subscription_id, d.period_key) for d in session.scalars(
            select(Delivery).where(Delivery.status.in_(FINAL)))}
        subscriptions = [(d.subscription, d.period_key) for d in due_subscriptions(session, now, already=done)]
    for sub, pk in subscriptions:
        pairs.setdefault(idempotency_key(sub.id, pk), (sub, pk))
    todo = list(pairs.values())
    docs = DocumentCache(index)
    sender = SmtpSender(settings, concurrency)
    committer = GroupCommit(session)
    policy = policy or RetryPolicy()
    queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=2 * concurrency)

    async def produce() -> None:
        for start in range(0, len(todo), PREPARE_CHUNK):
            for row, sub, digest in reserve(session, todo[start:start + PREPARE_CHUNK], docs, now=now,
                                            report=report):
                await queue.put(make_job(row, sub, digest, settings=settings, secret=secret, now=now))
                await asyncio.sleep(0)  # let the workers start on it
        for _ in range(concurrency):
            await queue.put(None)

    async def consume() -> None:
        while (job := await queue.get()) is not None:
            await send_job(session, sender, job, settings, policy, report, committer=committer)

    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(produce())
            for _ in range(concurrency):
                tasks.create_task(consume())
    except ExceptionGroup as group:  # callers catch the failure's own type (the others were cancelled)
        raise group.exceptions[0] from group
    finally:
        await sender.close()
    return report


def deliver_due(session: Session, now: datetime, **kwargs: Any) -> DeliveryReport:
    """Synchronous entry point (CLI, scheduler): see `adeliver_due`."""
    return asyncio.run(adeliver_due(session, now, **kwargs))
