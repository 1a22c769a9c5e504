"""A hashed file through scan.db and back: the scan matches exactly what `vigil match` would.

Query building lives in one place (``vigil.matching.queries_of``); the scan gets there
through its database row, so the row must keep every signal a query needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import encode
from vigil.matching import queries_of
from vigil.signals import HashOptions, hash_file
from vigil.signals.options import VariantOption
from vigil.triage.rows import hash_options, scan_row, signals_of
from vigil.triage.scandb import ScanDB


@pytest.mark.parametrize(("dihedral", "variants"),
                         [(False, "off"), (True, "off"), (False, "features")])
def test_queries_survive_the_scan_database(tmp_path: Path, shared: Path,
                                           dihedral: bool, variants: VariantOption) -> None:
    from vigil.demo.synthetic import synthetic_image

    photo = tmp_path / "p.jpg"
    photo.write_bytes(encode(synthetic_image(3, (640, 480))))
    video = shared / "fixtures/video/sample-videos/chair-20-sd-bar.mp4"
    options = hash_options("fast", dihedral, thumbnails=True, variants=variants)
    db = ScanDB(tmp_path / "scan.db")
    hashed = [hash_file(p, options) for p in (photo, video)]
    db.add_pending([(r.path, None, None, None) for r in hashed])
    db.record([scan_row(r) for r in hashed])
    items = {it.paths[0]: it for chunk in db.iter_items() for it in chunk}
    lean = {row.sha256: row for row in db.signal_rows(items[r.path].sha256 for r in hashed)}
    db.close()
    for r in hashed:
        assert queries_of(signals_of(items[r.path]), dihedral) == queries_of(r, dihedral)
        # what matching during a scan reads (``signal_rows``) gives the same queries
        assert r.digests is not None
        assert queries_of(signals_of(lean[r.digests.sha256]), dihedral) == queries_of(r, dihedral)
    assert hashed[0].thumbnail and hashed[0].exif is None  # synthetic: no EXIF


def test_an_error_row_keeps_what_was_learnt(tmp_path: Path) -> None:
    from vigil.demo.synthetic import synthetic_image

    data = encode(synthetic_image(4, (640, 480)))
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    row = scan_row(hash_file(p, HashOptions(exif=True)))
    assert row["status"] == "error" and row["error_code"] == "corrupt-image"
    assert (row["kind"], row["format"], row["width"], row["height"]) == ("image", "JPEG",
                                                                        640, 480)
    assert row["sha256"] and "pdq" not in row
