"""The service's loop as a deployment runs it: publication -> inbox -> click -> unsubscribe.

Everything runs as an operator runs it: the `patentsift` command in subprocesses (set-up, `run-once`), the web app
served by `patentsift serve`, a real SMTP server (aiosmtpd) on 127.0.0.1 receiving the mail, the APScheduler job on
its persistent job store (driven by moving its next run time into the past, not by sleeping). The test parses
each message and follows every link in it against the running server: the confirmation link activates the
subscription, a feedback link records the reader's judgement, the RFC 8058 one-click POST unsubscribes, and the
next cycle mails that contact nothing. Once on SQLite, once on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import lxml.html
import pytest
from aiosmtpd.controller import Controller

from patentsift.wiring import standalone_match_store
from tests.integration.dist_support import Sink
from tests.integration.pg_support import pg_server, pg_url  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "patentsift" / "sample_data"
STAFF, PASSWORD = "curator@east.example", "a long and unusual passphrase 7"
READER = "reader@acme.example"
SECRET = "loop-test-secret-" + "k" * 40
TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'patentsift.sqlite'}"
    return request.getfixturevalue("pg_url")


@dataclass
class Deployment:
    """One installation: its config file, environment, SMTP server and web server."""

    root: Path
    env: dict[str, str]
    sink: Sink
    base_url: str
    database_url: str

    def cli(self, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "patentsift", *args], cwd=self.root, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
        if ok:
            assert proc.returncode == 0, f"patentsift {' '.join(args)} exited {proc.returncode}:\n" \
                                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def run_once(self) -> dict:
        proc = self.cli("run-once", "--json", ok=False)
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        report = json.loads(proc.stdout)
        return {s["name"]: s for s in report["stages"]}

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m, (_, rcpts) in zip(self.sink.received, self.sink.envelopes, strict=True) if address in rcpts]


@pytest.fixture
def deployment(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    web_port = _free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    config = tmp_path / "patentsift.toml"
    config.write_text(f"""
data_dir = "{tmp_path / 'data'}"
database_url = "{database_url}"

[harvest]
paths = ["{SAMPLES / 'uspto'}"]

[schedule]
cycle = "0 6 * * *"
timezone = "Asia/Shanghai"

[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from_address = "digest@east.example"
base_url = "{base_url}"
max_attempts = 2
backoff_base = 0.05
""", encoding="utf-8")
    env = {**os.environ, "PATENTSIFT_CONFIG": str(config), "PATENTSIFT_SECRET_KEY": SECRET,
           "HF_HUB_OFFLINE": "1"}
    for name in ("PATENTSIFT_HOME", "PATENTSIFT_DATABASE_URL", "PATENTSIFT_BACKEND"):
        env.pop(name, None)
    dep = Deployment(tmp_path, env, sink, base_url, database_url)
    server = None
    try:
        dep.cli("outlet", "add", "East outlet")
        dep.cli("staff", "add", STAFF, "--outlet", "East outlet", "--password-stdin", stdin=PASSWORD + "\n")
        server = subprocess.Popen([sys.executable, "-m", "patentsift", "serve", "--port", str(web_port)],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "patentsift serve did not start"
            time.sleep(0.3)
        yield dep
    finally:
        if server is not None:
            server.terminate()
            try:
                server.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        smtp.stop()


# --- following what a message holds ---------------------------------------------------------------------------
def _html(msg: EmailMessage) -> str:
    body = msg.get_body(("html",))
    assert body is not None, "the digest has an HTML part"
    return body.get_content()


def _links(msg: EmailMessage, base_url: str) -> list[str]:
    """Every link of the message's HTML (and text) part that points at the service."""
    text = _html(msg) if msg.get_body(("html",)) else msg.get_body(("plain",)).get_content()
    found = [lxml.html.fromstring(text).xpath("//a/@href")] if "<a" in text else []
    hrefs = [h for group in found for h in group]
    hrefs += re.findall(r"https?://[^\s<>\"']+", msg.get_body(("plain",)).get_content())
    return list(dict.fromkeys(h for h in hrefs if h.startswith(base_url)))


def _submit_form(client: httpx.Client, page: httpx.Response) -> httpx.Response:
    """Press the (only, or first) button of the page's POST form, as the reader would."""
    doc = lxml.html.fromstring(page.text)
    forms = [f for f in doc.xpath("//form") if (f.get("method") or "").lower() == "post"]
    assert forms, f"no form on {page.url}"
    form = forms[0]
    data = {i.get("name"): i.get("value") or "" for i in form.xpath(".//input[@name]")
            if i.get("type") not in ("checkbox", "radio") or i.get("checked") is not None}
    button = form.xpath(".//button[@name]")
    if button:
        data[button[0].get("name")] = button[0].get("value") or ""
    action = form.get("action") or str(page.url)
    return client.post(httpx.URL(str(page.url)).join(action), data=data)


def _login(client: httpx.Client) -> str:
    page = client.get("/login")
    token = lxml.html.fromstring(page.text).xpath("//input[@name='csrf_token']/@value")[0]
    res = client.post("/login", data={"email": STAFF, "password": PASSWORD, "csrf_token": token})
    assert res.status_code in (200, 303) and "/login" not in str(res.url), res.text[-500:]
    return token


def _approve(client: httpx.Client, count: int = 1) -> list[str]:
    """A curator approves `count` queued items through the curation page; returns their ids."""
    page = client.get("/curation")
    assert page.status_code == 200
    doc = lxml.html.fromstring(page.text)
    ids = doc.xpath("//input[@name='ids']/@value")[:count]
    assert ids, "the curation queue has items"
    token = doc.xpath("//input[@name='csrf_token']/@value")[0]
    res = client.post("/curation/decide", data={"action": "approve", "ids": ids, "csrf_token": token})
    assert res.status_code == 200 and "done=" in str(res.url), res.text[-500:]
    return ids


# --- the journey ------------------------------------------------------------------------------------------------
def test_publication_to_inbox_to_click_to_unsubscribe(deployment: Deployment) -> None:
    dep = deployment
    dep.cli("org", "add", "Acme Apparel", "--outlet", "East outlet")
    dep.cli("contact", "add", READER, "--org", "Acme Apparel", "--name", "Bea Buyer", "--tz", "Asia/Shanghai")
    dep.cli("profile", "add", str(SAMPLES / "profiles.toml"))

    # double opt-in by mail: the subscription is active only after the reader confirms
    dep.cli("subscription", "add", "--contact", READER, "--profile", "garments", "--frequency", "daily")
    (confirmation,) = dep.mails_to(READER)
    assert "East outlet" in confirmation.get_body(("plain",)).get_content()
    with httpx.Client(follow_redirects=True, timeout=30) as reader:
        (confirm_link,) = [u for u in _links(confirmation, dep.base_url) if "/confirm" in u]
        page = reader.get(confirm_link)
        assert page.status_code == 200
        assert _submit_form(reader, page).status_code == 200

    # cycle 1: harvest -> match -> queue; nothing approved yet, so no digest, and run-once says why
    stages = dep.run_once()
    assert stages["harvest"]["status"] == "ok" and stages["harvest"]["counts"]["indexed"] > 0
    assert stages["match"]["counts"]["matches"] > 0 and stages["curate"]["counts"]["queued"] > 0
    assert stages["deliver"]["status"] == "ok" and stages["deliver"]["counts"]["sent"] == 0
    assert any("nothing approved" in n or "first digest due" in n for n in stages["deliver"]["notes"]), \
        stages["deliver"]["notes"]

    # a curator approves one item in the web app; staff sends the new subscription's first digest at once
    with httpx.Client(base_url=dep.base_url, follow_redirects=True, timeout=60) as staff:
        _login(staff)
        _approve(staff, 1)
    sent = dep.cli("digest", "send", "--subscription", "1")
    assert "sent 1" in sent.stdout, sent.stdout
    (digest,) = [m for m in dep.mails_to(READER) if m is not confirmation]
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = str(digest["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    assert one_click.startswith(f"{dep.base_url}/unsubscribe?token=")

    # the reader follows every link of the digest
    links = _links(digest, dep.base_url)
    feedback = [u for u in links if "/feedback" in u]
    assert len(feedback) >= 2 and any("/manage" in u for u in links), links
    with httpx.Client(follow_redirects=True, timeout=30) as reader:
        for url in links:
            res = reader.get(url)
            assert res.status_code == 200, (url, res.status_code, res.text[-300:])
        status = dep.cli("subscription", "list").stdout
        assert "active" in status  # a GET changes nothing (mail scanners follow links)
        recorded = _submit_form(reader, reader.get(feedback[0]))
        assert recorded.status_code == 200
    with standalone_match_store(dep.database_url) as store:
        judged = store.feedback("garments")
    assert list(judged.values()) == [True], judged  # the reader's "relevant", on the profile it came from

    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click to the List-Unsubscribe URL, twice is fine
    for _ in range(2):
        res = httpx.post(one_click, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        assert res.status_code == 200, res.text[-500:]
    assert "unsubscribed" in dep.cli("subscription", "list").stdout

    # another approved item and the scheduled cycle (APScheduler on its persistent store): nothing for the reader
    with httpx.Client(base_url=dep.base_url, follow_redirects=True, timeout=60) as staff:
        _login(staff)
        page = staff.get("/curation")
        if lxml.html.fromstring(page.text).xpath("//input[@name='ids']/@value"):
            _approve(staff, 1)
    before = len(dep.mails_to(READER))
    _scheduled_cycle(dep)
    assert len(dep.mails_to(READER)) == before


def _scheduled_cycle(dep: Deployment) -> None:
    """Run the scheduler's cycle job once: its stored next run time is moved into the past (as after downtime),
    then the real scheduler process starts, runs the missed cycle once, and is stopped with SIGTERM."""
    code = f"""
import os, sys, time, json
from datetime import timedelta
from pathlib import Path
from patentsift.config import load_config
from patentsift.pipeline import cycle_log
from patentsift.scheduler import JOB_ID, build_scheduler, job_store, sync_job
cfg = load_config()
sync_job(cfg)
with job_store(cfg) as store:
    job = store.lookup_job(JOB_ID)
    job._modify(next_run_time=job.next_run_time - timedelta(days=1))
    store.update_job(job)
before = len(cycle_log(cfg))
scheduler = build_scheduler(cfg)
scheduler.start()
deadline = time.monotonic() + {TIMEOUT}
while len(cycle_log(cfg)) == before and time.monotonic() < deadline:
    time.sleep(0.5)
scheduler.shutdown(wait=True)
print(json.dumps(cycle_log(cfg)[-1]))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=dep.root, env=dep.env, capture_output=True, text=True,
                          timeout=TIMEOUT + 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["deliver"]["status"] == "ok", stages["deliver"]
