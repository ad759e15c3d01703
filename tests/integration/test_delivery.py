"""Digest delivery against a real SMTP server (aiosmtpd on 127.0.0.1): MIME, headers, links, zh/en, and faults
(4xx, 5xx, dropped connections, the sending process killed); counted from what the server received."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from distribution.curation import enqueue_new_matches
from distribution.delivery import RetryPolicy, SmtpSettings, deliver_due, message_id_for
from distribution.models import Delivery, SentItem
from index.model import PatentDocument
from subscribers.models import Contact, Subscription
from subscribers.tokens import read_token
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

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "weekly:2026-W48"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)



@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    return load_documents(shared_patents)


@pytest.fixture
def world(tmp_path: Path, docs: list[PatentDocument]) -> Iterator[World]:
    w = make_world(tmp_path, docs)
    yield w
    w.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, SmtpSettings]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings = SmtpSettings(host="127.0.0.1", port=controller.port, security="none",
                            from_address="digest@patentsift.test", base_url="https://news.example.org",
                            timeout=10)
    yield sink, settings
    controller.stop()


def _subscribers(world: World, specs: list[tuple[str, str, str]]) -> list[int]:
    """(email, language, format) -> confirmed subscriptions with every semis match approved."""
    with world.sessions() as s:
        ids = [add_subscriber(s, e, language=lang, fmt=fmt, max_items=5).id for e, lang, fmt in specs]
        enqueue_new_matches(s, world.store)
        s.commit()  # the caller commits (db/__init__.py)
    for i in ids:
        approve_all(world, i)
    return ids


def _deliver(world: World, settings: SmtpSettings, ids: list[int], period: str = PERIOD, concurrency: int = 4):
    with world.sessions() as s:
        pairs = [(s.get(Subscription, i), period) for i in ids]
        return deliver_due(s, datetime.now(UTC), index=world.index, settings=settings, secret=SECRET,
                           concurrency=concurrency, policy=FAST, subscriptions=pairs)


def test_digests_in_both_languages_with_headers_and_links(world: World, smtp) -> None:  # noqa: ANN001
    sink, settings = smtp
    en, zh = _subscribers(world, [("en@example.com", "en", "html"), ("zh@example.com", "zh", "text")])
    report = _deliver(world, settings, [en, zh])
    assert sorted(report.sent) == sorted([f"{en}:{PERIOD}", f"{zh}:{PERIOD}"])
    by_to = {str(m["To"]).split("<")[-1].rstrip(">"): m for m in sink.received}
    m_en, m_zh = by_to["en@example.com"], by_to["zh@example.com"]
    assert m_en["Message-ID"] == message_id_for(en, PERIOD) and m_zh["Message-ID"] == message_id_for(zh, PERIOD)
    assert m_en.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in m_en.iter_parts()] == ["text/plain", "text/html"]
    assert m_zh.get_content_type() == "text/plain" and not m_zh.is_multipart()
    for msg, sub in ((m_en, en), (m_zh, zh)):
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = [p.strip().strip("<>") for p in str(msg["List-Unsubscribe"]).split(",")]
        assert https.startswith("https://news.example.org/unsubscribe?token=") and mailto.startswith("mailto:")
        assert read_token(SECRET, "unsubscribe", https.split("token=")[1]) == sub
        assert https.replace("&", "&amp;") in (msg.get_body(("html", "plain")).get_content())
    html = m_en.get_body(("html",)).get_content()
    assert "Your patent digest" in html and "ppubs.uspto.gov" in html and "Why it matched" in html
    assert "专利快讯" in str(m_zh["Subject"]) and "推荐理由" in m_zh.get_content()
    assert Counter(e[1][0] for e in sink.envelopes) == {"en@example.com": 1, "zh@example.com": 1}

    again = _deliver(world, settings, [en, zh])  # the same period: never sent twice
    assert again.sent == [] and len(again.skipped) == 2 and len(sink.received) == 2
    later = _deliver(world, settings, [en, zh], period="weekly:2026-W49")  # every item was sent already
    assert later.sent == [] and len(sink.received) == 2
    with world.sessions() as s:
        rows = list(s.scalars(select(Delivery)))
        assert {r.status for r in rows} == {"sent"} and all(r.attempts == 1 and r.sent_at for r in rows)
        assert s.scalar(select(SentItem.id).where(SentItem.subscription_id == en)) is not None


def test_4xx_is_retried_then_delivered_once(world: World, smtp) -> None:  # noqa: ANN001
    sink, settings = smtp
    (sub,) = _subscribers(world, [("busy@example.com", "en", "html")])
    sink.data_replies = ["451 4.3.0 try again later", "421 4.7.0 too busy"]
    report = _deliver(world, settings, [sub])
    assert report.sent == [f"{sub}:{PERIOD}"] and message_ids(sink) == [message_id_for(sub, PERIOD)]
    assert sink.data_count == 3
    with world.sessions() as s:
        row = s.scalar(select(Delivery))
        assert row.status == "sent" and row.attempts == 3


def test_5xx_fails_permanently_and_flags_the_contact(world: World, smtp) -> None:  # noqa: ANN001
    sink, settings = smtp
    bad, good = _subscribers(world, [("gone@example.com", "en", "html"), ("ok@example.com", "en", "html")])
    sink.reject_rcpt["gone@example.com"] = "550 5.1.1 no such user"
    report = _deliver(world, settings, [bad, good])
    assert report.failed_permanent == [f"{bad}:{PERIOD}"] and report.sent == [f"{good}:{PERIOD}"]
    assert message_ids(sink) == [message_id_for(good, PERIOD)]
    with world.sessions() as s:
        row = s.scalar(select(Delivery).where(Delivery.subscription_id == bad))
        assert row.status == "failed_permanent" and row.attempts == 1 and "550" in row.last_error
        contact = s.get(Subscription, bad).contact
        assert contact.flagged and "550" in contact.flag_reason
    assert _deliver(world, settings, [bad]).sent == [] and len(sink.received) == 1  # not retried


def test_dropped_connection_mid_batch_is_retried_once(world: World, smtp) -> None:  # noqa: ANN001
    sink, settings = smtp
    ids = _subscribers(world, [(f"r{i}@example.com", "en" if i % 2 else "zh", "html") for i in range(6)])
    sink.drop_at = {3}
    report = _deliver(world, settings, ids, concurrency=2)
    assert sorted(report.sent) == sorted(f"{i}:{PERIOD}" for i in ids)
    assert sorted(message_ids(sink)) == sorted(message_id_for(i, PERIOD) for i in ids)  # each exactly once
    assert sink.data_count == 7


CHILD = """
import sys
from datetime import datetime
from sqlalchemy.orm import sessionmaker
from distribution.delivery import RetryPolicy, SmtpSettings, deliver_due
from index.embedded import EmbeddedIndex
from db import make_engine
url, index_path, port, secret, now = sys.argv[1:6]
settings = SmtpSettings(host="127.0.0.1", port=int(port), security="none", from_address="digest@patentsift.test",
                        base_url="https://news.example.org", timeout=60)
with sessionmaker(make_engine(url), expire_on_commit=False)() as s:
    r = deliver_due(s, datetime.fromisoformat(now), index=EmbeddedIndex(index_path), settings=settings,
                    secret=secret, concurrency=1, policy=RetryPolicy(3, 0.01, 0.05))
print("sent", len(r.sent))
"""


def test_killed_sender_loses_and_duplicates_nothing(world: World, smtp, tmp_path: Path) -> None:  # noqa: ANN001
    """Kill the sending process after 4 of 10 digests were accepted, while it waits for the reply to the 5th;
    restart it: each digest arrives exactly once. (concurrency 1 keeps the kill outside the documented window
    between the server's 250 and the 'sent' commit.)"""
    sink, settings = smtp
    ids = _subscribers(world, [(f"k{i}@example.com", "en", "html") for i in range(10)])
    now = (datetime.now(UTC) + timedelta(days=8)).isoformat()  # every weekly subscription is due by then
    args = [sys.executable, "-c", CHILD, world.url, str(tmp_path / "index.sqlite"), str(settings.port), SECRET, now]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sink.hold_after = 4
    child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sink.held.wait(60), child.communicate(timeout=5)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert len(sink.received) == 4
    with world.sessions() as s:
        assert Counter(r.status for r in s.scalars(select(Delivery))) == {"sent": 4, "sending": 1, "pending": 5}
    sink.hold_after = None
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Counter(message_ids(sink)) == {message_id_for(i, next(iter(_periods(world, i)))): 1 for i in ids}
    with world.sessions() as s:
        rows = list(s.scalars(select(Delivery)))
        assert len(rows) == 10 and {r.status for r in rows} == {"sent"}
        assert not any(c.flagged for c in s.scalars(select(Contact)))
    rerun = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and "sent 0" in rerun.stdout and len(sink.received) == 10


def _periods(world: World, sub_id: int) -> set[str]:
    with world.sessions() as s:
        return set(s.scalars(select(Delivery.period_key).where(Delivery.subscription_id == sub_id)))
