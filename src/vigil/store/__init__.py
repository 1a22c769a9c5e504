"""Storage layer: SQLAlchemy models and Alembic migrations; SQLite default, PostgreSQL by URL."""

from vigil.store.db import database_url, make_engine, migrate, vigil_home
from vigil.store.models import Bank, Base, Change, Entry

__all__ = ["Bank", "Base", "Change", "Entry", "database_url", "make_engine", "migrate",
           "vigil_home"]
