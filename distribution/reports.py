"""Work-account reports: per outlet and per organization, for a period, what the service did.

Figures: documents harvested (HarvestState: the documents stored by files finished in the period, each
publication once, skipped content left out; shared by every outlet, so on the total row only), matches
(matching store: matches of the profiles an organization's subscriptions follow), items selected (approved review
items), digests sent and failed (deliveries), unsubscribes (consent events). CSV through the csv module; the
monthly charts and the HTML page in distribution/charts.py.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

MEASURES = ("harvested", "matches", "selected", "sent", "failed", "unsubscribes")
LABELS = {"harvested": "Documents harvested", "matches": "Matches", "selected": "Items selected",
          "sent": "Digests sent", "failed": "Digests failed", "unsubscribes": "Unsubscribes"}


@dataclass
class Figures:
    harvested: int | None = None  # None where the figure does not apply (outlet and organization rows)
    matches: int = 0
    selected: int = 0
    sent: int = 0
    failed: int = 0
    unsubscribes: int = 0


@dataclass
class Row:
    level: str  # total | outlet | organization
    outlet: str = ""
    organization: str = ""
    figures: Figures = field(default_factory=Figures)


@dataclass
class Report:
    start: date
    end: date  # inclusive
    outlet: str | None
    rows: list[Row]
    monthly: dict[str, Figures]  # "YYYY-MM" -> figures of the selection (all outlets or the one asked for)


class UnknownOutlet(ValueError):
    pass


def _utc(dt: datetime | str | None) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def months(start: date, end: date) -> list[str]:
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def harvested_by_file(state_path: Path | None) -> list[tuple[datetime, int]]:
    """(done_at, documents) of every finished file in the harvest state, read-only.

    Documents, not files, and each publication once: a publication stored from several files (an OPS
    bibliographic response, then its claims and description) counts with the first file that stored it. Skipped
    content (sequence listings, search results that only name publications) and rejected documents do not count.
    Files harvested before the state recorded document ids count their stored positions.
    """
    if state_path is None or not Path(state_path).exists():
        return []
    db = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = db.execute("SELECT key, done_at, documents FROM files WHERE status = 'done' AND done_at IS NOT NULL"
                          " ORDER BY done_at, key").fetchall()
        ids: dict[str, set[str]] = defaultdict(set)
        if "stored_documents" in tables:
            for key, doc_id in db.execute("SELECT key, id FROM stored_documents"):
                ids[key].add(doc_id)
        out: list[tuple[datetime | None, int]] = []
        seen: set[str] = set()
        for key, at, n in rows:
            if key in ids:
                n = len(ids[key] - seen)
                seen |= ids[key]
            out.append((_utc(at), n))
        return out  # type: ignore[return-value]
    finally:
        db.close()


def build_report(session: Session, start: date, end: date, *, outlet: str | None = None,
                 harvest_state: Path | None = None) -> Report:
    """Figures for [start, end] (whole UTC days) per outlet and organization, with monthly totals."""
    from distribution.models import Delivery, ReviewItem
    from matching.store import MatchRow
    from subscribers.models import ConsentEvent, Contact, InterestProfile, Organization, Outlet, Subscription

    lo = datetime.combine(start, time.min, UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, UTC)

    def inside(at: datetime | str | None) -> datetime | None:
        at = _utc(at)
        return at if at is not None and lo <= at < hi else None

    outlets = {o.id: o.name for o in session.scalars(select(Outlet))}
    if outlet is not None and outlet not in outlets.values():
        raise UnknownOutlet(f"no outlet named {outlet!r}; known: {', '.join(sorted(outlets.values())) or 'none'}")
    orgs = {o.id: (o.outlet_id, o.name) for o in session.scalars(select(Organization))
            if outlet is None or outlets[o.outlet_id] == outlet}
    sub_org: dict[int, int] = {}
    org_profiles: dict[int, set[str]] = defaultdict(set)
    for sub_id, org_id, names in session.execute(
            select(Subscription.id, Contact.organization_id, Subscription.profile_names)
            .join(Contact, Subscription.contact_id == Contact.id)):
        if org_id in orgs:
            sub_org[sub_id] = org_id
            org_profiles[org_id].update(names or [])

    per_org: dict[int, Figures] = {o: Figures() for o in orgs}
    per_outlet: dict[int, Figures] = {o: Figures() for o in {v[0] for v in orgs.values()}}
    if outlet is not None:
        per_outlet.setdefault(next(k for k, v in outlets.items() if v == outlet), Figures())
    monthly = {m: Figures(harvested=0) for m in months(start, end)}
    total = Figures(harvested=0)

    def count(measure: str, sub_id: int, at: datetime) -> None:
        org_id = sub_org.get(sub_id)
        if org_id is None:
            return
        for figs in (per_org[org_id], per_outlet[orgs[org_id][0]], monthly[at.strftime("%Y-%m")], total):
            setattr(figs, measure, getattr(figs, measure) + 1)

    for sub_id, at in session.execute(select(ReviewItem.subscription_id, ReviewItem.decided_at)
                                      .where(ReviewItem.status == "approved")):
        if (at := inside(at)) is not None:
            count("selected", sub_id, at)
    for sub_id, status, created, sent in session.execute(
            select(Delivery.subscription_id, Delivery.status, Delivery.created_at, Delivery.sent_at)
            .where(Delivery.status.in_(("sent", "failed_permanent")))):
        at = inside(sent if status == "sent" else created)
        if at is not None:
            count("sent" if status == "sent" else "failed", sub_id, at)
    for sub_id, at in session.execute(select(ConsentEvent.subscription_id, ConsentEvent.at)
                                      .where(ConsentEvent.kind == "unsubscribed")):
        if (at := inside(at)) is not None:
            count("unsubscribes", sub_id, at)
    _count_matches(session, select(MatchRow.id, InterestProfile.name, MatchRow.created_at)
                   .join(InterestProfile, MatchRow.profile_id == InterestProfile.id), inside, orgs, org_profiles,
                   per_org, per_outlet, monthly, total)
    for done_at, n in harvested_by_file(harvest_state):
        if (at := inside(done_at)) is not None:
            total.harvested = (total.harvested or 0) + n
            m = monthly[at.strftime("%Y-%m")]
            m.harvested = (m.harvested or 0) + n

    rows = [Row("total", outlet or "", "", total)]
    for oid in sorted(per_outlet, key=lambda i: outlets[i]):
        rows.append(Row("outlet", outlets[oid], "", per_outlet[oid]))
        for gid in sorted((g for g in orgs if orgs[g][0] == oid), key=lambda g: orgs[g][1]):
            rows.append(Row("organization", outlets[oid], orgs[gid][1], per_org[gid]))
    return Report(start, end, outlet, rows, monthly)


def _count_matches(session: Session, query: Any, inside: Any, orgs: dict[int, tuple[int, str]],
                   org_profiles: dict[int, set[str]], per_org: dict[int, Figures], per_outlet: dict[int, Figures],
                   monthly: dict[str, Figures], total: Figures) -> None:
    """A match counts once for every organization following its profile, once per outlet and once in total."""
    for _match_id, profile, created in session.execute(query):
        at = inside(created)
        if at is None:
            continue
        followers = [g for g in orgs if profile in org_profiles.get(g, ())]
        if not followers:
            continue
        for g in followers:
            per_org[g].matches += 1
        for oid in {orgs[g][0] for g in followers}:
            per_outlet[oid].matches += 1
        monthly[at.strftime("%Y-%m")].matches += 1
        total.matches += 1


# --- output -------------------------------------------------------------------------------------------------
CSV_HEADER = ["level", "month", "outlet", "organization", *MEASURES]


def _values(figs: Figures) -> list[Any]:
    return ["" if getattr(figs, m) is None else getattr(figs, m) for m in MEASURES]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell spreadsheets will not run: text starting with = + - @ (or a tab or CR) gets a leading `'`, so an
    organization named `=HYPERLINK(...)` opens as text, not as a formula (OWASP "CSV injection"). Numbers stay."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_rows(report: Report) -> list[list[Any]]:
    """The header, one row per total/outlet/organization, then one per month; every cell escaped (csv_cell)."""
    rows: list[list[Any]] = [list(CSV_HEADER)]
    rows += [[r.level, "", r.outlet, r.organization, *_values(r.figures)] for r in report.rows]
    rows += [["month", month, report.outlet or "", "", *_values(figs)] for month, figs in report.monthly.items()]
    return [[csv_cell(v) for v in row] for row in rows]


def csv_text(report: Report) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(csv_rows(report))
    return buf.getvalue()


def write_csv(report: Report, path: Path) -> None:
    """One row per total/outlet/organization, then one per month."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(csv_rows(report))


def figures_dict(figs: Figures) -> dict[str, int | None]:
    return {f.name: getattr(figs, f.name) for f in fields(figs)}
