"""A real patentsift installation for the end-to-end tests: the shipped USPTO samples in an embedded index, the
shared SQLite database with an outlet, a staff user, an organization, a contact with a confirmed subscription to
a sample profile, one matching run, and its matches queued for review."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distribution.curation import enqueue_new_matches
from harvest.ingest import parse_path
from index.model import PatentDocument
from patentsift.config import Config
from patentsift.wiring import System
from subscribers import service
from subscribers.profiles import load_profiles_toml, validate_profile
from tests.conftest import SAMPLE_DATA

EMAIL, PASSWORD, STAFF_NAME = "curator@east.example", "correct horse battery", "Ada Curator"
PROFILE = "garments"  # the sample profile the subscription follows (the samples hold gloves, helmets, vests)


@dataclass(frozen=True)
class World:
    cfg: Config
    subscription_id: int
    queued: int  # review items waiting after the match run


def sample_documents() -> list[PatentDocument]:
    return list(parse_path(SAMPLE_DATA / "uspto"))  # sequence listings and other rejects are skipped


def build_world(data_dir: Path) -> World:
    """Seed `data_dir` (index, database, profiles, matches, review queue) and return its configuration."""
    cfg = Config(data_dir=data_dir, secret_key="e2e-" + "s" * 44)
    with System(cfg) as system:  # built as every entry point builds it
        report = system.index.upsert(sample_documents())
        assert not report.failed, report.failed
        with system.database.begin() as s:
            outlet = service.create_outlet(s, "East outlet")
            service.create_staff(s, outlet.id, EMAIL, PASSWORD, name=STAFF_NAME)
            org = service.create_organization(s, outlet.id, "Acme Apparel")
            contact = service.add_contact(s, org.id, "buyer@acme.example", name="Bea Buyer")
        for profile in load_profiles_toml(SAMPLE_DATA / "profiles.toml"):
            system.match_store.save_profile(validate_profile(profile))
        # lexical, class and applicant signals only: no embedding model is loaded for the browser tests
        system.matching_engine(dense=False).run()
        with system.database.begin() as s:
            sub, token = service.subscribe(s, system.secret, contact.id, [PROFILE])
            service.confirm(s, system.secret, token)
            sub_id = sub.id
        with system.database.begin() as s:
            queued = len(enqueue_new_matches(s, system.match_store))
    return World(cfg, sub_id, queued)
