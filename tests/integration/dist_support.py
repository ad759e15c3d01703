"""Shared setup for the distribution tests: one database (migrations), real documents in an EmbeddedIndex,
matches with explanations built from the index's own highlights, and confirmed subscribers."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from harvest.files import iter_raw_documents
from harvest.formats import parse_raw
from harvest.raw import RawDocument, Reject
from index.base import SearchRequest
from index.embedded import EmbeddedIndex
from index.model import PatentDocument
from index.query.parser import parse_query
from matching.explain import Explanation, matched_classes, matched_terms
from matching.store import MatchStore, NewMatch
from patentsift.config import Config
from patentsift.wiring import System
from subscribers import service
from subscribers.models import Outlet, Subscription
from subscribers.profiles import Profile

SECRET = "test-secret-key-for-distribution"
QUERY = "semiconductor OR device OR method OR system OR 装置 OR 方法"


def load_documents(shared: Path, limit: int = 30) -> list[PatentDocument]:
    """Real documents: USPTO grants plus the CNIPA and JPO ones (for Chinese titles and office links)."""
    docs: dict[str, PatentDocument] = {}
    for folder, cap in (("uspto-grant", limit), ("cn", 10), ("jp", 5)):
        n = 0
        for item in iter_raw_documents(shared / folder):
            if not isinstance(item, RawDocument) or n >= cap:
                continue
            try:
                for d in parse_raw(item, fetched_at="2026-01-01T00:00:00+00:00"):
                    if d.id not in docs and d.title():
                        docs[d.id] = d
                        n += 1
            except Reject:
                pass
    return list(docs.values())


@dataclass
class World:
    """An installation built through the shell's wiring (`System`): its index, database and match store."""

    system: System
    docs: list[PatentDocument]
    match_ids: dict[str, list[int]] = field(default_factory=dict)  # profile -> stored match ids

    @property
    def url(self) -> str:
        return self.system.database.url

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.system.database.sessions

    @property
    def store(self) -> MatchStore:
        return self.system.match_store

    @property
    def index(self) -> EmbeddedIndex:
        return self.system.index  # type: ignore[return-value]

    def close(self) -> None:
        self.system.close()


def make_world(tmp: Path, docs: list[PatentDocument]) -> World:
    """data_dir = tmp: tmp/index.sqlite and tmp/patentsift.sqlite, as `patentsift --data-dir tmp` opens them."""
    world = World(System(Config(data_dir=tmp, secret_key=SECRET)), docs)
    index, store = world.index, world.store
    assert not index.upsert(docs).failed
    hits = index.search(SearchRequest(parse_query(QUERY), highlight=True, limit=len(docs))).hits
    assert len(hits) >= 10
    semis = {d.id for d in docs if any(c.symbol.startswith(("H01L", "G06F", "H04")) for c in [*d.ipc, *d.cpc])}
    for name, chosen in (("semis", [h for h in hits if h.id in semis]), ("general", hits)):
        store.save_profile(Profile(name=name, owner="test", description=f"{name} test profile", query=QUERY,
                                   classes=["H01L", "G06F", "H04"] if name == "semis" else []))
        new = []
        for rank, h in enumerate(chosen):
            exp = Explanation(terms=matched_terms(h.highlights), snippets=h.highlights,
                              classes=matched_classes(h.document, ["H01L", "G06F", "H04"]), similarity=0.5)
            new.append(NewMatch(h.id, rank + 1, round(0.95 - rank * 0.02, 3), {}, exp.to_dict(), {h.id}))
        world.match_ids[name] = store.record_run(name, new, len(docs), f"run-{name}")
    return world


def add_subscriber(s: Session, email: str, *, language: str = "en", profiles: tuple[str, ...] = ("semis",),
                   fmt: str = "html", auto_approve_above: float | None = None, frequency: str = "weekly",
                   max_items: int = 20) -> Subscription:
    """A confirmed subscription of a new contact (double opt-in done through the real token)."""
    outlet = s.scalar(select(Outlet))
    if outlet is None:
        outlet = service.create_outlet(s, "Test outlet")
    org = service.create_organization(s, outlet.id, f"Org of {email}")
    contact = service.add_contact(s, org.id, email, name=email.split("@")[0], language=language)
    sub, token = service.subscribe(s, SECRET, contact.id, profiles, frequency=frequency, format=fmt,
                                   auto_approve_above=auto_approve_above, max_items=max_items)
    service.confirm(s, SECRET, token)
    s.commit()
    return sub


def approve_all(world: World, subscription_id: int) -> None:
    from distribution.curation import decide, queue

    with world.sessions() as s:
        ids = [i.id for i in queue(s, subscription_id)]
        if ids:
            decide(s, ids, "approve", "curator@test")
            s.commit()  # the caller commits (db/__init__.py)


class Sink:
    """An aiosmtpd handler that keeps what arrives, with programmable faults."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.data_replies: list[str] = []  # replies to the next DATA commands, before accepting
        self.reject_rcpt: dict[str, str] = {}  # address -> reply
        self.drop_at: set[int] = set()  # 1-based DATA numbers on which the connection is dropped
        self.hold_after: int | None = None  # stop (hold DATA) once this many messages were accepted
        self.held = threading.Event()
        self.data_count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201
        if address in self.reject_rcpt:
            return self.reject_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        with self.lock:
            self.data_count += 1
            n = self.data_count
            if self.data_replies:
                return self.data_replies.pop(0)
        if n in self.drop_at:
            server.transport.close()
            return "421 connection dropped"
        if self.hold_after is not None and len(self.received) >= self.hold_after:
            self.held.set()
            await asyncio.sleep(30)  # the client is killed meanwhile; this message is never accepted
            return "451 aborted"
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK queued"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def message_ids(sink: Sink) -> list[str]:
    return [str(m["Message-ID"]) for m in sink.received]
