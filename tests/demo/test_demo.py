"""`make demo` must keep working: it is the first thing a newcomer runs."""

from __future__ import annotations

from pathlib import Path

from vigil import demo
from vigil.triage.scandb import ScanDB


def test_demo_scans_the_benign_seizure_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--quiet"]) == 0
    for name in ("report.html", "results.jsonl", "results.csv", "case.vics.json"):
        assert (out / "scan" / name).is_file(), name
    db = ScanDB(out / "scan" / "scan.db")
    s = db.summary()
    known = {p.rsplit("/", 1)[-1] for it in db.items() if it.matches for p in it.paths}
    db.close()
    # every edited copy is known (rotated/mirrored through --dihedral), in the zip too
    assert {"img_000_resized.jpg", "img_001_recompressed.jpg", "img_002_greyscale.jpg",
            "img_003_brighter.jpg", "img_004_rotated.jpg", "img_005_mirrored.jpg",
            "img_006_exact.jpg", "copy-of-6.jpg", "known-7.jpg", "flipped.jpg"} <= known
    assert not any(n.startswith(("IMG_", "new-")) for n in known)  # new material stays unknown
    assert s.duplicates >= 1
    assert s.groups >= 1  # the camera roll
    assert s.errors_by_code.get("corrupt-image") == 1 and s.errors_by_code.get("empty-file") == 1
