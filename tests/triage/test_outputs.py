"""The scan's outputs written by two processes equal those written by one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.triage.conftest import Built
from vigil.triage.outputs import write_outputs

#: the moment of writing, which the report and the VICS case carry, and the VICS case's
#: new identifier (a scan given no case reference gets a fresh one)
_WHEN = re.compile(rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _written(built: Built, folder: Path, jobs: int, mode: str) -> dict[str, bytes]:
    folder.mkdir()
    shutil.copy(built.path, folder / "scan.db")
    paths = write_outputs(folder, mode, {"S1": {"note": "a series note"}}, jobs=jobs)
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
