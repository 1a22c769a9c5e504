"""Indexes follow the store's change log; the matcher turns hits into labelled leads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from vigil.banks import Banks, EntryReader
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.indexes import BankIndexes
from vigil.index import hex_from_codes
from vigil.matching import Matcher, Query, parse_query


def _flip(hex_code: str, bits: int, rng: np.random.Generator) -> str:
    v = int(hex_code, 16)
    for b in rng.choice(256, bits, replace=False):
        v ^= 1 << int(b)
    return f"{v:064x}"


@pytest.fixture
def codes() -> list[str]:
    rng = np.random.default_rng(7)
    return hex_from_codes(rng.integers(0, 256, (50, 32), dtype=np.uint8))


def _bank(engine: Engine, codes: list[str]) -> Banks:
    banks = Banks(engine)
    banks.create("sg", "SG-SPF")
    banks.create("hk", "HK-HKPF")
    banks.apply("sg", [EntryRecord("pdq", c, Labels(category=("us", "1"), series="S"),
                                   source_id=f"m{i}") for i, c in enumerate(codes[:30])])
    banks.apply("hk", [EntryRecord("pdq", c, Labels(category=("uk", "A"))) for c in codes[30:]])
    banks.apply("sg", [EntryRecord("md5", "ab" * 16, Labels(series="S"), source_id="m0"),
                       EntryRecord("photodna", "opaque-value-1", Labels(series="P"))])
    return banks


def test_new_and_removed_entries_are_seen_after_sync(engine: Engine, tmp_path: Path,
                                                     codes: list[str]) -> None:
    banks = _bank(engine, codes)
    idx = BankIndexes(engine, tmp_path / "idx")
    assert idx.sizes() == {"pdq": 50, "md5": 1, "sha1": 0, "sha256": 0}
    matcher = Matcher(EntryReader(engine), idx)
    rng = np.random.default_rng(1)
    near = _flip(codes[3], 20, rng)
    [out] = matcher.match([[Query("pdq", near, 100)]])
    assert [(m.entry.bank, m.distance) for m in out.matches] == [("sg", 20)]
    assert out.matches[0].entry.labels.category == ("us", "1")

    banks.apply("sg", [EntryRecord("pdq", codes[3], op="remove")])
    new = hex_from_codes(rng.integers(0, 256, (1, 32), dtype=np.uint8))[0]
    banks.apply("hk", [EntryRecord("pdq", new)])
    # Before sync a removed entry is filtered by the store; after sync it is gone.
    assert matcher.match([[Query("pdq", near, 100)]])[0].matches == []
    assert idx.sync() == 2
    assert matcher.match([[Query("pdq", near, 100)]])[0].matches == []
    assert [m.entry.bank for m in matcher.match([[Query("pdq", new, 100)]])[0].matches] == ["hk"]

    # A fresh process loads from disk and replays the tail: same answers.
    reopened = BankIndexes(engine, tmp_path / "idx")
    again = Matcher(EntryReader(engine), reopened)
    assert reopened.sizes()["pdq"] == 50
    assert [m.entry.bank for m in again.match([[Query("pdq", new, 100)]])[0].matches] == ["hk"]
    # Rebuilding from the store gives the same content.
    reopened.rebuild()
    assert reopened.sizes()["pdq"] == 50


def test_threshold_quality_dihedral_and_bank_filter(engine: Engine, tmp_path: Path,
                                                    codes: list[str]) -> None:
    _bank(engine, codes)
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, tmp_path / "idx"))
    rng = np.random.default_rng(2)
    q31, q32 = _flip(codes[0], 31, rng), _flip(codes[1], 32, rng)
    out = matcher.match([[Query("pdq", q31, 90)], [Query("pdq", q32, 90)]])
    assert [m.distance for m in out[0].matches] == [31] and out[1].matches == []
    assert matcher.match([[Query("pdq", q32, 90)]], threshold=32)[0].matches[0].distance == 32
    low = matcher.match([[Query("pdq", codes[0], 20)]])[0]
    assert low.matches == [] and "quality 20 < 50" in low.skipped[0]
    variant = Query("pdq", _flip(codes[0], 100, rng), 90, (("rotate90", codes[40]),))
    [m] = matcher.match([[variant]])[0].matches
    assert (m.entry.bank, m.variant, m.distance) == ("hk", "rotate90", 0)
    assert matcher.match([[Query("pdq", codes[40], 90)]], bank_names=["sg"])[0].matches == []
    with pytest.raises(ValueError, match="no bank named 'xx'"):
        matcher.match([[Query("pdq", codes[40], 90)]], bank_names=["xx"])
    with pytest.raises(ValueError, match="between 0 and 64"):
        matcher.match([], threshold=65)


def test_exact_and_opaque_signals_and_leads(engine: Engine, tmp_path: Path,
                                            codes: list[str]) -> None:
    _bank(engine, codes)
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, tmp_path / "idx"))
    out = matcher.match([[Query("md5", "ab" * 16), Query("pdq", codes[0], 100)],
                         [Query("photodna", "opaque-value-1")], [parse_query("md5:" + "cd" * 16)]])
    # md5 and pdq of the same source record (m0) are one lead with two signals
    [(best, signals)] = out[0].leads()
    assert best.distance == 0 and sorted(signals) == ["md5", "pdq"]
    assert [m.entry.labels.series for m in out[1].matches] == ["P"]
    assert out[2].matches == []
    with pytest.raises(ValueError, match="type:value"):
        parse_query("abc")


def test_a_long_tail_is_rebuilt_not_replayed_with_the_same_result(
        engine: Engine, tmp_path: Path, codes: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import vigil.banks.indexes

    banks = _bank(engine, codes)
    replay = BankIndexes(engine, tmp_path / "a")
    rebuilt = BankIndexes(engine, tmp_path / "b")
    rng = np.random.default_rng(3)
    more = hex_from_codes(rng.integers(0, 256, (60, 32), dtype=np.uint8))
    banks.apply("hk", [EntryRecord("pdq", c) for c in more])
    banks.apply("sg", [EntryRecord("pdq", c, op="remove") for c in codes[:10]])
    assert replay.sync() == 70  # replayed change by change
    monkeypatch.setattr(vigil.banks.indexes, "REBUILD_AFTER", 10)
    calls = []
    monkeypatch.setattr(rebuilt, "rebuild", lambda f=rebuilt.rebuild: calls.append(1) or f())
    assert rebuilt.sync() == 70 and calls == [1]  # 70 changes: more than its 51 entries
    assert rebuilt.sizes() == replay.sizes() == {"pdq": 100, "md5": 1, "sha1": 0, "sha256": 0}
    queries = np.concatenate([np.frombuffer(bytes.fromhex(c), np.uint8)[None]
                              for c in codes + more])
    a, b = replay.search_pdq(queries, 31), rebuilt.search_pdq(queries, 31)
    assert np.array_equal(a.offsets, b.offsets) and len(a.ids) == len(queries) - 10
    for i in range(len(queries)):
        sa, sb = slice(a.offsets[i], a.offsets[i + 1]), slice(b.offsets[i], b.offsets[i + 1])
        assert sorted(a.ids[sa].tolist()) == sorted(b.ids[sb].tolist())
