"""The directory of an outlet's people: organizations, contacts and staff with their counts, filtered by outlet in
SQL (shared by the web lists and the CLI `list` commands; pure reads, no commit)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from subscribers.models import Contact, Organization, Outlet, StaffUser, Subscription


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def organization_rows(session: Session, outlet_ids: Collection[int] | None,
                      text: str = "") -> list[dict[str, Any]]:
    """Organizations (with their outlet, contact and active subscription counts) of these outlets (None: all);
    `text` keeps those whose name, or one of whose contacts' name or address, contains it."""
    contacts = (select(Contact.organization_id, func.count(Contact.id).label("n"))
                .group_by(Contact.organization_id).subquery())
    active = (select(Contact.organization_id, func.count(Subscription.id).label("n"))
              .join(Subscription, Subscription.contact_id == Contact.id).where(Subscription.status == "active")
              .group_by(Contact.organization_id).subquery())
    q = (select(Organization, Outlet.name, func.coalesce(contacts.c.n, 0), func.coalesce(active.c.n, 0))
         .join(Outlet, Outlet.id == Organization.outlet_id)
         .outerjoin(contacts, contacts.c.organization_id == Organization.id)
         .outerjoin(active, active.c.organization_id == Organization.id)
         .order_by(Outlet.name, Organization.name, Organization.id))
    if outlet_ids is not None:
        q = q.where(Organization.outlet_id.in_(list(outlet_ids)))
    if text:
        pattern = _like(text)
        matching = select(Contact.organization_id).where(
            or_(Contact.name.ilike(pattern, escape="\\"), Contact.email.ilike(pattern, escape="\\")))
        q = q.where(or_(Organization.name.ilike(pattern, escape="\\"), Organization.id.in_(matching)))
    return [{"id": org.id, "name": org.name, "outlet": outlet, "outlet_id": org.outlet_id, "contacts": n_contacts,
             "active_subscriptions": n_active, "created_at": org.created_at}
            for org, outlet, n_contacts, n_active in session.execute(q)]


def contact_rows(session: Session, outlet_ids: Collection[int] | None, text: str = "") -> list[dict[str, Any]]:
    """Contacts of these outlets' organizations (None: all), with their subscription counts; `text` keeps those
    whose name, address or organization contains it."""
    subs = (select(Subscription.contact_id, func.count(Subscription.id).label("n"),
                   func.sum(case((Subscription.status == "active", 1), else_=0)).label("active"))
            .group_by(Subscription.contact_id).subquery())
    q = (select(Contact, Organization.name, Outlet.name, func.coalesce(subs.c.n, 0),
                func.coalesce(subs.c.active, 0))
         .join(Organization, Organization.id == Contact.organization_id)
         .join(Outlet, Outlet.id == Organization.outlet_id)
         .outerjoin(subs, subs.c.contact_id == Contact.id)
         .order_by(Outlet.name, Organization.name, Contact.email, Contact.id))
    if outlet_ids is not None:
        q = q.where(Organization.outlet_id.in_(list(outlet_ids)))
    if text:
        pattern = _like(text)
        q = q.where(or_(Contact.name.ilike(pattern, escape="\\"), Contact.email.ilike(pattern, escape="\\"),
                        Organization.name.ilike(pattern, escape="\\")))
    return [{"id": c.id, "email": c.email, "name": c.name, "organization": org, "organization_id": c.organization_id,
             "outlet": outlet, "language": c.language, "timezone": c.timezone, "flagged": c.flagged,
             "flag_reason": c.flag_reason, "subscriptions": int(n), "active_subscriptions": int(active or 0)}
            for c, org, outlet, n, active in session.execute(q)]


def staff_rows(session: Session, outlet_ids: Collection[int] | None) -> list[dict[str, Any]]:
    """Staff users of these outlets (None: all), without anything secret."""
    q = (select(StaffUser, Outlet.name).join(Outlet, Outlet.id == StaffUser.outlet_id)
         .order_by(Outlet.name, StaffUser.email))
    if outlet_ids is not None:
        q = q.where(StaffUser.outlet_id.in_(list(outlet_ids)))
    return [{"id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active, "outlet": outlet,
             "outlet_id": u.outlet_id, "created_at": u.created_at} for u, outlet in session.execute(q)]
