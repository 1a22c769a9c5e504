"""Banks on a real store (SQLite, and PostgreSQL when configured): log, labels, rollback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.banks import BankError, Banks, EntryReader
from vigil.banks.entry import EntryRecord, Labels
from vigil.store.models import Change, Entry


def _hex(i: int, n: int = 64) -> str:
    return f"{i:0{n}x}"


def _recs(n: int, start: int = 0, **labels: object) -> list[EntryRecord]:
    lab = Labels(**labels) if labels else Labels(category=("us", "1"), series="S1")
    return [EntryRecord("md5", _hex(start + i, 32), lab) for i in range(n)]


def _changes(engine: Engine, bank_id: int) -> list[tuple[int, str, int]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(Change.seq, Change.op, Change.entry_id).where(Change.bank_id == bank_id)
            .order_by(Change.seq))]


def test_create_list_and_errors(engine: Engine) -> None:
    banks = Banks(engine, user="tester")
    info = banks.create("sg-known", "SG-SPF", "known material", "us")
    assert info.entries == 0 and info.last_seq == 0 and info.default_scheme == "us"
    with pytest.raises(BankError, match="already exists"):
        banks.create("sg-known", "SG-SPF")
    with pytest.raises(BankError, match="no bank named 'nope'; banks: sg-known"):
        banks.get("nope")
    with pytest.raises(BankError, match="no bank named 'nope'; banks: sg-known"):
        banks.require("nope")
    banks.require("sg-known")
    with pytest.raises(BankError, match="scheme"):
        banks.create("x", "SG-SPF", default_scheme="eu")
    assert [b.name for b in banks.list()] == ["sg-known"]


def test_adds_are_logged_with_gap_free_sequence_numbers(engine: Engine) -> None:
    banks = Banks(engine, user="tester")
    info = banks.create("b", "HK-HKPF")
    r = banks.apply("b", _recs(12), source="file:a.csv", batch_size=5)
    assert (r.added, r.updated, r.unchanged) == (12, 0, 0)
    log = _changes(engine, info.id)
    assert [seq for seq, _, _ in log] == list(range(1, 13))
    assert {op for _, op, _ in log} == {"add"}
    assert banks.get("b").last_seq == 12 and banks.get("b").entries == 12
    with Session(engine) as s:
        e = s.scalars(select(Entry)).first()
        assert e is not None and e.origin_agency == "HK-HKPF" and e.added_by == "tester"
        assert e.source == "file:a.csv"


def test_relabel_remove_and_readd_each_leave_one_log_record(engine: Engine) -> None:
    banks = Banks(engine)
    info = banks.create("b", "KR-KNPA")
    banks.apply("b", _recs(3))
    assert banks.apply("b", _recs(3)).unchanged == 3  # nothing changed: nothing logged
    relabel = [EntryRecord("md5", _hex(0, 32), Labels(category=("uk", "A"), note="seen"))]
    assert banks.apply("b", relabel).updated == 1
    assert banks.apply("b", [EntryRecord("md5", _hex(1, 32), op="remove")]).removed == 1
    assert banks.apply("b", [EntryRecord("md5", _hex(9, 32), op="remove")]).not_found == 1
    assert banks.apply("b", [EntryRecord("md5", _hex(1, 32))]).added == 1
    log = _changes(engine, info.id)
    assert [op for _, op, _ in log] == ["add", "add", "add", "update", "remove", "add"]
    assert [seq for seq, _, _ in log] == list(range(1, 7))
    entries = {e.value: e for e in EntryReader(banks.engine).entries("b")}
    assert entries[_hex(0, 32)].labels.category == ("uk", "A")
    assert entries[_hex(0, 32)].labels.note == "seen"


def test_removed_entries_are_tombstones_not_deletes(engine: Engine) -> None:
    banks = Banks(engine)
    banks.create("b", "SG-SPF")
    banks.apply("b", _recs(4))
    banks.apply("b", [EntryRecord("md5", _hex(2, 32), op="remove")])
    assert len(list(EntryReader(banks.engine).entries("b"))) == 3
    all_rows = list(EntryReader(banks.engine).entries("b", include_removed=True))
    assert len(all_rows) == 4 and sum(e.removed for e in all_rows) == 1
    assert banks.stats("b").removed == 1


def test_a_failing_import_leaves_the_bank_untouched(engine: Engine) -> None:
    banks = Banks(engine)
    banks.create("b", "SG-SPF")

    def broken() -> Iterator[EntryRecord]:
        yield from _recs(7)
        raise ValueError("record 8: malformed")

    with pytest.raises(ValueError, match="record 8"):
        banks.apply("b", broken(), batch_size=3)
    info = banks.get("b")
    assert info.entries == 0 and info.last_seq == 0
    assert _changes(engine, info.id) == []


def test_last_record_for_a_signal_wins_within_an_import(engine: Engine) -> None:
    banks = Banks(engine)
    banks.create("b", "SG-SPF")
    recs = [EntryRecord("md5", _hex(1, 32), Labels(series="first")),
            EntryRecord("md5", _hex(1, 32), Labels(series="second"))]
    assert banks.apply("b", recs).added == 1
    [e] = list(EntryReader(banks.engine).entries("b"))
    assert e.labels.series == "second"


def test_stats_count_without_showing_hashes(engine: Engine) -> None:
    banks = Banks(engine)
    banks.create("b", "SG-SPF")
    banks.apply("b", [*_recs(3), EntryRecord("pdq", _hex(5), Labels(category=("uk", "B"))),
                      EntryRecord("sha1", _hex(6, 40))])
    st = banks.stats("b")
    assert st.by_signal_type == {"md5": 3, "pdq": 1, "sha1": 1}
    assert st.by_category == {"us:1": 3, "uk:B": 1, "uncategorised": 1}
    assert st.by_victim_status == {"unknown": 5}
    assert st.series == 1
    assert _hex(5) not in repr(st)


def test_same_signal_in_two_banks_is_two_entries(engine: Engine) -> None:
    banks = Banks(engine)
    banks.create("a", "SG-SPF")
    banks.create("b", "HK-HKPF")
    banks.apply("a", _recs(2))
    banks.apply("b", _recs(2))
    found = EntryReader(banks.engine).find("md5", [_hex(0, 32)])
    assert sorted(e.bank for e in found) == ["a", "b"]
