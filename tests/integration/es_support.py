"""Pytest support for tests that need a real Elasticsearch node (PATENTSIFT_ES_URL)."""

from __future__ import annotations

import os
import urllib.request
import uuid
from typing import Any

import pytest

DEFAULT_URL = "http://127.0.0.1:9200"


def es_url_from_env() -> str:
    return os.environ.get("PATENTSIFT_ES_URL", DEFAULT_URL).split(",")[0].strip()


def reachable(url: str, timeout: float = 3.0) -> str | None:
    """None when the node answers /_cluster/health, else the reason."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_cluster/health", timeout=timeout) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except OSError as exc:
        return str(exc)


def require_es(url: str) -> str:
    """Fail (PATENTSIFT_REQUIRE_ES=1, as in CI) or skip when no node answers at `url`."""
    why = reachable(url)
    if why is not None:
        msg = f"no Elasticsearch at {url} ({why}); start one with scripts/elasticsearch start"
        if os.environ.get("PATENTSIFT_REQUIRE_ES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return url


@pytest.fixture(scope="session")
def es_url() -> str:
    """The URL of a reachable Elasticsearch node."""
    return require_es(es_url_from_env())


def unique_prefix(tag: str) -> str:
    """An index prefix no other test session uses."""
    return f"pstest-{tag}-{uuid.uuid4().hex[:8]}"


class KillableProxy:
    """A TCP proxy on 127.0.0.1 in front of the node that drops dead after `allow_bulks` bulk requests
    (closes every connection and stops listening), to simulate a node lost in the middle of a load."""

    def __init__(self, target: str, allow_bulks: int | None = None, port: int = 0) -> None:
        import socket
        from urllib.parse import urlparse

        u = urlparse(target)
        self.target = (u.hostname or "127.0.0.1", u.port or 9200)
        self.allow_bulks = allow_bulks
        self.bulks = 0
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sockets: list[socket.socket] = []
        self.dead = False
        import threading

        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self.dead:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: Any, dst: Any, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and b"/_bulk" in data:
                    self.bulks += data.count(b"/_bulk")
                    if self.allow_bulks is not None and self.bulks > self.allow_bulks:
                        self.kill()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def kill(self) -> None:
        """Stop listening and cut every open connection."""
        import socket

        self.dead = True
        with self._lock:
            for s in [self.listener, *self.sockets]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
