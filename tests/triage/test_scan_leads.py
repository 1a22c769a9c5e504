"""Matching while hashing (``vigil.triage.leads.MatchAsHashed``) against the reference,
every item matched after hashing (``match_all``)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.triage.test_scan import _matcher, _seizure
from vigil.demo.synthetic import synthetic_image
from vigil.matching import Matcher
from vigil.triage.leads import match_all
from vigil.triage.scan import ScanOptions, run_scan
from vigil.triage.scandb import ScanDB


def _matches(db_path: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db_path)) as c:
        return c.execute("SELECT sha256, bank, agency, entry_id, signal_type, signals, variant,"
                         " distance, category_scheme, category, series, victim_status, tags,"
                         " detail FROM matches ORDER BY sha256, bank, entry_id").fetchall()


def _reference(out: Path, options: ScanOptions, matcher: Matcher, tmp: Path) -> list[object]:
    copy = tmp / "reference.db"
    src, dst = sqlite3.connect(out / "scan.db"), sqlite3.connect(copy)
    src.backup(dst)  # with what is still in the write-ahead log
    src.close()
    dst.close()
    db = ScanDB(copy)
    try:
        db.clear_matches()
        match_all(db, options, matcher)
    finally:
        db.close()
    return list(_matches(copy))


@pytest.mark.parametrize("jobs", [1, 2])
def test_matching_while_hashing_equals_matching_afterwards(engine: Engine, tmp_path: Path,
                                                            jobs: int) -> None:
    files, ev = _seizure(tmp_path, n_new=12)
    matcher = _matcher(engine, tmp_path, files)
    out = tmp_path / "out"
    options = ScanOptions(inputs=(str(ev),), jobs=jobs, dihedral=True)
    run_scan(out, options, matcher)
    got = _matches(out / "scan.db")
    assert len({m[0] for m in got}) == 3  # copy+dup (one item), small, k2 in the zip
    assert got == _reference(out, options, matcher, tmp_path)


def test_a_rerun_matches_earlier_items_and_new_ones_once(engine: Engine, tmp_path: Path) -> None:
    """The second run hashes only the new files: the earlier run's items are matched after
    hashing, the new ones while hashing, each once."""
    files, ev = _seizure(tmp_path)
    matcher = _matcher(engine, tmp_path, files)
    out = tmp_path / "out"
    options = ScanOptions(inputs=(str(ev),), jobs=2)
    run_scan(out, options, matcher)
    first = _matches(out / "scan.db")
    (ev / "later").mkdir()
    (ev / "later" / "k1-again.jpg").write_bytes(files[1].read_bytes())
    synthetic_image(103, (480, 360)).resize((300, 225)).save(ev / "later" / "k3-small.jpg")
    stats = run_scan(out, options, matcher)
    assert stats.hashed == 2
    got = _matches(out / "scan.db")
    assert len(got) == len(first) + 2
    assert set(first) < set(got)
    assert got == _reference(out, options, matcher, tmp_path)


def test_an_error_while_matching_fails_the_scan(engine: Engine, tmp_path: Path) -> None:
    files, ev = _seizure(tmp_path)
    matcher = _matcher(engine, tmp_path, files)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="no bank named 'absent'"):
        run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1, banks=("absent",)), matcher)
    db = ScanDB(out / "scan.db")
    try:
        assert db.get_meta("phase") == "matching"  # a reader knows the matches are unsettled
        assert db.pending_count() == 0  # the hashing already done is kept
    finally:
        db.close()
