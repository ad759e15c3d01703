"""SMTP failure classes, counted at a real aiosmtpd server on 127.0.0.1: a fault of the server or of our
configuration (AUTH refused, STARTTLS missing, relay denied, every recipient refused) stops the run, flags nobody
and leaves the digests due; a refused mailbox flags only its contact; once the fault is fixed every digest goes
out exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from distribution.delivery import DeliveryHalted, DeliverySettings, RetryPolicy, SmtpSettings, deliver
from distribution.models import Delivery
from index.model import PatentDocument
from subscribers.models import Contact, Subscription
from tests.integration.dist_support import (
    SECRET,
    Sink,
    World,
    add_subscriber,
    approve_all,
    free_port,
    load_documents,
    make_world,
    message_ids,
)

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
PERIOD = "weekly:2026-W48"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
USER, PASSWORD = "digest", "right-password"



def _authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and \
        auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    return load_documents(shared_patents)


@pytest.fixture
def world(tmp_path: Path, docs: list[PatentDocument]) -> Iterator[World]:
    w = make_world(tmp_path, docs)
    yield w
    w.close()


@pytest.fixture
def server() -> Iterator[tuple[Sink, int]]:
    """An SMTP server that requires AUTH (over plain text: loopback only) and offers no STARTTLS."""
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=_authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    yield sink, controller.port
    controller.stop()


def _settings(port: int, *, password: str = PASSWORD, security: str = "none") -> DeliverySettings:
    smtp = SmtpSettings(host="127.0.0.1", port=port, security=security, username=USER, password=password,
                        from_address="digest@patentsift.test", base_url="https://news.example.org", timeout=10)
    return DeliverySettings(smtp=smtp, policy=FAST, concurrency=2, secret=SECRET)


def _subscribers(world: World, n: int) -> list[int]:
    from distribution.curation import enqueue_new_matches

    with world.sessions() as s:
        ids = [add_subscriber(s, f"reader{i}@example.com", max_items=5).id for i in range(n)]
        enqueue_new_matches(s, world.store)
        s.commit()
    for i in ids:
        approve_all(world, i)
    return ids


def _run(world: World, settings: DeliverySettings, ids: list[int]):  # noqa: ANN202
    with world.sessions() as s:
        pairs = [(s.get(Subscription, i), PERIOD) for i in ids]
        return deliver(s, datetime.now(UTC), index=world.index, settings=settings, subscriptions=pairs)


def _state(world: World) -> tuple[Counter[str], list[str]]:
    with world.sessions() as s:
        statuses = Counter(r.status for r in s.scalars(select(Delivery)))
        flagged = [c.email for c in s.scalars(select(Contact).where(Contact.flagged.is_(True)))]
    return statuses, flagged


def _fixed_then_everything_once(world: World, sink: Sink, settings: DeliverySettings, ids: list[int]) -> None:
    report = _run(world, settings, ids)
    assert sorted(report.sent) == sorted(f"{i}:{PERIOD}" for i in ids)
    assert Counter(message_ids(sink)) == Counter({m: 1 for m in message_ids(sink)}) and len(sink.received) == len(ids)
    statuses, flagged = _state(world)
    assert statuses == Counter({"sent": len(ids)}) and flagged == []


def test_wrong_password_stops_the_run_flags_nobody_and_resumes(world: World, server) -> None:  # noqa: ANN001
    sink, port = server
    ids = _subscribers(world, 3)
    with pytest.raises(DeliveryHalted, match="refused our login"):
        _run(world, _settings(port, password="wrong"), ids)
    statuses, flagged = _state(world)
    assert flagged == [] and not sink.received and "failed_permanent" not in statuses
    _fixed_then_everything_once(world, sink, _settings(port), ids)


def test_starttls_the_server_does_not_offer_is_a_configuration_error(world: World, server) -> None:  # noqa: ANN001
    sink, port = server
    ids = _subscribers(world, 2)
    with pytest.raises(DeliveryHalted, match="security"):
        _run(world, _settings(port, security="starttls"), ids)
    assert _state(world)[1] == [] and not sink.received
    _fixed_then_everything_once(world, sink, _settings(port), ids)


def test_relay_denied_is_the_servers_fault_not_the_readers(world: World, server) -> None:  # noqa: ANN001
    sink, port = server
    ids = _subscribers(world, 3)
    sink.reject_rcpt.update({f"reader{i}@example.com": "550 5.7.1 relaying denied" for i in range(3)})
    with pytest.raises(DeliveryHalted, match="5.7.1"):
        _run(world, _settings(port), ids)
    statuses, flagged = _state(world)
    assert flagged == [] and "failed_permanent" not in statuses and not sink.received
    sink.reject_rcpt.clear()
    _fixed_then_everything_once(world, sink, _settings(port), ids)


def test_every_mailbox_refused_means_the_server_is_broken(world: World, server) -> None:  # noqa: ANN001
    sink, port = server
    ids = _subscribers(world, 3)
    sink.reject_rcpt.update({f"reader{i}@example.com": "550 5.1.1 user unknown" for i in range(3)})
    with pytest.raises(DeliveryHalted, match="every recipient"):
        _run(world, _settings(port), ids)
    statuses, flagged = _state(world)
    assert flagged == [] and "failed_permanent" not in statuses
    sink.reject_rcpt.clear()
    _fixed_then_everything_once(world, sink, _settings(port), ids)


def test_one_unknown_mailbox_flags_only_that_contact(world: World, server) -> None:  # noqa: ANN001
    sink, port = server
    ids = _subscribers(world, 3)
    sink.reject_rcpt["reader1@example.com"] = "550 5.1.1 user unknown"
    report = _run(world, _settings(port), ids)
    assert report.failed_permanent == [f"{ids[1]}:{PERIOD}"] and len(report.sent) == 2
    statuses, flagged = _state(world)
    assert flagged == ["reader1@example.com"] and statuses == Counter({"sent": 2, "failed_permanent": 1})
    again = _run(world, _settings(port), ids)  # nothing is sent twice, the flagged contact gets nothing
    assert again.sent == [] and len(sink.received) == 2
    assert any("contact flagged" in r or "failed permanently" in r for r in again.reasons.values())


def test_transient_failures_are_retried_with_backoff_and_left_due(world: World, server) -> None:  # noqa: ANN001
    sink, port = server
    ids = _subscribers(world, 1)
    sink.data_replies = ["451 4.3.0 try later"] * 3  # more than max_attempts
    report = _run(world, _settings(port), ids)
    assert report.failed_transient == [f"{ids[0]}:{PERIOD}"] and sink.data_count == 3
    assert _state(world) == (Counter({"failed_transient": 1}), [])
    _fixed_then_everything_once(world, sink, _settings(port), ids)
