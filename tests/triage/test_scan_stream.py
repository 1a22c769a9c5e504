"""The scan streams its pending work from scan.db: equal to the in-memory reference."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from vigil.signals.runner import Unit
from vigil.triage import scan
from vigil.triage.scan import Listing, ScanOptions, ScanStats, units_of
from vigil.triage.scandb import ScanDB


def _evidence(root: Path) -> Path:
    """Plain files in nested folders, two zips (one nested in a folder), an empty file."""
    for k in range(40):
        d = root / f"d{k % 3}" / ("deep" if k % 5 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{k:02d}.txt").write_bytes(f"file {k}".encode())
    for name in ("a.zip", "d1/b.zip"):
        with zipfile.ZipFile(root / name, "w") as z:
            for j in range(4):
                z.writestr(f"m{j}.txt", f"{name} member {j}")
    (root / "empty.bin").write_bytes(b"")
    return root


def _units(db: ScanDB, root: Path) -> tuple[list[Unit], Listing]:
    listing = Listing(db, ScanOptions(inputs=(str(root),)), ScanStats(seconds={"enumerate": 0.0}))
    return list(listing), listing


def _as_set(units: list[Unit]) -> set[Unit]:
    assert len(set(units)) == len(units), "a unit handed out twice"
    return set(units)


def test_listing_hands_out_what_units_of_the_pending_paths_holds(tmp_path: Path) -> None:
    root = _evidence(tmp_path / "ev")
    db = ScanDB(tmp_path / "scan.db")
    try:
        units, listing = _units(db, root)
        assert listing.left == 0
        reference = units_of(db.pending_paths())
        assert sum(u.archive for u in reference) == 2 and len(reference) > 40
        assert _as_set(units) == set(reference)
        # archives only once the listing is complete: after every plain file it found
        first_archive = next(k for k, u in enumerate(units) if u.archive)
        assert all(u.archive for u in units[first_archive:first_archive + 2])
    finally:
        db.close()


def test_units_carry_their_listed_size_to_balance_tasks(tmp_path: Path) -> None:
    root = _evidence(tmp_path / "ev")
    db = ScanDB(tmp_path / "scan.db")
    try:
        units, _ = _units(db, root)
        for u in units:
            if not u.archive:
                assert u.size == Path(u.path).stat().st_size
        zipped = {u.path: u.size for u in units if u.archive}
        for outer, size in zipped.items():
            members = db.pending_under(outer)
            assert len(members) == 4 and size == sum(s for _, s in members) > 0
    finally:
        db.close()


def test_a_resumed_listing_hands_out_only_what_is_pending(tmp_path: Path) -> None:
    root = _evidence(tmp_path / "ev")
    db = ScanDB(tmp_path / "scan.db")
    try:
        _units(db, root)
        every = db.pending_paths()
        # some work already done, inside and outside archives; a file added since
        db.record([{"path": p, "status": "done"} for p in every[::3]])
        (root / "new.txt").write_bytes(b"added after the first run")
        units, listing = _units(db, root)
        assert listing.stats.registered == 1
        reference = units_of(db.pending_paths())
        assert any(u.path.endswith("new.txt") for u in reference)
        assert _as_set(units) == set(reference)
        assert not set(every[::3]) & {u.path for u in units if not u.archive}
    finally:
        db.close()


def test_hashing_starts_before_the_listing_ends(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The first unit is handed out after one step of the listing, not after all of it."""
    monkeypatch.setattr(scan, "LIST_STEP", 5)
    root = _evidence(tmp_path / "ev")
    db = ScanDB(tmp_path / "scan.db")
    try:
        listing = Listing(db, ScanOptions(inputs=(str(root),)),
                          ScanStats(seconds={"enumerate": 0.0}))
        it = iter(listing)
        first = next(it)
        assert not first.archive
        assert listing.stats.registered <= 5 and listing.left is None
        rest = list(it)
        assert listing.stats.registered > 40 and listing.left == 0
        assert _as_set([first, *rest]) == set(units_of(db.pending_paths()))
    finally:
        db.close()


def test_items_for_equals_items(scan_db: ScanDB) -> None:
    """The report reads only the items it shows: the same records ``items()`` holds."""
    every = {it.sha256: it for it in scan_db.items()}
    assert any(it.matches for it in every.values())
    assert any(len(it.paths) > 1 for it in every.values())
    assert scan_db.items_for([*every, "0" * 64]) == every
    some = sorted(every)[::2]
    assert scan_db.items_for(some) == {s: every[s] for s in some}
    assert scan_db.matches(limit=3) == scan_db.matches()[:3]
    assert sum(scan_db.distance_counts().values()) == scan_db.match_count() \
        == len(scan_db.matches())


def test_first_files_equal_the_files_grouped_in_memory(scan_db: ScanDB) -> None:
    """The VICS export streams items with their paths: as grouping every file would."""
    paths: dict[str, list[str]] = {}
    firsts = []
    for f in scan_db.files("done"):
        if f.sha256:
            if f.sha256 not in paths:
                firsts.append(f)
            paths.setdefault(f.sha256, []).append(f.path)
    streamed = list(scan_db.first_files())
    assert any(len(p) > 1 for p in paths.values())
    assert streamed == [(f, paths[f.sha256 or ""]) for f in firsts]
    assert scan_db.done_with_digest() == sum(len(p) for p in paths.values())


def test_files_with_first_equal_the_running_dict(scan_db: ScanDB) -> None:
    """results.jsonl names each duplicate's first path without a dict of every digest."""
    first: dict[str, str] = {}
    expected = []
    for f in scan_db.files():
        if f.sha256 and f.status == "done":
            first.setdefault(f.sha256, f.path)
        expected.append((f, first.get(f.sha256) if f.sha256 else None))
    assert sum(1 for f, p in expected if p and p != f.path) > 0
    assert list(scan_db.files_with_first()) == expected


def test_the_first_groups_equal_the_head_of_all(scan_db: ScanDB) -> None:
    """The report reads only the groups it shows, and counts the rest in SQL."""
    every = scan_db.groups()
    assert len(every) >= 2
    assert scan_db.groups(limit=1) == every[:1]
    assert scan_db.groups(limit=len(every) + 5) == every
    assert scan_db.group_totals() == (len(every), sum(len(g.members) for g in every))


def test_lookups_by_sha256_read_the_sha256_index(scan_db: ScanDB) -> None:
    """Reading a few items must not scan every file: SQLite, without statistics, would
    pick the status index (nearly every row is done) over the SHA-256 one."""
    statements: list[str] = []
    scan_db.conn.set_trace_callback(statements.append)
    try:
        some = sorted(it.sha256 for it in scan_db.items())[:3]
        scan_db.items_for(some)
        scan_db.unknown_details(some)
    finally:
        scan_db.conn.set_trace_callback(None)
    lookups = [s for s in statements if "sha256 IN (" in s and s.lstrip().startswith("SELECT")
               and "FROM files" in s]
    assert len(lookups) >= 2
    for sql in lookups:
        plan = " ".join(str(r[-1]) for r in scan_db.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "ix_files_sha256" in plan and "ix_files_status" not in plan, plan


def test_capture_times_equal_the_items_exif(tmp_path: Path) -> None:
    """The report's timeline reads each item's capture time by SQL: the same strings the
    items' EXIF holds (the first file's, for copies), odd values left out alike."""
    values: list[object] = ["2021:03:04 05:06:07", "2021-03-04T05:06:07", 20210304,
                            {"nested": "x"}, ["2021:01:01 00:00:00"], None, "", "garbage"]
    paths, rows = [], []
    for k in range(300):
        path = f"/e/f{k}.jpg"
        paths.append(path)
        exif = {} if k % 9 == 0 else {"datetime_original": values[k % len(values)],
                                     "make": "Cam"}
        # every third file is a copy of the one before: its own EXIF must not count
        sha = f"{(k - 1 if k % 3 == 2 else k):064x}"
        rows.append({"path": path, "status": "done", "sha256": sha, "kind": "image",
                     "exif": exif})
    db = ScanDB(tmp_path / "scan.db")
    try:
        db.add_pending([(p, None, 1, 0.0) for p in paths])
        db.record(rows)
        reference = [it.exif["datetime_original"] for chunk in db.iter_items(chunk=64)
                     for it in chunk if isinstance(it.exif.get("datetime_original"), str)]
        assert len(reference) > 50
        assert sorted(db.capture_times(chunk=64)) == sorted(reference)
    finally:
        db.close()
