"""The exchange workflow reaches the store through its one repository module, and makes
mirror banks through the banks domain (issue 16): checked on the source, and the mirror
a sync makes is read-only from its first moment. SQLite and PostgreSQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import Engine

import vigil.exchange
from vigil.banks import BankError, Banks, ReadOnlyBankError
from vigil.banks.entry import EntryRecord
from vigil.exchange import repo
from vigil.exchange.records import Descriptor, genesis

PACKAGE = Path(vigil.exchange.__file__).parent
#: what a module other than the repository may take from SQLAlchemy: the engine handle it
#: passes on, and the session type of a callback run inside a repository transaction
ALLOWED = {"Engine", "Session"}


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py")
                                          if p.name != "repo.py"))
def test_only_the_repository_touches_the_store(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            assert not node.module.startswith("vigil.store"), (module, node.module)
            if node.module.startswith("sqlalchemy"):
                assert names <= ALLOWED, (module, node.module, names)
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith(("sqlalchemy", "vigil.store"))
                           for a in node.names), module


def test_a_mirror_is_made_read_only_with_its_feed(engine: Engine) -> None:
    d = Descriptor("SG-SPF", "csam", ("category",), False)
    banks = Banks(engine, user="t")
    made: list[bool] = []
    banks.on_created = lambda: made.append(True)
    info = banks.create_mirror("SG-SPF.csam", "HK-POL", "mirror", descriptor=d.text(),
                               origin="SG-SPF", first_hash=genesis(d), peer="sg")
    assert info.name == "SG-SPF.csam" and info.agency == "HK-POL" and made == [True]
    facts = repo.bank_facts(engine, "SG-SPF.csam")
    assert facts is not None and facts.mirror_of == d.text()
    with pytest.raises(ReadOnlyBankError):
        banks.apply("SG-SPF.csam", [EntryRecord("md5", "a" * 32)])
    with pytest.raises(BankError, match="already exists"):
        banks.create_mirror("SG-SPF.csam", "HK-POL", "again", descriptor=d.text(),
                            origin="SG-SPF", first_hash=genesis(d), peer="sg")
    feed = repo.open_mirror(engine, "SG-SPF.csam", d, "sg")
    assert isinstance(feed, repo.MirrorFeed) and feed.fresh and feed.last_seq == 0
    assert feed.last_hash == genesis(d)
    assert "already mirrored from peer sg" in str(repo.open_mirror(engine, "SG-SPF.csam", d,
                                                                   "other"))
    banks.create("local", "HK-POL")
    assert "is not a mirror" in str(repo.open_mirror(engine, "local", d, "sg"))
    assert repo.open_mirror(engine, "nothing", d, "sg") is None
