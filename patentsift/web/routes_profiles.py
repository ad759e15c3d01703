"""Interest profiles: list, create, edit, delete, preview (pages and /api/profiles).

Each profile belongs to an outlet (`outlet_id`, set to the creating user's outlet): it is seen and changed only by
that outlet's staff (and admins). A profile with no outlet (made by the CLI) is shared: every staff member sees
it, only admins change it. Lists are filtered in SQL (subscribers.profile_rows.visible).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from index.base import Index
from matching.store import MatchStore, UnknownProfile
from patentsift.applicant_watch import watch_matches
from patentsift.web.auth import CurrentUser, visible_outlet_ids
from patentsift.web.deps import get_index, get_match_store, get_session, templates
from patentsift.web.profile_drafts import (
    check_profile,
    field_errors,
    preview_draft,
    query_problem,
    reader_feedback_counts,
)
from subscribers.models import StaffUser, Subscription
from subscribers.profiles import LIST_FIELDS, Profile, ProfileError, validate_profile

router = APIRouter()
log = logging.getLogger(__name__)
MAX_PREVIEW_WEEKS = 5200
MAX_WATCHED = 50  # watched applicants looked up at once


# --- shared helpers (also used by the curation and subscription routes) ----------------------------------------
Store = Annotated[MatchStore, Depends(get_match_store)]


def can_read_profile(user: StaffUser, profile: Profile) -> bool:
    return user.role == "admin" or profile.outlet_id is None or profile.outlet_id == user.outlet_id


def can_change_profile(user: StaffUser, profile: Profile) -> bool:
    return user.role == "admin" or (profile.outlet_id is not None and profile.outlet_id == user.outlet_id)


def visible_profiles(store: MatchStore, user: StaffUser) -> list[Profile]:
    return store.profiles(outlet_ids=visible_outlet_ids(user))


def _get_profile(store: MatchStore, user: StaffUser, name: str, *, change: bool = False) -> Profile:
    """The named profile if `user` may read (or, with `change`, change) it: 404 when unseen, 403 when read-only."""
    try:
        profile = store.profile(name)
    except UnknownProfile:
        profile = None
    if profile is None or not can_read_profile(user, profile):
        raise HTTPException(404, f"no profile named {name!r}")
    if change and not can_change_profile(user, profile):
        raise HTTPException(403, f"profile {name!r} is shared: only an administrator may change it")
    return profile


def name_taken(store: MatchStore, name: str) -> str | None:
    """Why `name` cannot be used for a new profile, or None. Names are unique across outlets, so the answer is
    worded alike for a profile the user can see and one of another outlet: it says neither whose nor what."""
    if name and any(p.name == name for p in store.profiles()):
        return f"the profile name {name!r} is not available: choose another"
    return None


def _split(text: str, *, lines_only: bool = False) -> list[str]:
    parts = text.splitlines() if lines_only else text.replace(",", "\n").splitlines()
    return [p.strip() for p in parts if p.strip()]


def _save(store: MatchStore, index: Index, profile: Profile) -> Profile:
    valid = validate_profile(profile, known_document=lambda pn: index.get(pn) is not None)
    store.save_profile(valid)
    return valid


def _preview(request: Request, store: MatchStore, index: Index, name: str, weeks: int) -> tuple[date, list[Any]]:
    """What the profile would have matched over the last `weeks` weeks (stores no matches), with the app's
    embedding model like the CLI; if the model cannot load, with the lexical, class and applicant signals."""
    since = date.today() - timedelta(weeks=weeks)
    engine = request.app.state.system.matching_engine()  # without a model: lexical, class and applicant signals
    return since, engine.preview(name, since)


# --- API --------------------------------------------------------------------------------------------------------
class ProfileIn(BaseModel):
    name: str
    description: str = ""
    query: str | None = None
    classes: list[str] = Field(default_factory=list)
    exclude_classes: list[str] = Field(default_factory=list)
    applicants: list[str] = Field(default_factory=list)
    seeds: list[str] = Field(default_factory=list)
    exclude_terms: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    threshold: float = 0.35
    max_items: int = 20


class ProfileOut(ProfileIn):
    owner: str = ""
    outlet_id: int | None = None  # None: a shared (service-wide) profile
    editable: bool


class PreviewMatch(BaseModel):
    doc_id: str
    title: str
    score: float
    publication_date: date | None
    why: dict[str, Any]


class PreviewOut(BaseModel):
    profile: str
    since: date
    matches: list[PreviewMatch]


def _out(user: StaffUser, p: Profile) -> ProfileOut:
    return ProfileOut(**p.to_dict(), editable=can_change_profile(user, p))


def _api_save(user: StaffUser, store: MatchStore, index: Index, body: ProfileIn, outlet_id: int | None,
              owner: str = "") -> ProfileOut:
    try:
        saved = _save(store, index, Profile(**body.model_dump(), owner=owner, outlet_id=outlet_id))
    except ProfileError as exc:
        raise HTTPException(422, {"message": str(exc), "fields": field_errors(exc)}) from None
    return _out(user, saved)


@router.get("/api/profiles", response_model=list[ProfileOut], tags=["profiles"])
def api_profiles(user: CurrentUser, store: Store) -> list[ProfileOut]:
    return [_out(user, p) for p in visible_profiles(store, user)]


@router.get("/api/profiles/{name}", response_model=ProfileOut, tags=["profiles"])
def api_profile(name: str, user: CurrentUser, store: Store) -> ProfileOut:
    return _out(user, _get_profile(store, user, name))


@router.post("/api/profiles", response_model=ProfileOut, status_code=201, tags=["profiles"])
def api_create_profile(body: ProfileIn, user: CurrentUser, store: Store,
                       index: Annotated[Index, Depends(get_index)]) -> ProfileOut:
    if (taken := name_taken(store, body.name)) is not None:
        raise HTTPException(409, taken)
    return _api_save(user, store, index, body, user.outlet_id, owner=user.email)


@router.put("/api/profiles/{name}", response_model=ProfileOut, tags=["profiles"])
def api_update_profile(name: str, body: ProfileIn, user: CurrentUser, store: Store,
                       index: Annotated[Index, Depends(get_index)]) -> ProfileOut:
    old = _get_profile(store, user, name, change=True)
    if body.name != name:
        raise HTTPException(422, "a profile cannot be renamed: create a new one")
    return _api_save(user, store, index, body, old.outlet_id, owner=old.owner)


@router.delete("/api/profiles/{name}", status_code=204, tags=["profiles"])
def api_delete_profile(name: str, user: CurrentUser, store: Store) -> Response:
    _get_profile(store, user, name, change=True)
    store.delete_profile(name)
    return Response(status_code=204)


@router.get("/api/profiles/{name}/preview", response_model=PreviewOut, tags=["profiles"])
def api_preview(request: Request, name: str, user: CurrentUser, store: Store,
                index: Annotated[Index, Depends(get_index)],
                weeks: Annotated[int, Query(ge=1, le=MAX_PREVIEW_WEEKS)] = 4) -> PreviewOut:
    _get_profile(store, user, name)
    since, matches = _preview(request, store, index, name, weeks)
    return PreviewOut(profile=name, since=since, matches=[
        PreviewMatch(doc_id=m.doc.id, title=m.doc.title() or m.doc.id, score=m.score,
                     publication_date=m.doc.publication_date, why=m.explanation.to_dict()) for m in matches])


# --- pages ------------------------------------------------------------------------------------------------------
@router.get("/profiles", include_in_schema=False)
def profiles_page(request: Request, user: CurrentUser, store: Store) -> Response:
    items = [(p, can_change_profile(user, p)) for p in visible_profiles(store, user)]
    return templates.TemplateResponse(request, "profiles.html", {"items": items})


def _edit_page(request: Request, profile: Profile, *, new: bool, errors: dict[str, list[str]] | None = None,
               preview: tuple[date, list[Any]] | None = None, weeks: int = 4, editable: bool = True,
               status: int = 200, watch: dict[str, list[Any]] | None = None,
               feedback: tuple[int, int] | None = None) -> Response:
    return templates.TemplateResponse(request, "profile_edit.html", {
        "profile": profile, "new": new, "errors": errors or {}, "preview": preview, "weeks": weeks,
        "editable": editable, "query_error": query_problem(profile.query) if errors else None,
        "watch": watch, "feedback": feedback, "max_weeks": MAX_PREVIEW_WEEKS}, status_code=status)


@router.get("/profiles/new", include_in_schema=False)
def new_profile_page(request: Request, user: CurrentUser) -> Response:
    return _edit_page(request, Profile(name=""), new=True)


@router.get("/profiles/-/applicants", include_in_schema=False)
def applicant_watch_fragment(request: Request, user: CurrentUser, index: Annotated[Index, Depends(get_index)],
                             applicants: Annotated[str, Query(max_length=10_000)] = "") -> Response:
    """The stored applicant names each watched line matches (the editor fetches it as the user types)."""
    watch = watch_matches(index, _split(applicants, lines_only=True)[:MAX_WATCHED])
    return templates.TemplateResponse(request, "_applicant_watch.html", {"watch": watch})


@router.get("/profiles/{name}", include_in_schema=False)
def edit_profile_page(request: Request, name: str, user: CurrentUser, store: Store,
                      index: Annotated[Index, Depends(get_index)], session: Annotated[Session, Depends(get_session)],
                      weeks: Annotated[int | None, Query(ge=1, le=MAX_PREVIEW_WEEKS)] = None) -> Response:
    profile = _get_profile(store, user, name)
    preview = _preview(request, store, index, name, weeks) if weeks else None
    return _edit_page(request, profile, new=False, preview=preview, weeks=weeks or 4,
                      editable=can_change_profile(user, profile), watch=watch_matches(index, profile.applicants),
                      feedback=reader_feedback_counts(session, name))


def _form_profile(name: str, outlet_id: int | None, owner: str,
                  form: dict[str, str]) -> tuple[Profile, dict[str, list[str]]]:
    """A Profile from the edit form; number fields that do not parse become field errors."""
    errors: dict[str, list[str]] = {}
    numbers: dict[str, Any] = {"threshold": 0.35, "max_items": 20}
    for key, kind in (("threshold", float), ("max_items", int)):
        raw = form.get(key, "").strip()
        if raw:
            try:
                numbers[key] = kind(raw)
            except ValueError:
                errors[key] = [f"not a number: {raw!r}"]
    lists: dict[str, Any] = {k: _split(form.get(k, ""), lines_only=k == "applicants") for k in LIST_FIELDS}
    profile = Profile(name=name.strip(), owner=owner, outlet_id=outlet_id, description=form.get("description", ""),
                      query=form.get("query") or None, **lists, **numbers)
    return profile, errors


def _form_weeks(form: dict[str, str], errors: dict[str, list[str]]) -> int:
    raw = form.get("weeks", "").strip() or "4"
    if raw.isdigit() and 1 <= int(raw) <= MAX_PREVIEW_WEEKS:
        return int(raw)
    errors.setdefault("weeks", []).append(f"a whole number of weeks from 1 to {MAX_PREVIEW_WEEKS}, got {raw!r}")
    return 4


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _submit(request: Request, store: MatchStore, index: Index, profile: Profile, errors: dict[str, list[str]],
            *, new: bool) -> Response:
    """Validate every field (also when a number or the name is wrong), save, and go to the profile; else show
    every field's errors at once."""
    valid, errors = check_profile(profile, lambda pn: index.get(pn) is not None, errors)
    if valid is not None and not errors:
        store.save_profile(valid)
        return RedirectResponse(f"/profiles/{quote(valid.name)}", status_code=303)
    return _edit_page(request, profile, new=new, errors=errors, status=422,
                      watch=watch_matches(index, profile.applicants))


def _draft_preview(request: Request, index: Index, profile: Profile, errors: dict[str, list[str]],
                   form: dict[str, str], *, new: bool, stored: bool) -> Response:
    """Preview the form as edited: its errors (a wrong name does not stop the preview) or what it would have
    matched; a fragment for the editor's fetch (`X-Fragment: 1`), else the whole page with the form as sent."""
    weeks = _form_weeks(form, errors)
    valid, errors = check_profile(profile, lambda pn: index.get(pn) is not None, errors)
    if not profile.name:
        errors.pop("name", None)  # not typed yet: the preview needs none
    preview = None
    if valid is not None and not set(errors) - {"name"}:
        since = date.today() - timedelta(weeks=weeks)
        engine = request.app.state.system.matching_engine()  # without a model: lexical, class, applicant signals
        preview = since, preview_draft(engine, valid, since, stored=stored)
    status = 200 if preview is not None else 422
    if request.headers.get("x-fragment") == "1":
        return templates.TemplateResponse(request, "_profile_preview.html", {
            "preview": preview, "errors": errors, "query_error": query_problem(profile.query) if errors else None,
            "draft": True}, status_code=status)
    return _edit_page(request, profile, new=new, errors=errors, preview=preview, weeks=weeks, status=status,
                      watch=watch_matches(index, profile.applicants))


async def _new_profile_form(request: Request, user: StaffUser, store: MatchStore
                            ) -> tuple[Profile, dict[str, list[str]], dict[str, str]]:
    """The new profile as the form gives it, its errors (a name already taken among them) and the form itself."""
    form = await _form(request)
    profile, errors = _form_profile(form.get("name", ""), user.outlet_id, user.email, form)
    if (taken := name_taken(store, profile.name)) is not None:
        errors.setdefault("name", []).append(taken)
    return profile, errors, form


@router.post("/profiles/new", include_in_schema=False)
async def create_profile(request: Request, user: CurrentUser, store: Store,
                         index: Annotated[Index, Depends(get_index)]) -> Response:
    profile, errors, _ = await _new_profile_form(request, user, store)
    return _submit(request, store, index, profile, errors, new=True)


@router.post("/profiles/new/preview", include_in_schema=False)
async def preview_new_profile(request: Request, user: CurrentUser, store: Store,
                              index: Annotated[Index, Depends(get_index)]) -> Response:
    profile, errors, form = await _new_profile_form(request, user, store)
    return await run_in_threadpool(_draft_preview, request, index, profile, errors, form, new=True, stored=False)


@router.post("/profiles/{name}", include_in_schema=False)
async def update_profile(request: Request, name: str, user: CurrentUser, store: Store,
                         index: Annotated[Index, Depends(get_index)]) -> Response:
    old = _get_profile(store, user, name, change=True)
    profile, errors = _form_profile(name, old.outlet_id, old.owner, await _form(request))
    return _submit(request, store, index, profile, errors, new=False)


@router.post("/profiles/{name}/preview", include_in_schema=False)
async def preview_profile_draft(request: Request, name: str, user: CurrentUser, store: Store,
                                index: Annotated[Index, Depends(get_index)]) -> Response:
    """Preview an edited (unsaved) version of a profile the user may read; stores nothing."""
    old = _get_profile(store, user, name)
    form = await _form(request)
    profile, errors = _form_profile(name, old.outlet_id, old.owner, form)
    return await run_in_threadpool(_draft_preview, request, index, profile, errors, form, new=False, stored=True)


def _following(session: Session, name: str) -> int:
    """How many subscriptions follow the profile (they lose it when it is deleted)."""
    return sum(1 for names in session.scalars(select(Subscription.profile_names)) if name in (names or []))


@router.get("/profiles/{name}/delete", include_in_schema=False)
def confirm_delete_page(request: Request, name: str, user: CurrentUser, store: Store,
                        session: Annotated[Session, Depends(get_session)]) -> Response:
    """Ask before deleting: what goes with the profile (its matches, feedback, and the subscriptions' link)."""
    profile = _get_profile(store, user, name, change=True)
    return templates.TemplateResponse(request, "profile_delete.html", {
        "profile": profile, "following": _following(session, name)})


@router.post("/profiles/{name}/delete", include_in_schema=False)
async def delete_profile(request: Request, name: str, user: CurrentUser, store: Store) -> Response:
    """Delete once confirmed (`confirm=yes` from the confirmation page); else go to that page."""
    _get_profile(store, user, name, change=True)
    if (await _form(request)).get("confirm") != "yes":
        return RedirectResponse(f"/profiles/{quote(name)}/delete", status_code=303)
    store.delete_profile(name)
    return RedirectResponse("/profiles?deleted=" + quote(name), status_code=303)
