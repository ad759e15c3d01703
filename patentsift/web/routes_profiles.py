"""Interest profiles: list, create, edit, delete, preview (pages and /api/profiles).

Each profile belongs to an outlet (`outlet_id`, set to the creating user's outlet): it is seen and changed only by
that outlet's staff (and admins). A profile with no outlet (made by the CLI) is shared: every staff member sees
it, only admins change it. Lists are filtered in SQL (subscribers.profile_rows.visible).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from index.base import Index
from matching.store import MatchStore, UnknownProfile
from patentsift.web.auth import CurrentUser, visible_outlet_ids
from patentsift.web.deps import get_index, get_match_store, templates
from patentsift.web.i18n import register_strings
from subscribers.models import StaffUser
from subscribers.profiles import LIST_FIELDS, Profile, ProfileError, validate_profile

router = APIRouter()
log = logging.getLogger(__name__)
MAX_PREVIEW_WEEKS = 5200

register_strings({
    "nav.profiles": {"en": "Profiles", "zh": "关注主题"},
    "profiles.title": {"en": "Interest profiles", "zh": "关注主题"},
    "profiles.new": {"en": "New profile", "zh": "新建主题"},
    "profiles.edit": {"en": "Edit profile", "zh": "编辑主题"},
    "profiles.none": {"en": "No profiles yet.", "zh": "还没有关注主题。"},
    "profiles.name": {"en": "Name", "zh": "名称"},
    "profiles.owner": {"en": "Owner", "zh": "所属"},
    "profiles.shared": {"en": "shared", "zh": "共享"},
    "profiles.description": {"en": "Description", "zh": "兴趣描述"},
    "profiles.query": {"en": "Query", "zh": "检索式"},
    "profiles.classes": {"en": "Classes (IPC/CPC)", "zh": "分类号 (IPC/CPC)"},
    "profiles.exclude_classes": {"en": "Excluded classes", "zh": "排除分类号"},
    "profiles.applicants": {"en": "Applicants (one a line)", "zh": "申请人（每行一个）"},
    "profiles.seeds": {"en": "Seed patents", "zh": "种子专利"},
    "profiles.exclude_terms": {"en": "Excluded terms", "zh": "排除词"},
    "profiles.languages": {"en": "Languages", "zh": "语言"},
    "profiles.threshold": {"en": "Threshold (0-1)", "zh": "阈值 (0-1)"},
    "profiles.max_items": {"en": "Max items per run", "zh": "每次最多条数"},
    "profiles.save": {"en": "Save", "zh": "保存"},
    "profiles.delete": {"en": "Delete", "zh": "删除"},
    "profiles.invalid": {"en": "The profile has errors; see the fields below.", "zh": "主题有误，请查看下列字段。"},
    "profiles.preview": {"en": "Preview", "zh": "预览"},
    "profiles.weeks": {"en": "Weeks", "zh": "周数"},
    "profiles.would_match": {"en": "document(s) would have matched since", "zh": "件文献会被匹配，自"},
    "profiles.score": {"en": "Score", "zh": "得分"},
    "profiles.list_hint": {"en": "comma or line separated", "zh": "用逗号或换行分隔"},
})


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


def field_errors(exc: ProfileError) -> dict[str, list[str]]:
    """ProfileError problems by field ('field: message'); problems naming no field go under '_'."""
    out: dict[str, list[str]] = {}
    known = {"name", "query", "threshold", "max_items", *LIST_FIELDS}
    for problem in exc.problems:
        key, sep, rest = problem.partition(": ")
        field_name = key if sep and key in known else "_"
        out.setdefault(field_name, []).append(rest if field_name != "_" else problem)
    return out


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
               status: int = 200) -> Response:
    return templates.TemplateResponse(request, "profile_edit.html", {
        "profile": profile, "new": new, "errors": errors or {}, "preview": preview, "weeks": weeks,
        "editable": editable}, status_code=status)


@router.get("/profiles/new", include_in_schema=False)
def new_profile_page(request: Request, user: CurrentUser) -> Response:
    return _edit_page(request, Profile(name=""), new=True)


@router.get("/profiles/{name}", include_in_schema=False)
def edit_profile_page(request: Request, name: str, user: CurrentUser, store: Store,
                      index: Annotated[Index, Depends(get_index)],
                      weeks: Annotated[int | None, Query(ge=1, le=MAX_PREVIEW_WEEKS)] = None) -> Response:
    profile = _get_profile(store, user, name)
    preview = _preview(request, store, index, name, weeks) if weeks else None
    return _edit_page(request, profile, new=False, preview=preview, weeks=weeks or 4,
                      editable=can_change_profile(user, profile))


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


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _submit(request: Request, store: MatchStore, index: Index, profile: Profile, errors: dict[str, list[str]],
            *, new: bool) -> Response:
    """Validate (all fields, also when a number did not parse), save, and go to the profile; else show errors."""
    try:
        valid = validate_profile(profile, known_document=lambda pn: index.get(pn) is not None)
    except ProfileError as exc:
        for key, problems in field_errors(exc).items():
            errors.setdefault(key, []).extend(problems)
    if not errors:
        store.save_profile(valid)
        return RedirectResponse(f"/profiles/{valid.name}", status_code=303)
    return _edit_page(request, profile, new=new, errors=errors, status=422)


@router.post("/profiles/new", include_in_schema=False)
async def create_profile(request: Request, user: CurrentUser, store: Store,
                         index: Annotated[Index, Depends(get_index)]) -> Response:
    form = await _form(request)
    profile, errors = _form_profile(form.get("name", ""), user.outlet_id, user.email, form)
    if (taken := name_taken(store, profile.name)) is not None:
        errors.setdefault("name", []).append(taken)
    return _submit(request, store, index, profile, errors, new=True)


@router.post("/profiles/{name}", include_in_schema=False)
async def update_profile(request: Request, name: str, user: CurrentUser, store: Store,
                         index: Annotated[Index, Depends(get_index)]) -> Response:
    old = _get_profile(store, user, name, change=True)
    profile, errors = _form_profile(name, old.outlet_id, old.owner, await _form(request))
    return _submit(request, store, index, profile, errors, new=False)


@router.post("/profiles/{name}/delete", include_in_schema=False)
def delete_profile(name: str, user: CurrentUser, store: Store) -> Response:
    _get_profile(store, user, name, change=True)
    store.delete_profile(name)
    return RedirectResponse("/profiles", status_code=303)
