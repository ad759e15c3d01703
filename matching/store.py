"""Matching storage (SQLAlchemy 2.x, SQLite by default): profiles, their vectors and watermarks, matches,
the invention keys a profile was already sent, and feedback. All table models live in this one module.

`MatchStore` works on the shell's session factory (it opens no engine and runs no migration). Each method takes an
optional `session`: given one, it works inside the caller's transaction and never commits (the caller opened it,
the caller commits: see db/__init__.py); without one, it opens its own and commits it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    delete,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from db import Base
from subscribers import profile_rows
from subscribers.models import InterestProfile
from subscribers.profiles import Profile


def _now() -> datetime:
    return datetime.now(UTC)


class ProfileRow(Base):
    """What matching derives from an interest profile (subscribers' `sub_profiles` row with the same id)."""

    __tablename__ = "matching_profiles"

    id: Mapped[int] = mapped_column(ForeignKey(InterestProfile.id, ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # embedder of the vectors below
    base_vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # description + seeds
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # after feedback (Rocchio)
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # fusion.Background fields
    watermark: Mapped[int] = mapped_column(Integer, default=0)  # index seq matched up to (inclusive)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class MatchRow(Base):
    __tablename__ = "matching_matches"
    __table_args__ = (UniqueConstraint("profile_id", "doc_id", name="uq_match_profile_doc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("matching_profiles.id", ondelete="CASCADE"), index=True)
    doc_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)  # signal -> {raw, calibrated, weight}
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON)  # matching.explain.Explanation.to_dict()
    duplicates: Mapped[list[str]] = mapped_column(JSON, default=list)  # suppressed publications of one invention
    run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class InventionKeyRow(Base):
    """One key (family, priority, application, publication) of an invention a profile was already sent."""

    __tablename__ = "matching_invention_keys"

    profile_id: Mapped[int] = mapped_column(ForeignKey("matching_profiles.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matching_matches.id", ondelete="CASCADE"))


class FeedbackRow(Base):
    __tablename__ = "matching_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matching_matches.id", ondelete="CASCADE"), index=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("matching_profiles.id", ondelete="CASCADE"), index=True)
    doc_id: Mapped[str] = mapped_column(String(64))
    relevant: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(40), default="subscriber")  # subscriber | curator
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@dataclass
class NewMatch:
    """A match the engine wants stored, with the invention keys that suppress its duplicates later."""

    doc_id: str
    seq: int
    score: float
    breakdown: dict[str, Any]
    explanation: dict[str, Any]
    keys: set[str]
    duplicates: list[str] = field(default_factory=list)


@dataclass
class StoredMatch:
    id: int
    profile: str
    doc_id: str
    seq: int
    score: float
    breakdown: dict[str, Any]
    explanation: dict[str, Any]
    duplicates: list[str]
    run_id: str
    created_at: datetime
    feedback: bool | None = None


@dataclass
class ProfileState:
    """A stored profile with what matching keeps about it."""

    profile: Profile
    watermark: int
    model_id: str | None
    base_vector: np.ndarray | None
    vector: np.ndarray | None
    calibration: dict[str, Any] | None


class UnknownProfile(KeyError):
    def __str__(self) -> str:
        return f"no profile named {self.args[0]!r} (patentsift profile list shows the stored ones)"


class UnknownMatch(KeyError):
    def __str__(self) -> str:
        return f"no match with id {self.args[0]!r}"


def _blob(vec: np.ndarray | None) -> bytes | None:
    return None if vec is None else np.asarray(vec, dtype="<f4").tobytes()


def _vec(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f4").astype(np.float32)


class MatchStore:
    """Profiles, matches and feedback in the shared database, through the shell's session factory."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @contextmanager
    def _tx(self, session: Session | None) -> Iterator[Session]:
        """The caller's session as it is, or a new one committed at the end of the block."""
        if session is not None:
            yield session
            return
        with self._sessions.begin() as s:
            yield s

    # --- profiles (stored by subscribers/, with their outlet; matching keeps what it derives) -----------------
    def save_profile(self, profile: Profile, session: Session | None = None) -> bool:
        """Insert or update by name; returns True when new. A changed profile drops its vectors (recomputed)."""
        with self._tx(session) as s:
            row, created, changed = profile_rows.save(s, profile)
            derived = s.get(ProfileRow, row.id)
            if changed and derived is not None:
                derived.base_vector = derived.vector = None
                derived.calibration = None
            return created

    def delete_profile(self, name: str, session: Session | None = None) -> None:
        with self._tx(session) as s:
            row = self._profile_row(s, name)
            for model in (FeedbackRow, InventionKeyRow, MatchRow):
                s.execute(delete(model).where(model.profile_id == row.id))
            s.delete(row)
            profile_rows.delete(s, name)

    def profiles(self, session: Session | None = None, outlet_ids: Collection[int] | None = None) -> list[Profile]:
        """Every profile, or those staff of `outlet_ids` may read (theirs and the shared ones)."""
        with self._tx(session) as s:
            return profile_rows.listed(s, outlet_ids)

    def profile(self, name: str, session: Session | None = None) -> Profile:
        with self._tx(session) as s:
            row = profile_rows.get_row(s, name)
            if row is None:
                raise UnknownProfile(name)
            return profile_rows.to_profile(row)

    def state(self, name: str, session: Session | None = None) -> ProfileState:
        with self._tx(session) as s:
            r = self._profile_row(s, name)
            spec = s.get(InterestProfile, r.id)
            assert spec is not None
            return ProfileState(profile_rows.to_profile(spec), r.watermark, r.model_id, _vec(r.base_vector),
                                _vec(r.vector), r.calibration)

    def set_vectors(self, name: str, model_id: str, base: np.ndarray, vector: np.ndarray,
                    calibration: dict[str, Any], session: Session | None = None) -> None:
        with self._tx(session) as s:
            r = self._profile_row(s, name)
            r.model_id, r.base_vector, r.vector, r.calibration = model_id, _blob(base), _blob(vector), calibration

    def invalidate_vector(self, name: str, session: Session | None = None) -> None:
        """Forget the adapted vector so the next run recomputes it (after feedback)."""
        with self._tx(session) as s:
            r = self._profile_row(s, name)
            r.vector, r.calibration = None, None

    def watermark(self, name: str, session: Session | None = None) -> int:
        return self.state(name, session).watermark

    def set_watermark(self, name: str, seq: int, session: Session | None = None) -> None:
        with self._tx(session) as s:
            self._profile_row(s, name).watermark = seq

    @staticmethod
    def _profile_row(s: Session, name: str) -> ProfileRow:
        """Matching's row of the named profile, made on first use."""
        spec = profile_rows.get_row(s, name)
        if spec is None:
            raise UnknownProfile(name)
        row = s.get(ProfileRow, spec.id)
        if row is None:
            row = ProfileRow(id=spec.id, watermark=0)
            s.add(row)
            s.flush()
        return row

    # --- matches ------------------------------------------------------------------------------------------
    def seen_keys(self, name: str, session: Session | None = None) -> set[str]:
        """Invention keys of everything already matched for this profile."""
        with self._tx(session) as s:
            pid = self._profile_row(s, name).id
            return set(s.scalars(select(InventionKeyRow.key).where(InventionKeyRow.profile_id == pid)))

    def record_run(self, name: str, matches: Sequence[NewMatch], watermark: int, run_id: str, session: Session | None = None) -> list[int]:
        """Store matches and move the watermark in one transaction (all or nothing); skip any already stored."""
        ids: list[int] = []
        with self._tx(session) as s:
            row = self._profile_row(s, name)
            have = set(s.scalars(select(MatchRow.doc_id).where(MatchRow.profile_id == row.id)))
            taken = set(s.scalars(select(InventionKeyRow.key).where(InventionKeyRow.profile_id == row.id)))
            for m in matches:
                if m.doc_id in have or m.keys & taken:
                    continue
                mr = MatchRow(profile_id=row.id, doc_id=m.doc_id, seq=m.seq, score=m.score, breakdown=m.breakdown,
                              explanation=m.explanation, duplicates=m.duplicates, run_id=run_id)
                s.add(mr)
                s.flush()
                s.add_all(InventionKeyRow(profile_id=row.id, key=k, match_id=mr.id) for k in sorted(m.keys))
                taken |= m.keys
                have.add(m.doc_id)
                ids.append(mr.id)
            row.watermark = max(row.watermark, watermark)
        return ids

    def matches(self, name: str | None = None, ids: Iterable[int] | None = None, session: Session | None = None) -> list[StoredMatch]:
        """Stored matches (of one profile, or the given ids), newest first."""
        with self._tx(session) as s:
            q = select(MatchRow, InterestProfile.name).join(InterestProfile, MatchRow.profile_id == InterestProfile.id)
            if name is not None:
                q = q.where(InterestProfile.name == name)
                if profile_rows.get_row(s, name) is None:
                    raise UnknownProfile(name)
            if ids is not None:
                q = q.where(MatchRow.id.in_(list(ids)))
            rows = s.execute(q.order_by(MatchRow.id.desc())).all()
            fb: dict[int, bool] = {}
            for f in s.scalars(select(FeedbackRow).where(FeedbackRow.match_id.in_([m.id for m, _ in rows]))
                               .order_by(FeedbackRow.id)):
                fb[f.match_id] = f.relevant
        out = [StoredMatch(m.id, n, m.doc_id, m.seq, m.score, m.breakdown, m.explanation, m.duplicates, m.run_id,
                           m.created_at, fb.get(m.id)) for m, n in rows]
        return out

    def match(self, match_id: int, session: Session | None = None) -> StoredMatch:
        found = self.matches(ids=[match_id], session=session)
        if not found:
            raise UnknownMatch(match_id)
        return found[0]

    # --- feedback -----------------------------------------------------------------------------------------
    def add_feedback(self, match_id: int, relevant: bool, source: str = "subscriber", session: Session | None = None) -> StoredMatch:
        """Record a judgement on a match (the latest one per match counts) and invalidate the adapted vector."""
        with self._tx(session) as s:
            self.judge(match_id, relevant, source, s)
            return self.match(match_id, s)

    def judge(self, match_id: int, relevant: bool, source: str = "subscriber", session: Session | None = None) -> int:
        """`add_feedback` returning the judgement's id (for `withdraw_feedback`)."""
        with self._tx(session) as s:
            m = s.get(MatchRow, match_id)
            if m is None:
                raise UnknownMatch(match_id)
            row = FeedbackRow(match_id=m.id, profile_id=m.profile_id, doc_id=m.doc_id, relevant=relevant,
                              source=source)
            s.add(row)
            self._forget_adaptation(s, m.profile_id)
            s.flush()
            return row.id

    def withdraw_feedback(self, feedback_ids: Collection[int], session: Session | None = None) -> int:
        """Delete these judgements (an undone decision's): the match's earlier judgement, if any, counts again.
        Returns how many were deleted; the profiles' adapted vectors are invalidated."""
        with self._tx(session) as s:
            rows = list(s.scalars(select(FeedbackRow).where(FeedbackRow.id.in_(list(feedback_ids)))))
            for pid in {r.profile_id for r in rows}:
                self._forget_adaptation(s, pid)
            for r in rows:
                s.delete(r)
            s.flush()
            return len(rows)

    @staticmethod
    def _forget_adaptation(s: Session, profile_id: int) -> None:
        p = s.get(ProfileRow, profile_id)
        assert p is not None
        p.vector, p.calibration = None, None

    def feedback(self, name: str, session: Session | None = None) -> dict[str, bool]:
        """doc id -> the latest judgement for this profile."""
        with self._tx(session) as s:
            pid = self._profile_row(s, name).id
            rows = s.scalars(select(FeedbackRow).where(FeedbackRow.profile_id == pid).order_by(FeedbackRow.id))
            return {f.doc_id: f.relevant for f in rows}

