"""Who an outlet works with and who works there: the organizations and contacts list (`/organizations`), the staff
list (`/staff`), and the navigation bar's outlet name (the `nav_outlet` template global, used by base.html).

Staff see their own outlet's rows only (filtered in SQL); an admin sees every outlet or one (`?outlet_id=`). Staff
asking for another outlet get 404, as for any object outside their outlet. Adding organizations and contacts stays
on the subscriptions page (routes_subscriptions.py); these pages link there.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from patentsift.web.auth import CurrentUser, visible_outlet_ids
from patentsift.web.deps import get_session, templates
from subscribers.directory import contact_rows, organization_rows, staff_rows
from subscribers.models import Outlet, StaffUser

router = APIRouter(include_in_schema=False)
DbSession = Annotated[Session, Depends(get_session)]
MAX_FILTER = 200  # characters of the text filter


# --- the navigation bar's outlet name ---------------------------------------------------------------------------
def nav_outlet(request: Request) -> str:
    """The logged-in user's outlet name for the navigation bar ('' without a user), read once per request in a
    short read-only session of its own (error pages render after the route's session rolled back)."""
    user = getattr(request.state, "user", None)
    if user is None:
        return ""
    cached = getattr(request.state, "nav_outlet", None)
    if cached is not None:
        return str(cached)
    with request.app.state.system.database.session() as s:
        name = s.scalar(select(Outlet.name).where(Outlet.id == user.outlet_id)) or ""
    request.state.nav_outlet = name
    return name


templates.env.globals["nav_outlet"] = nav_outlet


# --- queries (visibility in SQL) ------------------------------------------------------------------------------
def _outlets(session: Session, user: StaffUser, outlet_id: int | None) -> Collection[int] | None:
    """The outlets a list covers: staff their own (another one: 404); an admin all (None) or the one asked for."""
    visible = visible_outlet_ids(user)
    if outlet_id is None:
        return visible
    if (visible is not None and outlet_id not in visible) or session.get(Outlet, outlet_id) is None:
        raise HTTPException(404, f"no outlet with id {outlet_id}")
    return frozenset({outlet_id})


def _admin_outlets(session: Session, user: StaffUser) -> list[Outlet]:
    return list(session.scalars(select(Outlet).order_by(Outlet.name))) if visible_outlet_ids(user) is None else []


# --- pages ----------------------------------------------------------------------------------------------------
@router.get("/organizations")
def organizations_page(request: Request, user: CurrentUser, session: DbSession, outlet_id: int | None = None,
                       q: Annotated[str, Query(max_length=MAX_FILTER)] = "") -> Response:
    outlets = _outlets(session, user, outlet_id)
    text = q.strip()
    return templates.TemplateResponse(request, "directory.html", {
        "organizations": organization_rows(session, outlets, text), "contacts": contact_rows(session, outlets, text),
        "q": text, "outlet_id": outlet_id, "outlets": _admin_outlets(session, user)})


@router.get("/staff")
def staff_page(request: Request, user: CurrentUser, session: DbSession, outlet_id: int | None = None) -> Response:
    outlets = _outlets(session, user, outlet_id)
    return templates.TemplateResponse(request, "staff.html", {
        "staff": staff_rows(session, outlets), "outlet_id": outlet_id, "outlets": _admin_outlets(session, user)})
