"""The web app's test site, shared by the web tests: two outlets with their staff, organizations, contacts and
confirmed subscriptions over an embedded index of real documents with stored matches queued for curation.

Its fixtures (docs, site_template, site, client) are registered in tests/integration/conftest.py; a module that
needs another site defines its own `site_template`.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from distribution.curation import enqueue_new_matches, queue
from index.model import PatentDocument
from patentsift.config import Config
from patentsift.db import open_database
from patentsift.web.app import create_app
from subscribers import service
from subscribers.profiles import Profile
from tests.integration.dist_support import QUERY, SECRET, load_documents, make_world

PASSWORD = "correct horse battery"


@dataclass
class Site:
    cfg: Config
    east_sub: int
    west_sub: int
    east_org: int
    west_org: int
    east_contact: int
    west_contact: int
    west_outlet: int
    east_items: list[int]
    west_items: list[int]


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    return load_documents(shared_patents)


def build_site(tmp: Path, docs: list[PatentDocument]) -> Site:
    """Two outlets (East: staff; West: staff and an admin), one organization, contact and confirmed subscription
    each, a private profile of West, and the stored matches queued for curation."""
    cfg = Config(data_dir=tmp, secret_key=SECRET)
    world = make_world(tmp, docs)  # data_dir/index.sqlite and data_dir/patentsift.sqlite: the app's own files
    try:
        with open_database(cfg) as db, db.begin() as s:
            east, west = service.create_outlet(s, "East"), service.create_outlet(s, "West")
            assert west.id == 2
            world.store.save_profile(Profile(name="west-private", owner="outlet:2", outlet_id=2,
                                             description="west only", query=QUERY), session=s)
            service.create_staff(s, east.id, "staff@east.example", PASSWORD, name="Ada")
            service.create_staff(s, west.id, "staff@west.example", PASSWORD, name="Wes")
            service.create_staff(s, west.id, "admin@west.example", PASSWORD, role="admin")
            ids: dict[str, tuple[int, int, int]] = {}
            for outlet, profile in ((east, "semis"), (west, "general")):
                org = service.create_organization(s, outlet.id, f"{outlet.name} Works")
                contact = service.add_contact(s, org.id, f"buyer@{outlet.name.lower()}.example", language="zh")
                sub, token = service.subscribe(s, SECRET, contact.id, [profile])
                service.confirm(s, SECRET, token)
                ids[outlet.name] = (org.id, contact.id, sub.id)
        with open_database(cfg) as db, db.session() as s:
            enqueue_new_matches(s, world.store)
            s.commit()  # the caller commits (db/__init__.py)
            items = {name: [i.id for i in queue(s, ids[name][2])] for name in ids}
    finally:
        world.close()
    assert items["East"] and items["West"]
    return Site(cfg, ids["East"][2], ids["West"][2], ids["East"][0], ids["West"][0], ids["East"][1],
                ids["West"][1], 2, items["East"], items["West"])


@pytest.fixture(scope="module")
def site_template(tmp_path_factory: pytest.TempPathFactory, docs: list[PatentDocument]) -> Site:
    return build_site(tmp_path_factory.mktemp("site"), docs)


def copy_site(template: Site, tmp: Path) -> Site:
    """A fresh copy of the built site's data directory (each test changes its own)."""
    shutil.copytree(template.cfg.data_dir, tmp / "data")
    return dataclasses.replace(template, cfg=Config(data_dir=tmp / "data", secret_key=SECRET))


@pytest.fixture
def site(site_template: Site, tmp_path: Path) -> Site:
    return copy_site(site_template, tmp_path)


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.cfg, testing=True)) as c:
        yield c


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


def login(client: TestClient, email: str = "staff@east.example") -> str:
    """Log in; returns the session's CSRF token (for forms and the X-CSRF-Token header)."""
    token = csrf_from(client.get("/login").text)
    res = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token,
                                      "next": "/profiles"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    return csrf_from(client.get("/profiles").text)
