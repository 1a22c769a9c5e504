"""`vigil review` as a person runs it: refused with a clear message for a folder that is
not a finished scan, and every decision kept when the server is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.review.conftest import Case, free_port, token_of, wait_ready
from vigil.review.store import ReviewStore
from vigil.triage.scandb import ScanDB


def test_a_folder_that_is_not_a_finished_scan_is_refused(case: Case, tmp_path: Path) -> None:
    r = case.cli("review", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and "does not exist" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = case.cli("review", str(empty))
    assert r.returncode == 1 and "is not a scan folder (no scan.db in it)" in r.stderr
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "scan.db").write_text("hello")
    r = case.cli("review", str(fake))
    assert r.returncode == 1 and "not a scan database" in r.stderr
    running = tmp_path / "running"
    running.mkdir()
    db = ScanDB(running / "scan.db")
    db.set_meta("started_at", 1.0)
    db.add_pending([("/evidence/a.jpg", None, 10, None), ("/evidence/b.jpg", None, 10, None)])
    db.close()
    r = case.cli("review", str(running))
    assert r.returncode == 1
    assert "has not finished (2 files not processed yet): it is still running" in r.stderr
    r = case.cli("review", str(case.scan), "--host", "0.0.0.0")
    assert r.returncode == 1 and "loopback" in r.stderr
    r = case.cli("review", str(case.scan), "--scheme", "xx")
    assert r.returncode == 1 and "unknown category scheme 'xx'" in r.stderr


def _start(case: Case, port: int) -> subprocess.Popen[bytes]:
    log = case.root / "review.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vigil", "review", str(case.scan),
                                 "--bank", "review-bank", "--port", str(port)],
                                env=case.env(), stdout=out, stderr=out)
    wait_ready(f"http://127.0.0.1:{port}", proc, log)
    return proc


def test_kill_9_keeps_every_decision(case: Case) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(case, port)
    decided: list[int] = []
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            token = token_of(c)
            h = {"X-Review-Token": token}
            store = ReviewStore(case.scan / "scan.db")
            from vigil.review.queue import build_queue

            queue = build_queue(store.conn)
            store.close()
            for n, item in enumerate(queue.items):
                r = c.post("/decide", json={"item": item, "category": str(n % 5 + 1)},
                           headers=h)
                assert r.status_code == 200, r.text
                decided.append(item)
                if len(decided) == 5:
                    break
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # right after the last answer
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = ReviewStore(case.scan / "scan.db")
    got = store.decisions()
    store.close()
    shas = {queue.items[i].sha256 for i in decided}
    assert set(got) == shas
    proc = _start(case, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            page = c.get("/", follow_redirects=True).text
            text = " ".join(page.split())
            assert f"{len(decided)} of {len(queue.items)} unknown items decided" in text, \
                text[text.find('id="counts"'):][:200]
            for i in decided:
                assert f'data-item="{i}"' not in page
    finally:
        proc.terminate()
        proc.wait(timeout=15)
