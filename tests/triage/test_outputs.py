"""The scan's outputs written by two processes, or in parts, equal those written by one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.triage.conftest import Built
from vigil.triage.export_parts import PART_FILES, spans_of
from vigil.triage.outputs import PHASE, write_outputs

#: the moment of writing, which the report and the VICS case carry, and the VICS case's
#: new identifier (a scan given no case reference gets a fresh one)
_WHEN = re.compile(rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _written(built: Built, folder: Path, jobs: int, mode: str,
             part_files: int = PART_FILES) -> dict[str, bytes]:
    folder.mkdir()
    shutil.copy(built.path, folder / "scan.db")
    paths = write_outputs(folder, mode, {"S1": {"note": "a series note"}}, jobs=jobs,
                          part_files=part_files)
    assert paths[0].name == "report.html"
    return {p.name: _UUID.sub(b"<uuid>", _WHEN.sub(b"<when>", p.read_bytes())) for p in paths}


@pytest.mark.parametrize("mode", ["blurred", "none"])
def test_two_processes_write_the_same_outputs_as_one(built: Built, tmp_path: Path,
                                                    mode: str) -> None:
    one = _written(built, tmp_path / "one", 1, mode)
    two = _written(built, tmp_path / "two", 2, mode)
    assert sorted(one) == ["case.vics.json", "report.html", "results.csv", "results.jsonl"]
    assert one == two
    assert all(len(v) > 100 for v in one.values())


@pytest.mark.parametrize("part_files", [1, 2, 5])
def test_exports_written_in_parts_equal_one_process(built: Built, tmp_path: Path,
                                                    part_files: int) -> None:
    """Spans of 1, 2 and 5 files (every item's first file in another span than some of its
    duplicates, empty spans of VICS Media, matches split across spans): the joined parts
    are byte for byte what one process writes, and no part is left behind."""
    one = _written(built, tmp_path / "one", 1, "blurred")
    parts = _written(built, tmp_path / "parts", 2, "blurred", part_files=part_files)
    assert one == parts
    assert [p.name for p in (tmp_path / "parts").iterdir() if p.name.startswith(".")] == []


def test_spans_cover_the_ids_once() -> None:
    assert spans_of((1, 11), 4) == [(1, 5), (5, 9), (9, 11)]
    assert spans_of((3, 4), 50) == [(3, 4)]
    assert spans_of((1, 1), 4) == []


def test_a_failed_part_leaves_the_earlier_outputs_whole(built: Built, tmp_path: Path) -> None:
    """A row no part can read (a damaged EXIF field, late in the scan) fails the call with
    the error; the outputs of the run before are still there, unchanged, and no part file
    is left behind."""
    import json
    import sqlite3

    folder = tmp_path / "scan"
    before = _written(built, folder, 2, "none", part_files=4)
    with sqlite3.connect(folder / "scan.db") as conn:
        (last,) = conn.execute("SELECT max(id) FROM files").fetchone()
        conn.execute("UPDATE files SET exif = '{damaged' WHERE id = ?", (last,))
    with pytest.raises(json.JSONDecodeError):
        write_outputs(folder, "none", jobs=2, part_files=4)
    after = {p.name: _UUID.sub(b"<uuid>", _WHEN.sub(b"<when>", p.read_bytes()))
             for p in folder.iterdir() if p.name in before}
    assert after == before
    left = {p.name for p in folder.iterdir() if not p.name.startswith("scan.db")}
    assert left == set(before)  # no part folder, no half-written .tmp file


@pytest.mark.parametrize(("jobs", "part_files"), [(1, PART_FILES), (2, PART_FILES), (2, 4)])
def test_progress_is_told_of_the_start_each_part_and_the_end(
        built: Built, tmp_path: Path, jobs: int, part_files: int) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    shutil.copy(built.path, folder / "scan.db")
    heard: list[tuple[str, int, int]] = []
    write_outputs(folder, "none", jobs=jobs, part_files=part_files,
                  progress=lambda *a: heard.append(a))
    assert heard[0] == (PHASE, 0, 1) and heard[-1] == (PHASE, 1, 1)
    middle = heard[1:-1]
    if part_files == 4:  # 30 files: 8 spans, a results and a VICS part each, then the join
        assert [t for _, _, t in middle] == [17] * len(middle) and len(middle) == 16
        done = [d for _, d, _ in middle]
        assert done == sorted(done) and done[-1] == 16
    else:
        assert middle == []
