"""Alembic migrations of the shared database (see README.md)."""
