"""``migrate`` skips Alembic for a store at the latest revision; the head it reads from
the migration files must be Alembic's own."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from vigil.store.db import MIGRATIONS, _at_head, head_revision, migrate


def test_head_read_from_the_files_is_alembics() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_a_migrated_store_is_recognised_and_an_old_one_is_not(engine: Engine) -> None:
    assert _at_head(engine)
    migrate(engine)  # nothing to do, and no error
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert not _at_head(engine)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head_revision()})
    assert _at_head(engine)
