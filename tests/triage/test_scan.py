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

from vigil.banks import Banks, EntryReader
from vigil.banks.indexes import BankIndexes
from vigil.demo.synthetic import synthetic_image
from vigil.matching import Matcher
from vigil.signals import hash_file
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
    from vigil.banks.entry import Labels
    from vigil.banks.files import records_of_file

    recs = [r for f in files for r in records_of_file(hash_file(f), Labels(category=("us", "1"),
                                                                        series="S1"))]
    banks.apply("known", recs)
    return Matcher(EntryReader(engine), BankIndexes(engine, tmp_path / "idx"))


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
        # what the rerun hashes: files left pending, and those not listed yet (hashing
        # starts while the listing goes on)
        left = n - c.execute("SELECT count(*) FROM files WHERE status != 'pending'"
                             ).fetchone()[0]
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
    from vigil.triage.outputs import write_outputs

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
    thumbs = [db.thumbnail(s) for s in names]
    keyframes = [db.keyframes(s) for s in names]
    db.close()
    assert groups == [["chair-20-sd-bar.mp4", "chair-22-sd-sepia-bar.mp4"]]
    assert all(k and k[:2] == b"\xff\xd8" for k in thumbs)  # a thumbnail per video (JPEG)
    for thumb, frames in zip(thumbs, keyframes, strict=True):
        # several keyframes per video, in time order, the thumbnail one of them
        assert len(frames) >= 4 and all(j[:2] == b"\xff\xd8" for _, j in frames)
        assert [t for t, _ in frames] == sorted({t for t, _ in frames})
        assert thumb in [j for _, j in frames]


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
    assert db.keyframes("0" * 64) == []  # the keyframes table was created in place
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


def _cli_scan(ev: Path, out: Path, env: dict[str, str], *extra: str
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil", "scan", str(ev), "--out", str(out),
                           "-q", "--no-match", *extra], env=env, capture_output=True, text=True,
                          timeout=300)


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home")}
    env.pop("VIGIL_DATABASE_URL", None)
    return env


def test_a_worker_killed_mid_scan_costs_only_the_file_in_flight(tmp_path: Path) -> None:
    """kill -9 of a pool worker (twice, while it hashes the same file): the scan notices,
    retries the file once, records it as ``worker-died``, starts new workers and finishes
    with every other row equal to an undisturbed scan's."""
    from tests.signals.procs import Killer

    _files, ev = _seizure(tmp_path)
    slow = ev / "a" / "slow.bin"
    with open(slow, "wb") as fh:
        fh.truncate(256 << 20)  # sparse: its digests keep a worker busy for a while
    env = _cli_env(tmp_path)
    whole = _cli_scan(ev, tmp_path / "whole", env, "-j", "2")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "vigil", "scan", str(ev), "--out", str(out), "-q",
           "--no-match", "-j", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    killer = Killer(slow, times=2, spare={proc.pid})  # the scan itself opens it to list it
    killer.start()
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    killer.join()
    assert len(killer.killed) == 2 and proc.pid not in killer.killed
    assert proc.returncode == 0, stderr
    assert "worker-died 1" in stdout
    got, want = _rows(out / "scan.db"), _rows(tmp_path / "whole" / "scan.db")
    [died] = [r for r in got[0] if r[0] == str(slow)]
    assert died[1] == "error" and died[-1] == "worker-died"
    assert [r for r in got[0] if r[0] != str(slow)] == [r for r in want[0] if r[0] != str(slow)]
    assert got[1:] == want[1:]


def test_an_unknown_bank_is_refused_before_anything_is_scanned(tmp_path: Path) -> None:
    """``--bank`` is checked (cheaply) first: the error names the bank, no scan folder."""
    ev = tmp_path / "ev"
    ev.mkdir()
    synthetic_image(1, (64, 48)).save(ev / "a.jpg")
    env = _cli_env(tmp_path)
    r = subprocess.run([sys.executable, "-m", "vigil", "scan", str(ev), "--out",
                        str(tmp_path / "out"), "-q", "--bank", "nope"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "no bank named 'nope'" in r.stderr
    assert not (tmp_path / "out" / "scan.db").exists()


def test_a_fresh_scan_is_not_called_resumed(tmp_path: Path) -> None:
    """Listing errors are this run's findings, not work an earlier run did."""
    ev = tmp_path / "ev"
    ev.mkdir()
    synthetic_image(1, (64, 48)).save(ev / "a.jpg")
    (ev / "gone").symlink_to(ev / "nowhere")
    os.mkfifo(ev / "pipe")
    env = _cli_env(tmp_path)
    first = _cli_scan(ev, tmp_path / "out", env, "-j", "1")
    assert first.returncode == 0, first.stderr
    assert "resumed" not in first.stdout
    assert "broken-link 1" in first.stdout and "special-file 1" in first.stdout
    again = _cli_scan(ev, tmp_path / "out", env, "-j", "1")
    assert "(resumed: 3 already done)" in again.stdout and "hashed 0 this run" in again.stdout


def test_a_zip_hidden_after_a_jpeg_is_scanned_and_flagged(tmp_path: Path) -> None:
    """The carrier is hashed as the JPEG it is, its members as files, and the row says why."""
    import io

    ev = tmp_path / "ev"
    ev.mkdir()
    buf = io.BytesIO()
    synthetic_image(7, (320, 240)).save(buf, "JPEG")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("hidden/k.png", _png(8))
    (ev / "holiday.jpg").write_bytes(buf.getvalue() + inner.getvalue())
    (ev / "setup.exe").write_bytes(b"MZ\x90\x00" + bytes(4096) + inner.getvalue())
    out = tmp_path / "out"
    run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), None)
    db = ScanDB(out / "scan.db")
    rows = {f.path: f for f in db.files()}
    db.close()
    carrier = rows[str(ev / "holiday.jpg")]
    assert carrier.flags == ["embedded-archive"] and carrier.kind == "image" and carrier.pdq
    assert rows[str(ev / "setup.exe")].flags == ["embedded-archive"]
    for outer in ("holiday.jpg", "setup.exe"):
        member = rows[f"{ev / outer}!/hidden/k.png"]
        assert member.status == "done" and member.pdq and member.container == str(ev / outer)
    from vigil.triage.outputs import write_outputs

    write_outputs(out, "none")
    import json

    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert {r["path"]: r["flags"] for r in lines}[str(ev / "holiday.jpg")] == [
        "embedded-archive"]


def _png(seed: int) -> bytes:
    import io

    buf = io.BytesIO()
    synthetic_image(seed, (64, 48)).save(buf, "PNG")
    return buf.getvalue()


def test_resuming_with_the_evidence_named_another_way_is_refused(tmp_path: Path) -> None:
    """Files are recorded by the path as given: the same folder written another way would
    register every file a second time. The rerun is refused and nothing is lost."""
    ev = tmp_path / "ev"
    ev.mkdir()
    for k in range(3):
        synthetic_image(k, (64, 48)).save(ev / f"p{k}.jpg")
    out = tmp_path / "out"
    first = run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), None)
    assert first.hashed == 3
    other = str(tmp_path / "ev" / ".." / "ev")  # the same folder, spelt otherwise
    with pytest.raises(ScanError, match="written the same way"):
        run_scan(out, ScanOptions(inputs=(other,), jobs=1), None)
    db = ScanDB(out / "scan.db")
    try:
        assert db.summary().files == 3 and db.pending_count() == 0
    finally:
        db.close()
    again = run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), None)
    assert again.hashed == 0 and again.skipped_done == 3
