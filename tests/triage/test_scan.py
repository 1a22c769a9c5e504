"""`vigil scan` end to end: matches, duplicates, errors, archives, and resume after kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from vigil.banks import Banks
from vigil.indexes import BankIndexes
from vigil.matching import Matcher
from vigil.signals import hash_file
from vigil.synthetic import synthetic_image
from vigil.triage.scan import ScanError, ScanOptions, run_scan
from vigil.triage.scandb import ScanDB


def _seizure(root: Path, n_new: int = 6) -> tuple[list[Path], Path]:
    known = root / "known"
    known.mkdir(parents=True)
    files = []
    for i in range(4):
        p = known / f"k{i}.jpg"
        synthetic_image(100 + i, (480, 360)).save(p, quality=92)
        files.append(p)
    ev = root / "evidence"
    (ev / "a").mkdir(parents=True)
    (ev / "a" / "copy.jpg").write_bytes(files[0].read_bytes())
    (ev / "a" / "dup.jpg").write_bytes(files[0].read_bytes())
    synthetic_image(101, (480, 360)).resize((240, 180)).save(ev / "a" / "small.jpg")
    for j in range(n_new):
        synthetic_image(900 + j, (480, 360)).save(ev / f"new{j}.png")
    with zipfile.ZipFile(ev / "a" / "arch.zip", "w") as z:
        z.writestr("in/k2.jpg", files[2].read_bytes())
    (ev / "bad.jpg").write_bytes(files[3].read_bytes()[:500])
    (ev / "zero.dat").write_bytes(b"")
    (ev / "notes.txt").write_text("hello")
    return files, ev


def _matcher(engine: Engine, tmp_path: Path, files: list[Path]) -> Matcher:
    banks = Banks(engine)
    banks.create("known", "SG-SPF")
    from vigil.cli.bank import _file_records
    from vigil.entry import Labels

    recs = [r for f in files for r in _file_records(hash_file(f), Labels(category=("us", "1"),
                                                                        series="S1"))]
    banks.apply("known", recs)
    return Matcher(banks, BankIndexes(engine, tmp_path / "idx"))


def test_scan_finds_known_copies_duplicates_and_errors(engine: Engine, tmp_path: Path) -> None:
    files, ev = _seizure(tmp_path)
    matcher = _matcher(engine, tmp_path, files)
    out = tmp_path / "out"
    stats = run_scan(out, ScanOptions(inputs=(str(ev),), jobs=2), matcher)
    db = ScanDB(out / "scan.db")
    s = db.summary()
    known = {Path(p).name for it in db.items() if it.matches for p in it.paths}
    assert known == {"copy.jpg", "dup.jpg", "small.jpg", "k2.jpg"}
    assert s.duplicates == 1  # dup.jpg is copy.jpg
    assert s.errors_by_code == {"corrupt-image": 1, "empty-file": 1}
    assert s.known_by_category == {"us:1": 3}
    assert stats.hashed == s.files
    small = next(it for it in db.items() if any(p.endswith("small.jpg") for p in it.paths))
    assert small.matches[0].signal_type == "pdq" and 0 < small.matches[0].distance <= 31
    # a rerun does nothing new and changes nothing
    before = db.conn.execute("SELECT path, sha256, pdq, status FROM files ORDER BY path").fetchall()
    db.close()
    again = run_scan(out, ScanOptions(inputs=(str(ev),), jobs=2), matcher)
    assert again.hashed == 0 and again.skipped_done == s.files
    with sqlite3.connect(out / "scan.db") as c:
        after = c.execute("SELECT path, sha256, pdq, status FROM files ORDER BY path").fetchall()
    assert after == before
    with pytest.raises(ScanError, match="other evidence"):
        run_scan(out, ScanOptions(inputs=(str(files[0]),)), matcher)


def _rows(db_path: Path) -> tuple[list[tuple[object, ...]], ...]:
    with sqlite3.connect(db_path) as c:
        files = c.execute("SELECT path, status, size, kind, format, md5, sha1, sha256, pdq, "
                          "pdq_quality, error_code FROM files ORDER BY path").fetchall()
        matches = c.execute("SELECT sha256, bank, entry_id, distance FROM matches "
                            "ORDER BY sha256, entry_id").fetchall()
        groups = c.execute("SELECT g.rank, m.sha256 FROM groups g JOIN group_members m ON "
                           "m.group_id = g.id ORDER BY g.rank, m.sha256").fetchall()
    return files, matches, groups


def test_resume_after_kill_9_gives_identical_results(tmp_path: Path) -> None:
    """Kill the real CLI mid-scan, rerun the same command: same results, nothing redone."""
    ev = tmp_path / "ev"
    ev.mkdir()
    n = 300  # enough work (a few seconds) that the kill lands mid-scan
    for b in range(10):
        img = synthetic_image(b, (1600, 1200))
        for k in range(n // 10):
            img.save(ev / f"p{b}{k:03d}.jpg", quality=70 + k)
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home")}
    env.pop("VIGIL_DATABASE_URL", None)

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "vigil", "scan", str(ev), "--out", str(out), "-q",
                "-j", "2"]

    subprocess.run(cmd(tmp_path / "whole"), env=env, check=True, capture_output=True,
                   timeout=300)
    out = tmp_path / "killed"
    proc = subprocess.Popen(cmd(out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        try:
            with sqlite3.connect(out / "scan.db", timeout=1) as c:
                done = c.execute("SELECT count(*) FROM files WHERE status != 'pending'"
                                 ).fetchone()[0]
        except sqlite3.Error:
            continue
        if done >= 1:  # the first results are committed: kill now
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the scan and its workers, mid-flight
    proc.wait()
    assert 0 < done < n, "the scan must be killed mid-way for this test to mean anything"
    with sqlite3.connect(out / "scan.db") as c:
        left = c.execute("SELECT count(*) FROM files WHERE status = 'pending'").fetchone()[0]
    r = subprocess.run(cmd(out), env=env, check=True, capture_output=True, text=True,
                       timeout=300)
    assert "resumed" in r.stdout and f"hashed {left:,} this run" in r.stdout
    assert _rows(out / "scan.db") == _rows(tmp_path / "whole" / "scan.db")


def test_compressed_tar_with_nested_zip_is_read_in_one_pass(tmp_path: Path) -> None:
    import io
    import tarfile

    ev = tmp_path / "ev"
    ev.mkdir()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for k in range(2):
            buf = io.BytesIO()
            synthetic_image(50 + k).save(buf, "JPEG")
            z.writestr(f"z{k}.jpg", buf.getvalue())
    with tarfile.open(ev / "phone.tar.gz", "w:gz") as t:
        blobs = {"inner.zip": inner.getvalue()}
        for k in range(5):
            buf = io.BytesIO()
            synthetic_image(60 + k).save(buf, "PNG")
            blobs[f"dcim/p{k}.png"] = buf.getvalue()
        for name, data in blobs.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    out = tmp_path / "out"
    run_scan(out, ScanOptions(inputs=(str(ev),), jobs=2), None)
    db = ScanDB(out / "scan.db")
    rows = {f.path.split("!/", 1)[-1]: f for f in db.files()}
    db.close()
    assert set(rows) == {str(ev / "phone.tar.gz"), "inner.zip", "inner.zip!/z0.jpg",
                         "inner.zip!/z1.jpg", *(f"dcim/p{k}.png" for k in range(5))}
    assert all(f.status == "done" for f in rows.values())
    assert sum(1 for f in rows.values() if f.pdq) == 7


def test_videos_are_hashed_and_matched_with_time_ranges(engine: Engine, tmp_path: Path,
                                                        shared: Path) -> None:
    videos = shared / "fixtures/video/sample-videos"
    ev = tmp_path / "ev"
    ev.mkdir()
    for name in ("chair-22-sd-grey-bar.mp4", "doorknob-hd-no-bar.mp4"):
        (ev / name.replace(".mp4", ".dat")).write_bytes((videos / name).read_bytes())  # renamed
    matcher = _matcher(engine, tmp_path, [videos / "chair-orig-22-sd-bar.mp4"])
    out = tmp_path / "out"
    run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), matcher)
    db = ScanDB(out / "scan.db")
    items = {Path(it.paths[0]).name: it for it in db.items()}
    db.close()
    grey, door = items["chair-22-sd-grey-bar.dat"], items["doorknob-hd-no-bar.dat"]
    assert grey.kind == "video" and grey.vpdq and len(grey.vpdq.splitlines()) >= 20
    [m] = grey.matches
    assert m.signal_type == "vpdq" and m.detail is not None
    assert m.detail["query_pct"] >= 80 and m.detail["query_ranges"][0][1] > 10
    assert door.kind == "video" and door.matches == []
    from vigil.cli.scan import write_outputs

    write_outputs(out, "blurred")
    assert "% of the bank video" in (out / "report.html").read_text()


def test_unknown_videos_group_like_images(tmp_path: Path, shared: Path) -> None:
    videos = shared / "fixtures/video/sample-videos"
    ev = tmp_path / "ev"
    ev.mkdir()
    for name in ("chair-20-sd-bar.mp4", "chair-22-sd-sepia-bar.mp4", "doorknob-hd-no-bar.mp4"):
        (ev / name).write_bytes((videos / name).read_bytes())
    out = tmp_path / "out"
    run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), None)
    db = ScanDB(out / "scan.db")
    names = {it.sha256: Path(it.paths[0]).name for it in db.items()}
    groups = [sorted(names[s] for s, _ in g.members) for g in db.groups()]
    keyframes = [db.thumbnail(s) for s in names]
    db.close()
    assert groups == [["chair-20-sd-bar.mp4", "chair-22-sd-sepia-bar.mp4"]]
    assert all(k and k[:2] == b"\xff\xd8" for k in keyframes)  # a keyframe per video (JPEG)


def test_a_scan_db_from_an_older_vigil_gains_new_columns(tmp_path: Path) -> None:
    """A scan killed under an older release resumes under a newer one."""
    path = tmp_path / "scan.db"
    with sqlite3.connect(path) as c:
        c.executescript("CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT UNIQUE, "
                        "container TEXT, status TEXT DEFAULT 'pending', size INTEGER, "
                        "mtime REAL, kind TEXT, format TEXT, width INTEGER, height INTEGER, "
                        "md5 TEXT, sha1 TEXT, sha256 TEXT, pdq TEXT, pdq_quality INTEGER, "
                        "exif TEXT, device TEXT, error_code TEXT, error_message TEXT, "
                        "seconds REAL);")
    db = ScanDB(path)
    db.add_pending([("a.mp4", None, 1, 0.0)])
    db.record([{"path": "a.mp4", "status": "done", "vpdq": "0,100," + "0" * 64 + ",0.000"}])
    [f] = list(db.files())
    db.close()
    assert f.vpdq and f.status == "done"


def test_chunked_items_equal_items(scan_db: ScanDB) -> None:
    """The streaming reader the scan uses gives exactly what the simple one gives."""
    def key(it):  # type: ignore[no-untyped-def]
        return (it.sha256, sorted(it.paths), it.kind, it.pdq, it.md5, it.device, it.vpdq)

    simple = sorted(key(it) for it in scan_db.items())
    for chunk in (1, 3, 5000):
        streamed = sorted(key(it) for part in scan_db.iter_items(chunk) for it in part)
        assert streamed == simple
    images = sorted(key(it) for part in scan_db.iter_items(4, kinds=("image",)) for it in part)
    assert images == sorted(key(it) for it in scan_db.items() if it.kind == "image")
