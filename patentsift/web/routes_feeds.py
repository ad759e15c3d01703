"""A profile's Atom feed: its latest matched documents (those a curator rejected left out), at a signed URL
(distribution/urls.py: no login, the token is the credential, like the unsubscribe links); staff see the URL on
/profiles/{name}/feed and in /api/profiles/{name}/feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution import urls
from distribution.feeds import FEED_ITEMS, FeedEntry, atom_feed
from distribution.models import ReviewItem
from index.base import Index
from patentsift.web.auth import CurrentUser
from patentsift.web.deps import get_index, get_session, language, templates
from patentsift.web.routes_profiles import Store, can_read_profile
from subscribers import profile_rows
from subscribers.models import InterestProfile, StaffUser

router = APIRouter()
DbSession = Annotated[Session, Depends(get_session)]
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"


def _secret(request: Request) -> str:
    return str(request.app.state.system.secret)


def _base_url(request: Request) -> str:
    return str(request.app.state.cfg.smtp.base_url)


def _row(session: Session, user: StaffUser | None, name: str) -> InterestProfile:
    """The stored profile `name`; with a `user`, only one they may read (another outlet's answers 404)."""
    row = profile_rows.get_row(session, name)
    if row is None or (user is not None and not can_read_profile(user, profile_rows.to_profile(row))):
        raise HTTPException(404, f"no profile named {name!r}")
    return row


def _entries(session: Session, store: Store, index: Index, name: str) -> list[FeedEntry]:
    """The profile's matches, newest first, without documents every curator decision on rejected."""
    decided: dict[str, set[str]] = {}
    for doc_id, status in session.execute(select(ReviewItem.doc_id, ReviewItem.status)
                                          .where(ReviewItem.profile_name == name)):
        decided.setdefault(doc_id, set()).add(status)
    out: list[FeedEntry] = []
    seen: set[str] = set()
    for m in store.matches(name, session=session):
        if m.doc_id in seen or decided.get(m.doc_id) == {"rejected"}:
            continue
        seen.add(m.doc_id)
        doc = index.get(m.doc_id)
        if doc is not None:
            out.append(FeedEntry(doc, m.created_at, m.score))
        if len(out) >= FEED_ITEMS:
            break
    return out


def profile_feed_url(request: Request, row: InterestProfile) -> str:
    return urls.feed_url(_base_url(request), _secret(request), row.id, row.name)


@router.get(urls.FEED_PATH, include_in_schema=False)
def profile_feed(request: Request, token: str, session: DbSession, store: Store,
                 index: Annotated[Index, Depends(get_index)]) -> Response:
    """The Atom feed a signed token names; a tampered token or a deleted profile answers 404."""
    named = urls.read_feed_token(_secret(request), token)
    row = profile_rows.get_row(session, named[1]) if named else None
    if named is None or row is None or row.id != named[0]:
        raise HTTPException(404, "no such feed")
    base = _base_url(request).rstrip("/")
    spec = profile_rows.to_profile(row)
    xml = atom_feed(feed_id=f"{base}/feeds/profile/{row.id}", self_url=profile_feed_url(request, row),
                    title=f"patentsift: {row.name}", subtitle=spec.description,
                    entries=_entries(session, store, index, row.name),
                    document_url=lambda doc_id: f"{base}/documents/{doc_id}", lang=language(request))
    return Response(xml, media_type=ATOM_MEDIA_TYPE)


class FeedOut(BaseModel):
    profile: str
    url: str


@router.get("/api/profiles/{name}/feed", response_model=FeedOut, tags=["profiles"])
def api_feed_url(request: Request, name: str, user: CurrentUser, session: DbSession) -> FeedOut:
    """The signed address of a profile's Atom feed (a profile of the user's outlet, or a shared one)."""
    row = _row(session, user, name)
    return FeedOut(profile=row.name, url=profile_feed_url(request, row))


@router.get("/profiles/{name}/feed", include_in_schema=False)
def feed_page(request: Request, name: str, user: CurrentUser, session: DbSession, store: Store,
              index: Annotated[Index, Depends(get_index)]) -> Response:
    """The feed's address for staff, with what it holds now."""
    row = _row(session, user, name)
    return templates.TemplateResponse(request, "profile_feed.html", {
        "name": row.name, "feed_url": profile_feed_url(request, row),
        "entries": _entries(session, store, index, row.name)})
