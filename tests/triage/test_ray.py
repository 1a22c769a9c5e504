"""`vigil scan --ray` on a real Ray cluster on loopback: a head and a second node, one CPU
each, started with `ray start` (token authentication on, usage statistics off).

The same evidence scanned through the cluster and with `-j 2` gives the same results
(results.jsonl, case.vics.json, and the rows of scan.db); a Ray worker killed mid-scan
loses nothing and counts nothing twice; a driver killed mid-scan is resumed (here
without Ray, the reverse of a local scan resumed on Ray) to the same results."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import free_port
from tests.triage.test_scan import _rows
from vigil.demo.synthetic import synthetic_image

pytest.importorskip("ray")
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bsds500" / "test"
RAY = str(Path(sys.executable).with_name("ray"))
#: files in the seizure: 20 photos, a copy, 240 synthetic pictures, a text file
TOTAL = 262


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([RAY, "start", "--block", "--num-cpus", "1",
                                 "--object-store-memory", str(100 * 1024 * 1024),
                                 "--disable-usage-stats", *args], env=env, stdout=out,
                                stderr=out, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """Two Ray nodes on loopback; yields the environment a driver needs (its address)."""
    # a short folder: Ray's sockets live under it, and a socket path has ~100 characters
    root = Path(tempfile.mkdtemp(prefix="vray", dir="/tmp"))
    token = root / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": f"127.0.0.1:{port}"}
    head = _start(["--head", "--port", str(port), "--include-dashboard", "false",
                   "--temp-dir", str(root / "t")], env, root / "head.log")
    nodes = [head]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if subprocess.run([RAY, "status", "--address", env["RAY_ADDRESS"]], env=env,
                              capture_output=True, timeout=30).returncode == 0:
                break
            assert head.poll() is None, (root / "head.log").read_text()
            time.sleep(1)
        nodes.append(_start(["--address", env["RAY_ADDRESS"]], env, root / "node.log"))
        while time.monotonic() < deadline:
            out = subprocess.run([RAY, "status", "--address", env["RAY_ADDRESS"]], env=env,
                                 capture_output=True, text=True, timeout=30).stdout
            if "2.0 CPU" in out or "0.0/2.0 CPU" in out:
                break
            time.sleep(1)
        else:
            raise AssertionError("the second Ray node never joined:\n" + out)
        yield env
    finally:
        for n in reversed(nodes):
            _stop(n)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def seizure(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Corpus photos, copies of some, and enough synthetic pictures for a kill to land
    mid-scan; a bank holding two of the photos."""
    root = tmp_path_factory.mktemp("ray-seizure")
    ev = root / "ev"
    ev.mkdir()
    photos = sorted(CORPUS.glob("*.jpg"))[:20]
    if not photos:
        pytest.skip("../shared corpus is not present")
    for p in photos:
        shutil.copy(p, ev / p.name)
    shutil.copy(photos[0], ev / "copy.jpg")
    for b in range(8):
        img = synthetic_image(b, (1600, 1200))
        for k in range(30):
            img.save(ev / f"s{b}{k:02d}.jpg", quality=60 + k)
    (ev / "notes.txt").write_text("not a picture")
    return root


def _env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {}), "VIGIL_HOME": str(root / "home"),
           "VIGIL_DATABASE_URL": f"sqlite:///{root / 'vigil.db'}"}
    return env


def _scan(root: Path, out: Path, *extra: str, env: dict[str, str] | None = None,
          quiet: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "vigil", "scan", str(root / "ev"), "--out",
                        str(out), *(["-q"] if quiet else []), *extra],
                       env=env or _env(root), text=True,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def local(seizure: Path) -> Path:
    """The reference: the same evidence scanned with -j 2, against a bank."""
    env = _env(seizure)
    photos = sorted((seizure / "ev").glob("1*.jpg"))[:2]
    for args in (["bank", "create", "known", "--agency", "SG-SPF"],
                 ["bank", "add", "known", *map(str, photos), "--category", "us:1", "-q"]):
        r = subprocess.run([sys.executable, "-m", "vigil", *args], env=env, text=True,
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    out = seizure / "local"
    _scan(seizure, out, "-j", "2")
    return out


def _results(out: Path) -> list[str]:
    rows = []
    for line in (out / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        row.pop("seconds")  # how long a file took: the one field a rerun changes
        rows.append(json.dumps(row, sort_keys=True))
    return sorted(rows)


def _case(out: Path) -> Any:
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items()
                    if k not in ("CaseID", "CaseNumber", "DateCreated")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return strip(json.loads((out / "case.vics.json").read_text()))


def _same(a: Path, b: Path) -> None:
    assert _results(a) == _results(b)
    assert _case(a) == _case(b)
    assert _rows(a / "scan.db") == _rows(b / "scan.db")


def test_a_scan_through_the_cluster_equals_a_local_one(
        cluster: dict[str, str], seizure: Path, local: Path) -> None:
    out = seizure / "on-ray"
    r = _scan(seizure, out, "--ray", cluster["RAY_ADDRESS"], env=_env(seizure, cluster),
              quiet=False)
    assert f"connecting to the Ray cluster at {cluster['RAY_ADDRESS']}" in r.stderr
    assert "hashing on Ray: 2 CPUs on 2 nodes" in r.stderr  # what the operator is told
    _same(local, out)
    known = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sum(1 for r in known if r["matches"]) == 3  # two banked photos and a copy


def _left(out: Path) -> int:
    """Files a rerun has to hash: pending ones, and those the listing had not reached
    (hashing starts while the listing goes on); -1 before scan.db is readable."""
    try:
        with sqlite3.connect(out / "scan.db", timeout=1) as c:
            return TOTAL - int(c.execute("SELECT count(*) FROM files WHERE status != "
                                         "'pending'").fetchone()[0])
    except sqlite3.Error:
        return -1


def _ray_workers() -> list[int]:
    r = subprocess.run(["pgrep", "-f", "ray::_hash_chunk"], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def test_a_ray_worker_killed_mid_scan_loses_nothing(
        cluster: dict[str, str], seizure: Path, local: Path) -> None:
    out = seizure / "worker-killed"
    cmd = [sys.executable, "-m", "vigil", "scan", str(seizure / "ev"), "--out", str(out),
           "-q", "--ray", cluster["RAY_ADDRESS"]]
    proc = subprocess.Popen(cmd, env=_env(seizure, cluster), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and killed is None:
        workers = _ray_workers()  # each is running a task: files are in flight
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.02)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output
    assert killed is not None, "no Ray worker was caught mid-scan"
    _same(local, out)


def test_a_driver_killed_mid_scan_resumes_locally_to_the_same_results(
        cluster: dict[str, str], seizure: Path, local: Path) -> None:
    out = seizure / "driver-killed"
    cmd = [sys.executable, "-m", "vigil", "scan", str(seizure / "ev"), "--out", str(out),
           "-q", "--ray", cluster["RAY_ADDRESS"]]
    proc = subprocess.Popen(cmd, env=_env(seizure, cluster), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if 0 < _left(out) < TOTAL:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver; the cluster's workers live on
    proc.wait()
    left = _left(out)
    assert left > 0, "the driver must be killed mid-way for this test to mean anything"
    r = _scan(seizure, out, "-j", "2")
    assert "resumed" in r.stdout and f"hashed {left:,} this run" in r.stdout
    _same(local, out)
