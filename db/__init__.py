"""The database room, below every other room: the declarative base, UTC timestamps, engines and sessions.

It holds no room's models. Rooms declare their tables on `db.Base`; the shell (patentsift/db.py) lists the model
modules, runs the Alembic migrations and hands sessions to the rooms.

The commit rule, kept in every room: **whoever opens a session commits it.** Room functions that take a `Session`
change it and may flush, but never commit or roll back; the shell (a CLI command, a web request, a pipeline stage)
opens the session with `Database.begin()` and commits once, so a curator's decision and the feedback it triggers
are one transaction. The one exception is digest delivery, whose exactly-once protocol must commit before and
after each SMTP transaction: it takes a session *factory* (`sessionmaker`) and opens its own sessions.
"""

from db.base import Base, UTCDateTime, utcnow
from db.engine import Database, database_url, make_engine, open_url

__all__ = ["Base", "Database", "UTCDateTime", "database_url", "make_engine", "open_url", "utcnow"]
