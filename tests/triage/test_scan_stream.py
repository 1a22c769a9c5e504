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
