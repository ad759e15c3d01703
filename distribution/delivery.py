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
import hashlib
import random
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from distribution.digest import (
    Digest,
    DocumentCache,
    DocumentSource,
    build_digest,
    digest_inputs,
    worth_sending,
)
from distribution.message import (  # noqa: F401 - message construction lives there; re-exported for callers
    Links,
    build_message,
    digest_message,
    message_bytes,
    subscriber_links,
)
from distribution.models import Delivery, SentItem
from index.base import Index
from subscribers.models import Subscription

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


@dataclass
class RetryPolicy:
    max_attempts: int = 5  # per run; what is left over stays 'failed_transient' for the next run
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before retry number `attempt` (1-based)."""
        d = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return d * (0.5 + random.random() / 2)


@dataclass
class DeliverySettings:
    """Everything a delivery run needs besides the database and the index (built by the shell's wiring)."""

    smtp: SmtpSettings
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 8
    secret: str = ""


class SendError(Exception):
    """A failed SMTP transaction: `permanent` for a 5xx reply about the recipient (the contact is flagged),
    otherwise (4xx, connection lost, timeout) worth retrying."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class DeliveryHalted(RuntimeError):
    """The run stopped because the server or our configuration refuses everything (AUTH refused, TLS failure,
    relay denied, 5xx to every recipient): nobody is flagged, the digests stay due for the next run."""


# --- pure parts -----------------------------------------------------------------------------------------------
def idempotency_key(subscription_id: int, period_key: str) -> str:
    return f"{subscription_id}:{period_key}"


def message_id_for(subscription_id: int, period_key: str) -> str:
    """Deterministic Message-ID of one digest, e.g. `<digest.7.weekly-2026-W48.1f2e3d4c5b6a@patentsift>`."""
    digest = hashlib.sha256(idempotency_key(subscription_id, period_key).encode()).hexdigest()[:12]
    period = re.sub(r"[^A-Za-z0-9.-]+", "-", period_key).strip("-")
    return f"<digest.{subscription_id}.{period}.{digest}@patentsift>"


# --- SMTP -------------------------------------------------------------------------------------------------------
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# 5xx replies to RCPT that are about the mailbox itself when the server gives no enhanced status code (RFC 5321)
_RECIPIENT_CODES = (550, 551, 553)


def _recipient_problem(code: int, message: str, stage: str) -> bool:
    """Whether a 5xx reply is about this one recipient (RFC 3463 class 5.1.x: bad mailbox address, or 5.2.x:
    mailbox full/disabled), as opposed to the server or our configuration (5.7.x relay or policy, 5.5.x, ...)."""
    m = _ENHANCED.match(message)
    if m:
        return m.group(2) in ("1", "2")
    return stage == "rcpt" and code in _RECIPIENT_CODES


def _classify(exc: BaseException) -> SendError | DeliveryHalted:
    """A transient SendError (4xx, connection lost, timeout), a permanent one about the recipient, or
    DeliveryHalted for a failure of the server or of our configuration (which must not flag anyone)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code, message, stage = exc.recipients[0].code, exc.recipients[0].message, "rcpt"
    elif isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code > 0:
        code, message = exc.code, exc.message
        stage = "rcpt" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "other"
    else:
        return SendError(f"{type(exc).__name__}: {exc}", permanent=False)
    if not 500 <= code < 600:
        return SendError(f"{code} {message}", permanent=False, code=code)
    if _recipient_problem(code, message, stage):
        return SendError(f"{code} {message}", permanent=True, code=code)
    return DeliveryHalted(f"the SMTP server refused the message ({code} {message}): a server or configuration "
                          "problem (relay, sender, policy); nobody was flagged and the digests stay due")


class SmtpSender:
    """SMTP transactions over reused connections; callers hold `semaphore` (at most `concurrency` at once)."""

    def __init__(self, settings: SmtpSettings, concurrency: int = 8) -> None:
        self.settings = settings
        self.semaphore = asyncio.Semaphore(concurrency)
        self._idle: list[aiosmtplib.SMTP] = []
        self.accepted = 0  # messages the server took in this run

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout, use_tls=s.security == "tls",
                                 start_tls=True if s.security == "starttls" else False)
        try:
            await client.connect()
            if s.username:
                await client.login(s.username, s.password or "")
        except ssl.SSLError as exc:
            client.close()
            raise DeliveryHalted(f"TLS with {s.host}:{s.port} failed ({exc}): check [smtp] security "
                                 "(starttls | tls | none) and the server's certificate") from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                OSError):
            client.close()
            raise  # the server is down or went away: transient
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            if 400 <= exc.code < 500:
                raise  # e.g. 421 too busy, 454 temporary authentication failure: transient
            what = "our login" if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or s.username else "us"
            raise DeliveryHalted(f"the SMTP server {s.host}:{s.port} refused {what} ({exc.code} {exc.message}): "
                                 "check [smtp] and PATENTSIFT_SMTP_USERNAME / PATENTSIFT_SMTP_PASSWORD; nobody "
                                 "was flagged and the digests stay due") from exc
        except aiosmtplib.SMTPException as exc:  # e.g. STARTTLS asked of a server that does not offer it
            client.close()
            raise DeliveryHalted(f"connecting to {s.host}:{s.port} failed ({exc}): check [smtp] security "
                                 "(starttls | tls | none)") from exc
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
        self.accepted += 1

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
    reasons: dict[str, str] = field(default_factory=dict)  # idempotency key -> why it was skipped
    bounced: list[tuple[int, int | None, str]] = field(default_factory=list)  # (delivery, contact, reply)

    def merge(self, other: DeliveryReport) -> None:
        for name in ("sent", "failed_permanent", "failed_transient", "skipped", "bounced"):
            getattr(self, name).extend(getattr(other, name))
        self.reasons.update(other.reasons)

    def skip(self, key: str, reason: str) -> None:
        self.skipped.append(key)
        self.reasons[key] = reason


BOUNCE_ALL_MIN = 2  # this many recipient refusals and nothing accepted in one run: the server is at fault


def settle_bounces(session: Session, report: DeliveryReport) -> None:
    """After a run: flag the contacts whose mailbox the server refused, unless it refused every recipient of the
    run (at least BOUNCE_ALL_MIN, none accepted): that is the server's fault, so nobody is flagged, the digests go
    back to due and DeliveryHalted is raised. Commits."""
    from subscribers.models import Contact

    if not report.bounced:
        return
    if not report.sent and len(report.bounced) >= BOUNCE_ALL_MIN:
        for delivery_id, _, _ in report.bounced:
            row = session.get(Delivery, delivery_id)
            if row is not None:
                row.status = "failed_transient"
        keys = set(report.failed_permanent)
        report.failed_permanent = []
        report.failed_transient.extend(sorted(keys))
        first = report.bounced[0][2]
        report.bounced = []
        session.commit()
        raise DeliveryHalted(f"the SMTP server refused every recipient of this run ({len(keys)}, e.g. {first}): "
                             "a server or configuration problem; nobody was flagged and the digests stay due")
    for _, contact_id, reply in report.bounced:
        contact = session.get(Contact, contact_id) if contact_id is not None else None
        if contact is not None:
            contact.flagged, contact.flag_reason = True, f"permanent SMTP failure: {reply}"[:2000]
    session.commit()


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
        if row is not None and row.status in FINAL:
            report.skip(key, "already sent for this period" if row.status == "sent" else
                        f"failed permanently earlier ({row.last_error or '?'})")
            continue
        if sub.contact.flagged:
            report.skip(key, f"contact flagged ({sub.contact.flag_reason or 'no reason given'}); un-flag it with "
                        f"`patentsift contact unflag {sub.contact.id}` once the address is fixed")
            continue
        if row is None and sub.status != "active":
            report.skip(key, "not confirmed yet (double opt-in pending)" if sub.status == "pending"
                        else f"subscription {sub.status}")
            continue
        if row is None:
            digest = build_digest(session, sub, pk, index, inputs=inputs[sub.id])
            if not worth_sending(sub, digest):
                report.skip(key, "nothing approved for this period (curate it: patentsift review list)")
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


def prepare(session: Session, subscription: Subscription, period_key: str, index: Index | DocumentSource, *,
            settings: SmtpSettings, secret: str, now: datetime | None = None,
            report: DeliveryReport | None = None) -> Job | None:
    """Create (or find) the Delivery row of one subscription and period and build its message; None when there
    is nothing to send (see `reserve`)."""
    ready = reserve(session, [(subscription, period_key)], index, now=now,
                    report=report if report is not None else DeliveryReport())
    return make_job(*ready[0], settings=settings, secret=secret, now=now) if ready else None


def make_job(row: Delivery, subscription: Subscription, digest: Digest, *, settings: SmtpSettings, secret: str,
             now: datetime | None) -> Job:
    """Render a reserved digest and serialize its message."""
    contact = subscription.contact
    msg = digest_message(subscription, digest, settings=settings, secret=secret, message_id=row.message_id,
                         when=now)
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
    commit = (committer or GroupCommit(session)).commit
    row = session.get(Delivery, job.delivery_id)
    assert row is not None
    for attempt in range(1, policy.max_attempts + 1):
        if row.status in FINAL:  # another worker (or run) finished it
            report.skip(row.idempotency_key, "already sent for this period")
            return
        try:
            async with sender.semaphore:
                row.status, row.attempts = "sending", row.attempts + 1
                await commit()
                await sender.send(settings.from_address, job.recipient, job.message)
        except DeliveryHalted as exc:
            row.status, row.last_error = "failed_transient", str(exc)[:2000]
            await commit()
            raise
        except SendError as exc:
            row.last_error = str(exc)[:2000]
            if exc.permanent:
                row.status = "failed_permanent"
                await commit()
                report.failed_permanent.append(row.idempotency_key)
                report.bounced.append((row.id, job.contact_id, str(exc)))
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
    except DeliveryHalted:
        _unbounce(session, report)
        raise
    finally:
        await sender.close()
    settle_bounces(session, report)
    return report


def _unbounce(session: Session, report: DeliveryReport) -> None:
    """A halted run flags nobody: its refused digests go back to due."""
    for delivery_id, _, _ in report.bounced:
        row = session.get(Delivery, delivery_id)
        if row is not None:
            row.status = "failed_transient"
    report.bounced = []
    session.commit()


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
        if isinstance(group.exceptions[0], DeliveryHalted):
            _unbounce(session, report)
        raise group.exceptions[0] from group
    finally:
        await sender.close()
    settle_bounces(session, report)
    return report


def deliver_due(session: Session, now: datetime, **kwargs: Any) -> DeliveryReport:
    """Synchronous form of `adeliver_due`."""
    return asyncio.run(adeliver_due(session, now, **kwargs))


def deliver(session: Session, now: datetime, *, index: Index, settings: DeliverySettings,
            subscriptions: Iterable[tuple[Any, str]] | None = None) -> DeliveryReport:
    """THE delivery run (`digest send`, `run-once`, the scheduler): every due and unfinished digest, with the
    configured retry policy. `session` must not be inside a `begin()` block: delivery commits its own steps.
    Raises DeliveryHalted when the server or the configuration refuses everything (nothing flagged)."""
    return deliver_due(session, now, index=index, settings=settings.smtp, secret=settings.secret,
                       concurrency=settings.concurrency, policy=settings.policy, subscriptions=subscriptions)
