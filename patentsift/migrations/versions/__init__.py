"""Alembic revisions, one file each, applied in order by subscribers.db.upgrade."""
