"""Server-side staff sessions: one row per login, named by a random token kept in the signed session cookie.

The cookie (Starlette's SessionMiddleware, app.py) carries only `sid` (the token), the CSRF token and the UI
language; who is logged in, since when and until when lives here, so a session can be ended on the server:

* logout deletes its row: a cookie captured before logout names nothing afterwards;
* a password change ends every session of that user (each row keeps a stamp of the password hash it was opened
  with; a different hash no longer matches), and so does deactivating or deleting the staff user (the rows go
  with the user: ON DELETE CASCADE; an inactive user's rows are refused and removed);
* a session ends after `IDLE_TIMEOUT` without an authenticated request and `ABSOLUTE_LIFETIME` after login,
  whatever happens in between (re-signing the cookie, e.g. by `GET /lang/en`, extends nothing).

Only a SHA-256 digest of the token is stored: the table alone does not let anyone take over a session.
Functions take the caller's SQLAlchemy `Session` and flush, never commit (db/__init__.py: whoever opens commits).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, or_
from sqlalchemy.orm import Mapped, Session, mapped_column

from db import Base, UTCDateTime, utcnow
from subscribers.models import StaffUser

IDLE_TIMEOUT = timedelta(hours=1)  # without an authenticated request
ABSOLUTE_LIFETIME = timedelta(hours=12)  # after login, however busy
TOUCH_EVERY = timedelta(seconds=60)  # last_seen is written at most this often (one UPDATE per minute, not per hit)
SESSION_ID_KEY = "sid"  # the key of the token in the signed cookie


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("sub_staff.id", ondelete="CASCADE"), index=True)
    password_stamp: Mapped[str] = mapped_column(String(64))  # sha256 hex of the password hash at login
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def password_stamp(user: StaffUser) -> str:
    return _digest(user.password_hash)


class SessionStore:
    """Start, resolve and end sessions; `clock` (aware UTC datetimes) is replaceable for tests."""

    def __init__(self, idle: timedelta = IDLE_TIMEOUT, absolute: timedelta = ABSOLUTE_LIFETIME,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.idle, self.absolute, self.clock = idle, absolute, clock

    def start(self, s: Session, user: StaffUser) -> str:
        """A new session for `user` (and expired rows of anyone removed); returns the token for the cookie."""
        now = self.clock()
        self.purge_expired(s, now)
        token = secrets.token_urlsafe(32)
        s.add(WebSession(id=_digest(token), user_id=user.id, password_stamp=password_stamp(user), created_at=now,
                         last_seen_at=now))
        s.flush()
        return token

    def resolve(self, s: Session, token: object) -> tuple[StaffUser | None, bool]:
        """(the active staff user of a live session, whether its idle clock is due a `touch`), reading only; a dead
        session (unknown, expired, password changed, user inactive or gone) gives (None, False): `end` it."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None, False
        row = s.get(WebSession, _digest(token))
        if row is None:
            return None, False
        now = self.clock()
        user = s.get(StaffUser, row.user_id)
        if (user is None or not user.active or row.password_stamp != password_stamp(user)
                or now - row.created_at >= self.absolute or now - row.last_seen_at >= self.idle):
            return None, False
        return user, now - row.last_seen_at >= TOUCH_EVERY

    def touch(self, s: Session, token: str) -> None:
        """Restart the session's idle clock (written at most every TOUCH_EVERY: see `resolve`)."""
        row = s.get(WebSession, _digest(token))
        if row is not None:
            row.last_seen_at = self.clock()

    def end(self, s: Session, token: object) -> None:
        """End one session (logout); an unknown or malformed token changes nothing."""
        if isinstance(token, str) and token:
            s.execute(delete(WebSession).where(WebSession.id == _digest(token)))

    def end_all(self, s: Session, user_id: int) -> int:
        """End every session of a staff user (call it when removing the user or resetting the password; a
        password change through `password_hash` ends them anyway); returns how many there were."""
        result = s.execute(delete(WebSession).where(WebSession.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    def purge_expired(self, s: Session, now: datetime | None = None) -> None:
        now = now or self.clock()
        s.execute(delete(WebSession).where(or_(WebSession.last_seen_at <= now - self.idle,
                                                WebSession.created_at <= now - self.absolute)))


def end_user_sessions(s: Session, user_id: int) -> int:
    """Module-level shortcut of `SessionStore().end_all` for the CLI (staff removal, password reset)."""
    return SessionStore().end_all(s, user_id)
