"""Interest profiles in the database (`sub_profiles`): save, read, list what an outlet may see, delete.

Commit rule (db/__init__.py): these functions work in the caller's session and flush; the caller commits.
Visibility is a SQL condition: an outlet's staff see their outlet's profiles and the service-wide ones
(outlet_id NULL); `outlet_ids=None` means every profile (administrators, the CLI, matching).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from subscribers.models import InterestProfile
from subscribers.profiles import Profile


def to_profile(row: InterestProfile) -> Profile:
    return Profile.from_dict({**row.spec, "outlet_id": row.outlet_id})


def _spec(profile: Profile) -> dict:
    spec = profile.to_dict()
    spec.pop("outlet_id", None)
    return spec


def visible(outlet_ids: Collection[int] | None) -> ColumnElement[bool]:
    """The SQL condition for the profiles staff of these outlets may read (None: all)."""
    if outlet_ids is None:
        return InterestProfile.id.is_not(None)
    return or_(InterestProfile.outlet_id.is_(None), InterestProfile.outlet_id.in_(list(outlet_ids)))


def get_row(s: Session, name: str) -> InterestProfile | None:
    return s.scalar(select(InterestProfile).where(InterestProfile.name == name))


def save(s: Session, profile: Profile) -> tuple[InterestProfile, bool, bool]:
    """Insert or update by name: (row, created, spec changed). The outlet of an existing profile is kept unless
    the profile names one."""
    row = get_row(s, profile.name)
    if row is None:
        row = InterestProfile(name=profile.name, outlet_id=profile.outlet_id, spec=_spec(profile))
        s.add(row)
        s.flush()
        return row, True, True
    changed = row.spec != _spec(profile)
    if changed:
        row.spec = _spec(profile)
    if profile.outlet_id is not None and profile.outlet_id != row.outlet_id:
        row.outlet_id = profile.outlet_id
    s.flush()
    return row, False, changed


def listed(s: Session, outlet_ids: Collection[int] | None = None) -> list[Profile]:
    """Profiles (those staff of `outlet_ids` may read; None: all), by name."""
    q = select(InterestProfile).where(visible(outlet_ids)).order_by(InterestProfile.name)
    return [to_profile(r) for r in s.scalars(q)]


def names_of(s: Session, names: Iterable[str], outlet_ids: Collection[int] | None = None) -> set[str]:
    """Which of `names` are profiles (visible to `outlet_ids`)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return set()
    q = select(InterestProfile.name).where(InterestProfile.name.in_(wanted), visible(outlet_ids))
    return set(s.scalars(q))


def delete(s: Session, name: str) -> bool:
    row = get_row(s, name)
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True
