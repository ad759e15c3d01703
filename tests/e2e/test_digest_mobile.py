"""A real digest (real documents, index, matches, curation and SMTP delivery: tests/integration/dist_support.py)
opened in chromium at 390 px, in English and in Chinese: it must not scroll sideways."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from distribution.curation import decide, enqueue_new_matches, queue
from distribution.delivery import RetryPolicy, SmtpSettings, deliver_due
from subscribers.models import Subscription
from tests.e2e.conftest import MOBILE
from tests.integration.dist_support import (
    SECRET,
    Sink,
    World,
    add_subscriber,
    approve_all,
    free_port,
    load_documents,
    make_world,
)

PERIOD = "weekly:2026-W48"


@pytest.fixture(scope="module")
def mails(shared_patents: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EmailMessage]]:
    """The HTML digests mailed to an English and a Chinese contact, by address."""
    world: World = make_world(tmp_path_factory.mktemp("digest-world"), load_documents(shared_patents))
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings = SmtpSettings(host="127.0.0.1", port=controller.port, security="none",
                            from_address="digest@patentsift.test", base_url="https://news.example.org", timeout=10)
    try:
        with world.sessions() as s:
            ids = [add_subscriber(s, f"{lang}@example.com", language=lang, profiles=("semis", "general"),
                                  max_items=8).id for lang in ("en", "zh")]
            enqueue_new_matches(s, world.store)
            s.commit()
            for sub_id in ids:  # a curator's note and a pinned item: the widest parts of an item
                first = queue(s, sub_id)[0]
                decide(s, [first.id], "annotate", "curator@test",
                       "Worth a look: the claims cover wafer-level packaging of the sensor die.")
                decide(s, [first.id], "pin", "curator@test")
            s.commit()
        for sub_id in ids:
            approve_all(world, sub_id)

        def deliver() -> Any:
            with world.sessions() as s:
                return deliver_due(s, datetime.now(UTC), index=world.index, settings=settings, secret=SECRET,
                                   policy=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05),
                                   subscriptions=[(s.get(Subscription, i), PERIOD) for i in ids])

        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API runs an event loop in this thread
            report = pool.submit(deliver).result()
        assert len(report.sent) == 2, report
        yield {str(m["To"]).split("<")[-1].rstrip(">"): m for m in sink.received}
    finally:
        controller.stop()
        world.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_digest_fits_a_390px_phone(browser: Any, mails: dict[str, EmailMessage], artifacts: Path,
                                   lang: str) -> None:
    msg = mails[f"{lang}@example.com"]
    html = msg.get_body(("html",)).get_content()
    assert ("Your patent digest" if lang == "en" else "您的专利快讯") in html
    context = browser.new_context(viewport=MOBILE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN" if lang == "zh" else "en-US")
    try:
        page = context.new_page()
        page.set_content(html, wait_until="load")
        width = page.evaluate("document.documentElement.scrollWidth")
        (artifacts / f"digest_390px-{lang}.html").write_text(html, encoding="utf-8")
        page.screenshot(path=str(artifacts / f"digest_390px-{lang}.png"), full_page=True)
        assert page.locator("h2").count() == 2 and page.get_by_text("wafer-level packaging").count() == 1
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 390.5)
            .map(e => e.tagName + ' ' + (e.textContent || '').trim().slice(0, 40)).slice(0, 5)""")
        assert width <= 390, f"{lang} digest scrolls sideways: scrollWidth {width}; too wide: {wide}"
    finally:
        context.close()
