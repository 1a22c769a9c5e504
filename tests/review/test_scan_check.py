"""A scan being resumed is refused for review until its run finishes: the earlier run's
finish time and no pending file are not enough while its matches and groups are being
recomputed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.review.conftest import _photos
from vigil.review.scan import ScanFolderError, check_scan_folder
from vigil.triage import scan as scan_module
from vigil.triage.scan import ScanOptions, run_scan
from vigil.triage.scandb import ScanDB


def test_a_resumed_scan_that_hashed_but_did_not_group_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = _photos()
    seizure, out = tmp_path / "seizure", tmp_path / "scan"
    seizure.mkdir()
    for p in photos[:2]:
        shutil.copy(p, seizure / p.name)
    options = ScanOptions(inputs=(str(seizure),), jobs=1)
    run_scan(out, options, None)
    assert check_scan_folder(out) == out / "scan.db"

    # resumed with one more file; the run dies while grouping
    shutil.copy(photos[2], seizure / photos[2].name)

    def dies(db: ScanDB, options: ScanOptions, progress: object = None) -> None:
        raise RuntimeError("killed while grouping")

    monkeypatch.setattr(scan_module, "_group", dies)
    with pytest.raises(RuntimeError):
        run_scan(out, options, None)
    db = ScanDB(out / "scan.db")
    # what the check used to rely on says "finished": nothing pending, a finish time after
    # the start (the earlier run's)
    assert db.pending_count() == 0
    assert db.get_meta("finished_at") > db.get_meta("started_at")
    assert db.get_meta("phase") == "grouping"
    db.close()
    with pytest.raises(ScanFolderError, match=r"has not finished \(its files are hashed and "
                                              r"matched, but not yet grouped\)"):
        check_scan_folder(out)

    monkeypatch.undo()  # the same command again completes it
    run_scan(out, options, None)
    assert check_scan_folder(out) == out / "scan.db"


def test_a_scan_stopped_while_matching_names_the_step(tmp_path: Path) -> None:
    out = tmp_path / "scan"
    out.mkdir()
    db = ScanDB(out / "scan.db")
    db.set_meta("started_at", 1.0)
    db.set_meta("finished_at", 2.0)
    db.set_meta("phase", "matching")
    db.close()
    with pytest.raises(ScanFolderError, match="hashed, but not yet matched and grouped"):
        check_scan_folder(out)
