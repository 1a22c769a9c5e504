"""`vigil hash` end to end, as a user runs it: a real process on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import encode
from vigil.synthetic import synthetic_image


def _vigil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil", *args], capture_output=True,
                          text=True, timeout=120)


def _evidence(tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.jpg").write_bytes(encode(synthetic_image(1)))
    (folder / "sub" / "two.png").write_bytes(encode(synthetic_image(2), "PNG"))
    (folder / "sub" / "readme.txt").write_text("hello")
    data = encode(synthetic_image(3, (640, 480)))
    (folder / "sub" / "broken.jpg").write_bytes(data[: len(data) // 3])
    return folder


def test_hash_json_reports_everything_and_goes_on(tmp_path: Path) -> None:
    r = _vigil("hash", "--json", str(_evidence(tmp_path)))
    assert r.returncode == 1  # one file failed
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    by_name = {Path(row["path"]).name: row for row in rows}
    assert set(by_name) == {"one.jpg", "two.png", "readme.txt", "broken.jpg"}
    assert len(by_name["one.jpg"]["pdq"]) == 64 and 0 <= by_name["one.jpg"]["pdq_quality"] <= 100
    assert "pdq" not in by_name["readme.txt"] and len(by_name["readme.txt"]["sha256"]) == 64
    assert by_name["broken.jpg"]["error"]["code"] == "corrupt-image"
    assert "broken.jpg" in r.stderr and "1 of 4 files failed" in r.stderr


def test_hash_text_reference_dihedral_and_jobs(tmp_path: Path) -> None:
    folder = _evidence(tmp_path)
    (folder / "sub" / "broken.jpg").unlink()
    plain = _vigil("hash", str(folder))
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("pdq=") and lines[0].endswith("one.jpg")
    par = _vigil("hash", "-j", "2", "--reference", str(folder))
    assert par.stdout == plain.stdout  # small images: fast path == reference, order kept
    dih = _vigil("hash", "--dihedral", str(folder / "one.jpg"))
    assert "rotate90=" in dih.stdout and "flip-minus1=" in dih.stdout


def test_help_teaches() -> None:
    r = _vigil("hash", "--help")
    assert r.returncode == 0
    assert "--reference" in r.stdout and "Examples" in r.stdout
