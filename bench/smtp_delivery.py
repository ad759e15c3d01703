"""SMTP delivery throughput: N digests (default 10,000) through the full exactly-once path to a local sink.

    .venv/bin/python bench/smtp_delivery.py [--digests 10000] [--items 3] [--concurrency 16]

Sets up a fresh database (migrations) with N confirmed subscriptions, each with --items approved review items
on real sample documents in an EmbeddedIndex, then times `adeliver_due`: Delivery rows, digest building from the
index, Jinja2 rendering (HTML + text), MIME, SMTP over reused connections, the 'sending'/'sent' commits and
dist_sent_items. The sink is aiosmtpd in a separate process (counting what it accepted). Goal: all in < 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SINK = """
import sys, time, threading
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
for line in sys.stdin:
    print(Count.n, flush=True)
"""


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process (the sink)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(tmp: Path, n: int, items: int) -> tuple[str, object, list[str]]:
    from sqlalchemy import insert

    from db import database_url, make_engine
    from distribution.models import ReviewItem
    from harvest.files import iter_raw_documents
    from harvest.formats import parse_raw
    from harvest.raw import RawDocument, Reject
    from index.embedded import EmbeddedIndex
    from patentsift.wiring import standalone_match_store
    from subscribers.models import Contact, Organization, Outlet, Subscription

    docs = {}
    for item in iter_raw_documents(ROOT / "patentsift" / "sample_data"):
        if isinstance(item, RawDocument):
            try:
                docs.update({d.id: d for d in parse_raw(item)})
            except Reject:
                pass
    index = EmbeddedIndex(tmp / "index.sqlite")
    index.upsert(docs.values())
    standalone_match_store(tmp / "db.sqlite").close()  # migrations
    url = database_url(tmp / "db.sqlite")
    engine = make_engine(url)
    ids = sorted(docs)
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(insert(Outlet), [{"id": 1, "name": "bench", "region": ""}])
        c.execute(insert(Organization), [{"id": 1, "outlet_id": 1, "name": "bench org", "created_at": now}])
        c.execute(insert(Contact), [{"id": i, "organization_id": 1, "email": f"r{i}@bench.test", "name": f"R {i}",
                                     "language": "zh" if i % 3 == 0 else "en", "timezone": "UTC", "flagged": False,
                                     "created_at": now} for i in range(1, n + 1)])
        c.execute(insert(Subscription), [{"id": i, "contact_id": i, "profile_names": ["bench"],
                                          "frequency": "weekly", "max_items": 20,
                                          "format": "text" if i % 5 == 0 else "html", "status": "active",
                                          "created_at": now, "confirmed_at": now} for i in range(1, n + 1)])
        c.execute(insert(ReviewItem), [{"subscription_id": i, "match_id": k, "doc_id": ids[(i + k) % len(ids)],
                                        "profile_name": "bench", "score": 0.9 - k / 10, "status": "approved",
                                        "pinned": k == 0, "explanation": {"terms": ["bench"]},
                                        "created_at": now} for i in range(1, n + 1) for k in range(items)])
    engine.dispose()
    return url, index, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digests", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    from sqlalchemy.orm import sessionmaker

    from db import make_engine
    from distribution.delivery import RetryPolicy, SmtpSettings, adeliver_due
    from subscribers.models import Subscription

    port = _port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout and sink.stdin and sink.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        url, index, _ = setup(Path(tmp), args.digests, args.items)
        print(f"setup: {args.digests} subscriptions x {args.items} items in {time.perf_counter() - t0:.1f} s")
        settings = SmtpSettings(host="127.0.0.1", port=port, security="none", from_address="digest@bench.test",
                                base_url="https://news.example.org")
        with sessionmaker(make_engine(url), expire_on_commit=False)() as s:
            pairs = [(sub, "weekly:2026-W48") for sub in s.query(Subscription).order_by(Subscription.id)]
            t0, cpu0, sink_cpu0 = time.perf_counter(), time.process_time(), _cpu(sink.pid)
            report = asyncio.run(adeliver_due(s, datetime.now(UTC), index=index, settings=settings,
                                              secret="bench-secret", concurrency=args.concurrency,
                                              policy=RetryPolicy(3, 0.05, 0.5), subscriptions=pairs))
            elapsed = time.perf_counter() - t0
            cpu, sink_cpu = time.process_time() - cpu0, _cpu(sink.pid) - sink_cpu0
        index.close()  # type: ignore[attr-defined]
    sink.stdin.write("count\n")
    sink.stdin.flush()
    received = int(sink.stdout.readline())
    sink.kill()
    print(f"sent {len(report.sent)}, failed {len(report.failed_permanent) + len(report.failed_transient)}, "
          f"sink received {received}")
    print(f"CPU: sender {cpu:.1f} s, sink {sink_cpu:.1f} s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"{elapsed:.1f} s, {len(report.sent) / elapsed:.0f} messages/s (goal: {args.digests} in < 60 s: "
          f"{'met' if elapsed < 60 and received == args.digests else 'NOT met'})")


if __name__ == "__main__":
    main()
