"""A week of curation as an outlet lives it, for tests/e2e/test_curation_week.py: the shipped USPTO samples in an
embedded index, two outlets, three organizations, seven contacts with confirmed subscriptions to four profiles,
one real matching run and its matches queued (several hundred review items), and one digest already mailed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from distribution.curation import enqueue_new_matches
from distribution.models import Delivery, ReviewItem, SentItem
from patentsift.config import Config
from patentsift.wiring import System
from subscribers import service
from subscribers.profiles import Profile, validate_profile
from tests.e2e.world import sample_documents

EMAIL, PASSWORD = "week@north.example", "a busy week of patents 13"
OTHER_EMAIL = "staff@south.example"
SENT_AT = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
PROFILES = [  # broad on purpose: a busy week
    Profile(name="wearables", description="Garments, gloves, helmets, protective clothing and wearable apparel",
            query="garment OR glove OR helmet OR apparel OR jacket OR vest OR clothing OR wearable",
            classes=["A41", "A42"], threshold=0.05, max_items=500),
    Profile(name="medical", description="Medical devices, surgery, implants, catheters and patient care",
            query="medical OR surgical OR patient OR catheter OR implant OR body OR skin",
            classes=["A61"], threshold=0.05, max_items=500),
    Profile(name="electronics", description="Semiconductors, circuits, signals and electronic devices",
            query="semiconductor OR circuit OR signal OR electrode OR layer OR electric",
            classes=["H01", "H02", "H03", "H04", "G06"], threshold=0.05, max_items=500),
    Profile(name="mechanics", description="Machines, vehicles, tools and mechanical assemblies",
            query="machine OR vehicle OR tool OR assembly OR member OR housing OR shaft",
            classes=["B", "F"], threshold=0.05, max_items=500),
]
# outlet -> organization -> contacts (email, language) -> profiles each follows
CUSTOMERS = {
    "North outlet": {
        "Acme Apparel": [("buyer@acme.example", "en", ["wearables", "medical"]),
                         ("rd@acme.example", "zh", ["wearables", "mechanics"]),
                         ("ip@acme.example", "en", ["wearables", "electronics"])],
        "Borealis Devices": [("ip@borealis.example", "zh", ["medical", "electronics"]),
                             ("lab@borealis.example", "en", ["electronics", "mechanics"])],
    },
    "South outlet": {
        "Cape Machines": [("ip@cape.example", "en", ["mechanics", "wearables"]),
                          ("cto@cape.example", "zh", ["medical"])],
    },
}


@dataclass(frozen=True)
class Week:
    cfg: Config
    north: int  # outlet ids
    south: int
    items: int  # review items of the North outlet
    sent_item: int  # a North item mailed already


def build_week(data_dir: Path) -> Week:
    cfg = Config(data_dir=data_dir, secret_key="week-" + "w" * 44)
    with System(cfg) as system:
        assert not system.index.upsert(sample_documents()).failed
        with system.database.begin() as s:
            outlets = {name: service.create_outlet(s, name).id for name in CUSTOMERS}
            service.create_staff(s, outlets["North outlet"], EMAIL, PASSWORD, name="Nora North")
            service.create_staff(s, outlets["South outlet"], OTHER_EMAIL, PASSWORD, name="Sam South")
            contacts = []
            for outlet, orgs in CUSTOMERS.items():
                for org_name, people in orgs.items():
                    org = service.create_organization(s, outlets[outlet], org_name)
                    for email, lang, profiles in people:
                        contacts.append((service.add_contact(s, org.id, email, language=lang).id, profiles))
        for profile in PROFILES:
            system.match_store.save_profile(validate_profile(profile))
        system.matching_engine(dense=False).run()  # lexical, class and applicant signals: no model to load
        with system.database.begin() as s:
            for contact_id, profiles in contacts:
                _, token = service.subscribe(s, system.secret, contact_id, profiles)
                service.confirm(s, system.secret, token)
        with system.database.begin() as s:
            enqueue_new_matches(s, system.match_store)
        with system.database.begin() as s:  # last week's digest of one North subscription went out
            north = select(ReviewItem).order_by(ReviewItem.score.desc(), ReviewItem.id)
            item = s.scalars(north.where(ReviewItem.subscription_id == 1)).first()
            assert item is not None
            item.status, item.decided_by, item.decided_at = "approved", EMAIL, SENT_AT
            row = Delivery(subscription_id=item.subscription_id, period_key="weekly:2026-W09",
                           idempotency_key=f"{item.subscription_id}:weekly:2026-W09", message_id="<w09@week.test>",
                           status="sent", item_ids=[item.id], created_at=SENT_AT, sent_at=SENT_AT)
            s.add(row)
            s.flush()
            s.add(SentItem(subscription_id=item.subscription_id, item_key=item.doc_id, delivery_id=row.id,
                           sent_at=SENT_AT))
            sent_item = item.id
        with system.database.begin() as s:
            from distribution.curation import queue

            items = len(queue(s, None, None, outlet_ids=[outlets["North outlet"]]))
    return Week(cfg, outlets["North outlet"], outlets["South outlet"], items, sent_item)
