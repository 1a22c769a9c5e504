"""`vigil hash` end to end, as a user runs it: a real process on real files."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from tests.conftest import encode
from vigil.demo.synthetic import synthetic_image


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


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home")}
    env.pop("VIGIL_DATABASE_URL", None)
    return env


def _run(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil", *args], capture_output=True,
                          text=True, timeout=timeout, env=_env(tmp_path))


def _archive(folder: Path) -> Path:
    """evidence.zip: a JPEG, a text file and a tar.gz holding a PNG (nested)."""
    folder.mkdir(parents=True, exist_ok=True)
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as t:
        data = encode(synthetic_image(12), "PNG")
        info = tarfile.TarInfo("dcim/b.png")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    path = folder / "evidence.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.jpg", encode(synthetic_image(11)))
        z.writestr("notes/readme.txt", "hello")
        z.writestr("inner.tar.gz", inner.getvalue())
    return path


def test_hash_and_match_read_inside_archives_like_scan(tmp_path: Path) -> None:
    from vigil.triage.scan import ScanOptions, run_scan
    from vigil.triage.scandb import ScanDB

    z = _archive(tmp_path / "ev")
    r = _run(tmp_path, "hash", "--json", str(z))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    paths = [row["path"] for row in rows]
    assert paths == [str(z), f"{z}!/a.jpg", f"{z}!/notes/readme.txt", f"{z}!/inner.tar.gz",
                     f"{z}!/inner.tar.gz!/dcim/b.png"]
    by = {row["path"]: row for row in rows}
    assert by[f"{z}!/a.jpg"]["kind"] == "image" and len(by[f"{z}!/a.jpg"]["pdq"]) == 64
    assert by[f"{z}!/inner.tar.gz!/dcim/b.png"]["pdq"]
    run_scan(tmp_path / "scan", ScanOptions(inputs=(str(z),), jobs=1), None)
    db = ScanDB(tmp_path / "scan" / "scan.db")
    scanned = {f.path: f for f in db.files()}
    db.close()
    assert list(scanned) == paths  # the same walker: the same items, in the same order
    assert all(scanned[p].sha256 == by[p]["sha256"] and scanned[p].pdq == by[p].get("pdq")
               for p in paths)
    text = _run(tmp_path, "hash", "-j", "2", str(z))
    assert [line.rsplit("  ", 1)[1] for line in text.stdout.splitlines()] == paths

    # match: a bank that knows the JPEG inside the archive
    loose = tmp_path / "known.jpg"
    loose.write_bytes(encode(synthetic_image(11)))
    assert _run(tmp_path, "bank", "create", "k", "--agency", "SG-SPF").returncode == 0
    added = _run(tmp_path, "bank", "add", "k", str(loose), "--category", "us:1", "-q")
    assert added.returncode == 0, added.stderr
    m = _run(tmp_path, "match", "--json", "-q", str(z))
    assert m.returncode == 0, m.stderr
    items = {row["item"]: row for row in map(json.loads, m.stdout.splitlines())}
    assert list(items) == paths
    [lead] = items[f"{z}!/a.jpg"]["matches"]
    assert lead["bank"] == "k" and "sha256" in lead["signals"]
    assert all(not items[p]["matches"] for p in paths if p != f"{z}!/a.jpg")


def test_hash_reports_the_true_size_on_the_fast_path(tmp_path: Path) -> None:
    """A 3840x2160 JPEG is decoded at half size for PDQ; it is still 3840x2160."""
    p = tmp_path / "uhd.jpg"
    synthetic_image(5, (3840, 2160)).save(p, quality=85)
    r = _run(tmp_path, "hash", "--json", str(p))
    assert r.returncode == 0, r.stderr
    image = json.loads(r.stdout)["image"]
    assert (image["width"], image["height"]) == (3840, 2160)
    assert (image["decoded_width"], image["decoded_height"], image["reduction"]) == (
        1920, 1080, 2)


def test_special_files_are_errors_never_a_block(tmp_path: Path) -> None:
    """A FIFO (reading blocks forever), a socket and /dev/zero (reading never ends), given
    as arguments or met in a folder: every command names them (special-file), goes on
    with the rest, and exits 1."""
    args_dir, walked = tmp_path / "args", tmp_path / "walked"
    args_dir.mkdir()
    walked.mkdir()
    os.mkfifo(args_dir / "pipe")
    os.mkfifo(walked / "pipe")
    socks = [socket.socket(socket.AF_UNIX) for _ in range(2)]
    socks[0].bind(str(args_dir / "sock"))
    socks[1].bind(str(walked / "sock"))
    (walked / "zero-link").symlink_to("/dev/zero")
    (walked / "ok.jpg").write_bytes(encode(synthetic_image(3)))
    targets = [str(args_dir / "pipe"), str(args_dir / "sock"), "/dev/zero", str(walked)]
    special = {str(args_dir / "pipe"), str(args_dir / "sock"), "/dev/zero",
               str(walked / "pipe"), str(walked / "sock"), str(walked / "zero-link")}
    try:
        assert _run(tmp_path, "bank", "create", "b", "--agency", "X").returncode == 0
        for args in (["hash", "--json"], ["hash"], ["match", "--json", "-q"],
                     ["bank", "add", "b", "-q"]):
            r = _run(tmp_path, *args, *targets, timeout=60)
            assert r.returncode == 1, (args, r.stdout, r.stderr)
            named = {line.split(": ", 2)[2] for line in r.stderr.splitlines()
                     if ": special-file: " in line}
            assert {n.split(": ")[0] for n in named} == special, (args, r.stderr)
            if "--json" in args:
                rows = list(map(json.loads, r.stdout.splitlines()))
                name = "path" if args[0] == "hash" else "item"
                codes = {row[name]: row.get("error", {}).get("code") for row in rows}
                assert codes == {**dict.fromkeys(special, "special-file"),
                                 str(walked / "ok.jpg"): None}
        shown = _run(tmp_path, "bank", "show", "b", "--json")
        assert json.loads(shown.stdout)["entries"] == 4  # ok.jpg: MD5, SHA-1, SHA-256, PDQ
    finally:
        for s in socks:
            s.close()


def test_memory_does_not_follow_file_size(tmp_path: Path) -> None:
    """A 1 GiB file (sparse: no disk used) is digested in chunks, by `vigil hash` and by a
    scan's workers: the peak RSS of every process stays far under the file's size."""
    from tests.signals.procs import run_measured

    ev = tmp_path / "ev"
    ev.mkdir()
    big = ev / "disk.img"
    with open(big, "wb") as fh:
        fh.truncate(1 << 30)
    cap = 400 << 20
    r, peak = run_measured([sys.executable, "-m", "vigil", "hash", "--json", str(big)], 300,
                           _env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == 1 << 30
    assert peak < cap, f"vigil hash peaked at {peak >> 20} MiB"
    r, peak = run_measured([sys.executable, "-m", "vigil", "scan", str(ev), "--out",
                            str(tmp_path / "out"), "-q", "--no-match", "-j", "2"], 300,
                           _env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert peak < cap, f"the scan (or one of its workers) peaked at {peak >> 20} MiB"


def test_hidden_zip_after_a_jpeg_is_hashed_both_ways(tmp_path: Path) -> None:
    jpeg = encode(synthetic_image(4))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("x/y.png", encode(synthetic_image(6), "PNG"))
    p = tmp_path / "holiday.jpg"
    p.write_bytes(jpeg + inner.getvalue())
    r = _run(tmp_path, "hash", "--json", str(p))
    assert r.returncode == 0, r.stderr
    outer, member = map(json.loads, r.stdout.splitlines())
    assert outer["flags"] == ["embedded-archive"] and outer["kind"] == "image"
    assert outer["pdq"] == json.loads(_run(tmp_path, "hash", "--json", str(_plain(
        tmp_path, jpeg))).stdout)["pdq"]  # the carrier is still hashed as the JPEG it is
    assert member["path"] == f"{p}!/x/y.png" and member["pdq"]


def _plain(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "plain.jpg"
    p.write_bytes(data)
    return p
