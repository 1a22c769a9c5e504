"""Where the store lives and how to open it: SQLite (WAL) by default, PostgreSQL by URL.

* ``VIGIL_DATABASE_URL`` — a SQLAlchemy URL (``postgresql+psycopg://user@host/db``) for
  a server; wins when set.
* ``VIGIL_HOME`` — the folder of the embedded store (``vigil.db``) and the on-disk
  indexes; default: the per-user data folder (``~/.local/share/vigil`` on Linux).

Opening a store always brings its schema to the latest migration, so an upgraded Vigil
never runs against an old schema.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from platformdirs import user_data_dir
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).with_name("migrations")
#: PostgreSQL connections a process keeps, and how many more it may open under load
POOL_SIZE, POOL_OVERFLOW = 20, 10


def vigil_home() -> Path:
    """The folder for the embedded database and indexes (created on first use)."""
    home = Path(os.environ.get("VIGIL_HOME") or user_data_dir("vigil", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url() -> URL:
    """``VIGIL_DATABASE_URL`` if set, else SQLite at ``VIGIL_HOME/vigil.db``."""
    url = os.environ.get("VIGIL_DATABASE_URL")
    if url:
        return make_url(url)
    return make_url(f"sqlite:///{vigil_home() / 'vigil.db'}")


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL lets readers (matchers) work while a writer imports; FKs keep the log honest."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-131072")  # 128 MB: random-order index inserts of imports
    cur.close()


def make_engine(url: str | URL | None = None) -> Engine:
    """An engine for ``url`` (default ``database_url()``), with SQLite tuned for Vigil.

    Every engine hides its bind parameters (``hide_parameters``): SQLAlchemy otherwise
    puts them in the message of every database error, and the bind parameters of a
    match or an import are hash values, which must never reach a log.
    """
    url = make_url(url) if url is not None else database_url()
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No server-side prepared statements: psycopg prepares a query after 5 runs, and the
    # generic plan made while a bank was still empty (a sequential scan) then stayed in use
    # for the whole import, making every batch slower than the last.
    # Pool: a server worker runs requests in up to 40 threads (anyio's default); most touch
    # the store only to resolve a match's hits (tokens and banks are cached, the audit log
    # is written by one thread). Keep enough connections for that: an overflow connection
    # is closed when returned, and opening PostgreSQL connections under load cost ~8% of a
    # worker's CPU with 10 kept (bench/HISTORY.md). 20 kept + 10 under bursts per process:
    # 2 workers use at most 60 of PostgreSQL's default 100 connections.
    return create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=POOL_SIZE,
                         max_overflow=POOL_OVERFLOW, pool_timeout=30,
                         connect_args={"prepare_threshold": None})


@cache
def head_revision() -> str | None:
    """The latest migration's revision, read from the migration files' text (no Alembic:
    importing it is a good part of a one-off command's start-up); None if unclear."""
    revs, downs = set(), set()
    for f in (MIGRATIONS / "versions").glob("*.py"):
        src = f.read_text()
        rev = re.search(r'^revision\s*=\s*["\']([^"\']+)["\']', src, re.M)
        down = re.search(r'^down_revision\s*=\s*["\']([^"\']+)["\']', src, re.M)
        if rev:
            revs.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    heads = revs - downs
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() \
                == [head]
    except DBAPIError:  # no such table yet: a new store
        return False


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (idempotent). A store already at the
    latest one is recognised without loading Alembic."""
    if not _at_head(engine):
        run_alembic(engine, "upgrade", "head")


def run_alembic(engine: Engine, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade REVISION`` on ``engine``, in one transaction (on SQLite
    with foreign keys off, checked before the commit)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite rebuilds a table to change its constraints (migration 0004): foreign
            # keys must be off for that, and the pragma only takes effect outside a
            # transaction. Checked before committing; back on afterwards.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                getattr(command, action)(cfg, revision)
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if bad:
                        raise RuntimeError(f"migration left broken references: {bad[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def describe(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)
