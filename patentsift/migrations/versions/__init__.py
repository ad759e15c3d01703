"""Alembic revisions, one file each, applied in order by patentsift.db.upgrade."""
