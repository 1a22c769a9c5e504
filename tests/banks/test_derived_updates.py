"""A picture's derived data changes like any content of an entry: through ``Banks.apply``
(an update in the change log), and the indexes follow; the crop-ladder flag can be set
on an existing bank (not on a mirror outside a sync); the door checks derived data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.featuresets import feature_set
from vigil.banks import BankError, Banks, EntryReader
from vigil.banks.derived import derived_id
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.indexes import BankIndexes
from vigil.exchange import feeds
from vigil.exchange.records import Descriptor, genesis
from vigil.index import codes_from_hex, hex_from_codes
from vigil.node import init_node, signing_key
from vigil.store.models import Change, Entry
from vigil.store.models_exchange import FeedRecord

RNG = np.random.default_rng(31)
CODES = hex_from_codes(RNG.integers(0, 256, (8, 32), dtype=np.uint8))
CAT = Labels(category=("us", "1"))


def ladder(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"pdq_derived": [[w, CODES[k], 80] for w, k in pairs]}


def entry(engine: Engine, value: str) -> tuple[int, dict[str, Any]]:
    with Session(engine) as s:
        row = s.execute(select(Entry.id, Entry.extra).where(Entry.value == value)).one()
        return int(row[0]), dict(row[1] or {})


def ops(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.scalars(select(Change.op).order_by(Change.id)))


def test_an_add_with_new_derived_data_is_an_update_and_the_index_follows(
        engine: Engine, tmp_path: Path) -> None:
    banks = Banks(engine, user="t")
    banks.create("plain", "SG-SPF")
    banks.apply("plain", [EntryRecord("pdq", CODES[0], CAT, 90, extra={"size": 5})])
    idx = BankIndexes(engine, tmp_path / "idx")
    q = codes_from_hex([CODES[1], CODES[2]])
    assert idx.search_pdq_derived(q, 0).count(0) == 0
    # the flag first, then the codes (what `vigil bank reindex` does)
    assert banks.set_crop_ladder("plain") and not banks.set_crop_ladder("plain")
    assert banks.crop_ladder("plain")
    banks.apply("plain", [EntryRecord("pdq", CODES[0], CAT, 90,
                                      extra={"size": 5, **ladder(("trimmed", 1))})])
    eid, extra = entry(engine, CODES[0])
    assert extra == {"size": 5, **ladder(("trimmed", 1))}
    assert ops(engine) == ["add", "update"]
    idx.sync()
    assert idx.search_pdq_derived(q, 0).matches(0) == [(derived_id(eid, "trimmed"), 0)]
    # other codes replace them; the index drops the old window
    banks.apply("plain", [EntryRecord("pdq", CODES[0], CAT, 90,
                                      extra=ladder(("centre-0.05", 2)))])
    idx.sync()
    res = idx.search_pdq_derived(q, 0)
    assert res.count(0) == 0 and res.matches(1) == [(derived_id(eid, "centre-0.05"), 0)]
    # the same again, or none at all, changes nothing on a local bank (a relabel, a
    # re-import of a hash list keep the codes)
    r = banks.apply("plain", [EntryRecord("pdq", CODES[0], CAT, 90,
                                          extra=ladder(("centre-0.05", 2)))])
    assert r.unchanged == 1 and r.changes == 0
    r = banks.apply("plain", [EntryRecord("pdq", CODES[0], Labels(category=("us", "2")), 90)])
    assert r.updated == 1 and entry(engine, CODES[0])[1] == {"size": 5,
                                                             **ladder(("centre-0.05", 2))}
    idx.sync()
    assert idx.search_pdq_derived(q, 0).count(1) == 1
    # features come and keep the codes; new codes keep the features
    banks.apply("plain", [EntryRecord("pdq", CODES[0], extra={"pdq_features": feature_set(1)})])
    banks.apply("plain", [EntryRecord("pdq", CODES[0], extra=ladder(("trimmed", 3)))])
    assert entry(engine, CODES[0])[1] == {"size": 5, "pdq_features": feature_set(1),
                                          **ladder(("trimmed", 3))}


def test_a_mirror_record_is_the_entry_as_its_origin_holds_it(engine: Engine) -> None:
    banks = Banks(engine, user="feed:SG-SPF")
    d = Descriptor("SG-SPF", "crops", ("category",), False)
    banks.create_mirror("SG-SPF.crops", "HK-POL", "m", descriptor=d.text(), origin="SG-SPF",
                        first_hash=genesis(d), peer="sg")
    with pytest.raises(BankError, match="read-only mirror"):
        banks.set_crop_ladder("SG-SPF.crops")
    assert banks.set_crop_ladder("SG-SPF.crops", mirror=True)
    banks.apply("SG-SPF.crops", [EntryRecord("pdq", CODES[0], CAT, 90,
                                             extra=ladder(("trimmed", 1)))], mirror=True)
    r = banks.apply("SG-SPF.crops", [EntryRecord("pdq", CODES[0], CAT, 90)], mirror=True)
    assert r.updated == 1 and entry(engine, CODES[0])[1] == {}


@pytest.mark.parametrize(("rec", "says"), [
    (lambda: EntryRecord("md5", "a" * 32, extra=ladder(("trimmed", 1))),
     "md5 entry: only a pdq entry carries derived data"),
    (lambda: EntryRecord("pdq", CODES[0], extra={"pdq_derived": [["nowhere", CODES[1], 80]]}),
     "pdq_derived[0]: unknown window 'nowhere'"),
    (lambda: EntryRecord("pdq", CODES[0], extra={"pdq_features": "a b"}), "base64"),
])
def test_the_door_checks_derived_data(rec: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        rec()


def test_the_feed_carries_valid_derived_data_and_leaves_out_what_would_be_refused(
        engine: Engine, tmp_path: Path) -> None:
    """An entry stored before the door checked derived data may hold something a peer
    would refuse (and then stop at): the origin leaves that part out of the record."""
    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    banks = Banks(engine, user="t")
    banks.create("crops", "SG-SPF", crop_ladder=True)
    good = {**ladder(("trimmed", 1), ("top-0.1", 2)), "pdq_features": feature_set(1)}
    banks.apply("crops", [EntryRecord("pdq", CODES[0], CAT, 90, extra=good),
                          EntryRecord("pdq", CODES[3], CAT, 90, extra={"size": 1}),
                          EntryRecord("pdq", CODES[4], CAT, 90, extra=ladder(("trimmed", 5)))])
    with Session(engine) as s, s.begin():  # as an older version could have stored it
        s.execute(update(Entry).where(Entry.value == CODES[4]).values(extra={
            "pdq_derived": [["centre-0.9", CODES[5], 80]], "pdq_features": feature_set(2)}))
    d = Descriptor("SG-SPF", "crops", ("category",), False)
    assert feeds.materialise(engine, signing_key(tmp_path), "crops", d, 10) == 3
    with Session(engine) as s:
        bodies = [json.loads(b) for b in s.scalars(select(FeedRecord.body)
                                                   .order_by(FeedRecord.seq))]
    assert bodies[0]["derived"] == good
    assert "derived" not in bodies[1]
    assert bodies[2]["derived"] == {"pdq_features": feature_set(2)}  # the bad codes left out
    assert [e.extra for e in EntryReader(engine).find("pdq", [CODES[0]], ["crops"])] == [good]
