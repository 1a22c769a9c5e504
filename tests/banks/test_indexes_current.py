"""A damaged ``CURRENT`` (the published index generation) is rebuilt from the store.

``CURRENT`` is a file on disk that a crash, a full disk or a person may have left in any
state; the store is the truth. Whatever ``CURRENT`` holds, opening the indexes must give
the store's content, and never read a generation from outside the index folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from vigil.banks import Banks
from vigil.banks.entry import EntryRecord
from vigil.banks.indexes import BankIndexes, store_fingerprint
from vigil.index import HammingIndex, codes_from_hex, hex_from_codes


def _damaged(fingerprint: str) -> list[object]:
    return [
        {"generation": "gen-000000000003", "checkpoint": "three", "store": fingerprint},
        {"generation": "gen-000000000003", "checkpoint": None, "store": fingerprint},
        {"generation": 3, "checkpoint": 3, "store": fingerprint},
        {"generation": "../elsewhere", "checkpoint": 3, "store": fingerprint},
        {"checkpoint": 3, "store": fingerprint},
        ["gen-000000000003", 3],
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_damaged_current_is_rebuilt_from_the_store(
        engine: Engine, tmp_path: Path, case: int) -> None:
    codes = hex_from_codes(np.random.default_rng(5).integers(0, 256, (3, 32), dtype=np.uint8))
    banks = Banks(engine)
    banks.create("b", "SG-SPF")
    banks.apply("b", [EntryRecord("pdq", c) for c in codes])
    folder = tmp_path / "idx"
    BankIndexes(engine, folder)
    # a generation outside the folder holding other codes: it must never be loaded
    stray = HammingIndex()
    stray.add(codes_from_hex(["f" * 64]), np.array([999], np.int64))
    outside = tmp_path / "elsewhere"
    stray.save(outside / "pdq")
    (folder / "CURRENT").write_text(json.dumps(_damaged(store_fingerprint(engine))[case]))
    shutil.rmtree(next(folder.glob("gen-*")))  # and the generation it named is gone too

    idx = BankIndexes(engine, folder)
    assert idx.sizes()["pdq"] == 3
    res = idx.search_pdq(codes_from_hex([*codes, "f" * 64]), 0)
    assert [res.count(i) for i in range(4)] == [1, 1, 1, 0]
    assert json.loads((folder / "CURRENT").read_text())["generation"].startswith("gen-")
