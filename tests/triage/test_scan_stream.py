"""The scan streams its pending work from scan.db: equal to the in-memory reference."""

from __future__ import annotations

from pathlib import Path

from vigil.signals.evidence import SEP
from vigil.triage.scan import pending_units, units_of
from vigil.triage.scandb import ScanDB


def test_pending_units_equal_units_of_the_pending_paths(tmp_path: Path) -> None:
    paths = []
    for k in range(12_000):  # more than two pages of plain files
        paths.append(f"/e/d{k % 7}/f{k}.jpg")
        if k % 1000 == 0:  # archives, nested ones, and names that sort next to them
            outer = f"/e/a{k}.zip"
            paths += [f"{outer}{SEP}m{j}.png" for j in range(5)]
            paths += [f"{outer}{SEP}inner.tar{SEP}x{j}.png" for j in range(3)]
            paths += [f"{outer}0.jpg", f"{outer}.jpg", f"/e/a{k}.zi{SEP[0]}"]
    db = ScanDB(tmp_path / "scan.db")
    try:
        db.add_pending([(p, None, 1, 0.0) for p in paths])
        # some work already done (a resumed scan), inside and outside archives
        db.record([{"path": p, "status": "done"} for p in paths[::5]])
        reference = units_of(db.pending_paths())
        streamed = list(pending_units(db))
        assert len(reference) > 9000 and any(u.archive for u in reference)
        assert streamed == reference
        assert db.pending_count() == len(db.pending_paths())
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
