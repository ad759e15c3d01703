"""The profile editor's work on a profile as edited (not yet saved): every field's problems at once, the query's
error with its position, a preview of the draft through the matching engine, and readers' feedback counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution.feedback import reader_judgements
from distribution.models import ReviewItem
from index.query.ast import QuerySyntaxError
from index.query.parser import parse_query
from matching.engine import Match, MatchingEngine
from matching.store import MatchStore, ProfileState
from subscribers.profiles import LIST_FIELDS, Profile, ProfileError, validate_profile

PLACEHOLDER = "draft"  # a valid name, so the other fields are checked even while the name is wrong or empty


def field_errors(exc: ProfileError) -> dict[str, list[str]]:
    """ProfileError problems by field ('field: message'); problems naming no field go under '_'."""
    out: dict[str, list[str]] = {}
    known = {"name", "query", "threshold", "max_items", *LIST_FIELDS}
    for problem in exc.problems:
        key, sep, rest = problem.partition(": ")
        field_name = key if sep and key in known else "_"
        out.setdefault(field_name, []).append(rest if field_name != "_" else problem)
    return out


def check_profile(profile: Profile, known_document: Callable[[str], bool],
                  errors: dict[str, list[str]] | None = None) -> tuple[Profile | None, dict[str, list[str]]]:
    """(the validated profile, None when a field but the name is wrong; every field's problems at once, added to
    `errors`): the name is checked on its own, so a bad name does not hide the other fields' problems. Save only
    when `errors` is empty."""
    errors = errors if errors is not None else {}
    checks = ((Profile(name=profile.name, description="-"), None),
              (dataclasses.replace(profile, name=PLACEHOLDER), known_document))
    valid: Profile | None = None
    for candidate, known in checks:
        try:
            valid = validate_profile(candidate, known)
        except ProfileError as exc:
            for key, problems in field_errors(exc).items():
                errors.setdefault(key, []).extend(problems)
    return (dataclasses.replace(valid, name=profile.name) if valid is not None else None), errors


def query_problem(query: str | None) -> dict[str, Any] | None:
    """Where and what is wrong in a profile's query (None when it parses), split around the bad character."""
    text = (query or "").strip()
    if not text:
        return None
    try:
        parse_query(text)
    except QuerySyntaxError as exc:
        pos = exc.position
        return {"message": exc.message, "position": pos, "hints": exc.hints, "before": text[:pos],
                "at": text[pos:pos + 1] or " ", "after": text[pos + 1:]}
    return None


class _DraftStore:
    """The match store as matching sees it during a draft's preview: the draft stands in for the stored profile
    of its name, and nothing about it is written (vectors, calibration)."""

    def __init__(self, store: MatchStore, draft: Profile, *, stored: bool) -> None:
        self._store, self._draft, self._stored = store, draft, stored

    def state(self, name: str, session: Session | None = None) -> ProfileState:
        if name != self._draft.name:
            return self._store.state(name, session)
        return ProfileState(self._draft, 0, None, None, None, None)

    def set_vectors(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name != self._draft.name:
            self._store.set_vectors(name, *args, **kwargs)

    def feedback(self, name: str, session: Session | None = None) -> dict[str, bool]:
        """A stored profile's judgements adapt its draft too; a new draft has none."""
        return self._store.feedback(name, session) if self._stored and name == self._draft.name else {}

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._store, attr)


def preview_draft(engine: MatchingEngine, draft: Profile, since: date, *, stored: bool) -> list[Match]:
    """What `draft` (validated) would have matched since `since`, through the engine's own preview; stores nothing.
    `engine` is a fresh one (wiring builds one per call): it is given the draft's store. `stored`: the draft edits
    the stored profile of its name (its readers' and curators' feedback applies)."""
    name = draft.name if stored else PLACEHOLDER
    engine.store = cast(MatchStore, _DraftStore(engine.store, dataclasses.replace(draft, name=name), stored=stored))
    return engine.preview(name, since)


def reader_feedback_counts(session: Session, profile: str) -> tuple[int, int]:
    """(relevant, not relevant): readers' latest answers from digests on this profile's items."""
    ids = list(session.scalars(select(ReviewItem.id).where(ReviewItem.profile_name == profile)))
    judged = list(reader_judgements(session, ids).values()) if ids else []
    relevant = sum(1 for j in judged if j.relevant)
    return relevant, len(judged) - relevant
