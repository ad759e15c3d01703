"""End-to-end fixtures: a seeded installation (tests/e2e/world.py), the real app served by uvicorn on 127.0.0.1,
Debian's chromium driven by Playwright, and an artifacts folder for screenshots.

Without /usr/bin/chromium the browser tests are skipped, unless PATENTSIFT_REQUIRE_BROWSER=1 (CI) makes them fail.
Screenshots go to $PATENTSIFT_ARTIFACTS/e2e, else <tmp>/patentsift-artifacts/e2e (printed at the end of the run).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.world import EMAIL, PASSWORD, World, build_world

CHROMIUM = Path(os.environ.get("PATENTSIFT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
_used_artifacts: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in dict.fromkeys(_used_artifacts):
        terminalreporter.write_line(f"e2e screenshots: {folder}")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    base = os.environ.get("PATENTSIFT_ARTIFACTS") or str(Path(tempfile.gettempdir()) / "patentsift-artifacts")
    folder = Path(base) / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    _used_artifacts.append(folder)
    return folder


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("e2e-world"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_app(cfg: Any, name: str = "e2e-uvicorn") -> Iterator[str]:
    """The real app (create_app on `cfg`) served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    from patentsift.web.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(world: World) -> Iterator[str]:
    """The app on the seeded world; yields its base URL."""
    with serve_app(world.cfg) as url:
        yield url


@pytest.fixture(scope="package")  # torn down after tests/e2e: its event loop must not outlive them
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"no chromium at {CHROMIUM} (scripts/install-browser installs Debian's)"
        if os.environ.get("PATENTSIFT_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; PATENTSIFT_REQUIRE_BROWSER=1 requires it")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh browser context (own cookies, English) with one page on the live server."""
    context = browser.new_context(base_url=live_server, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shot(artifacts: Path, request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """Save a full-page screenshot as <artifacts>/<test>-<step>.png."""
    test = re.sub(r"\W+", "_", request.node.name.removeprefix("test_"))

    def save(page: Any, step: str) -> Path:
        path = artifacts / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


MOBILE = {"width": 390, "height": 844}


def login(page: Any) -> None:
    """Log in as the seeded staff user through the login form (lands on the search page)."""
    page.goto("/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/search")


@pytest.fixture
def staff_page(page: Any) -> Any:
    """`page`, logged in as the seeded staff user (through the login form) and on the search page."""
    login(page)
    return page


@pytest.fixture
def mobile_page(browser: Any, live_server: str) -> Iterator[Any]:
    """A phone-sized page (390 x 844, touch), logged in as the seeded staff user."""
    context = browser.new_context(base_url=live_server, locale="en-US", viewport=MOBILE, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    login(page)
    yield page
    context.close()
