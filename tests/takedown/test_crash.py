"""kill -9 in the middle of a cycle: after restart no message goes out twice, none is
missed. The node is a real `vigil serve` (its whole process group killed), its clock a
file the test moves, its notices sent over SMTP to aiosmtpd on loopback.

A second test kills a worker in the one window SMTP leaves open (after the relay
accepted a message, before the commit that records it): the message is sent again with
the same Message-ID and number, the at-least-once choice docs/takedown.md explains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import _wait_ready, free_port
from tests.exchange.conftest import make_node
from tests.takedown.conftest import Smtp, WebHost, corpus, fill_bank
from vigil.takedown import intake, repo
from vigil.takedown.clock import FileClock
from vigil.takedown.repo import Contact

pytestmark = pytest.mark.shared
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _start(home: Path, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = home / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vigil", "serve", "--port", str(port),
                                 "--log-level", "warning"], env=env, stdout=out, stderr=out,
                                start_new_session=True)
    _wait_ready(url, proc, log)
    return url, proc


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill9(proc)


def test_kill_9_mid_cycle_then_restart_sends_each_message_once(
        tmp_path: Path, shared: Path, smtp: Smtp, web: Callable[[str], WebHost]) -> None:
    node = make_node(tmp_path, "SG-SPF", "SG")
    assert node.engine is not None
    engine = node.engine
    photos = corpus(shared, 3)
    fill_bank(engine, {p: f"S-{i}" for i, p in enumerate(photos)})
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    hosts = [web(f"127.0.0.{i}") for i in (11, 12)]
    for h in hosts:
        repo.set_contact(engine, Contact(h.ip, f"abuse@{h.ip}"), T0)
        for i in range(3):
            h.files[f"/{i}.jpg"] = (photos[i].read_bytes(), "image/jpeg")
            intake.add(engine, intake.check(h.url(f"/{i}.jpg"), "C-1"), None, T0)
    env = {**node.env, "VIGIL_TAKEDOWN_INTERVAL": "0.3", "VIGIL_TAKEDOWN_SMTP": smtp.address,
           "VIGIL_TAKEDOWN_ALLOW_NETWORKS": "127.0.0.0/8", "VIGIL_TAKEDOWN_CONCURRENCY": "1",
           "VIGIL_TAKEDOWN_CLOCK_FILE": str(clock.path)}
    smtp.block_rcpt = 3  # the third message hangs before its data: kill the node then
    url, proc = _start(node.home, env)
    try:
        assert smtp.held.wait(60), "the node never reached the third message"
        _kill9(proc)
        assert len(smtp.messages) == 2
        ledger = {(s.notice_id, s.seq): s.state for s in repo.sends(engine)}
        assert sorted(ledger.values()) == ["sending", "sent", "sent"]
        smtp.release.set()  # the dead node's connection is gone: that message never arrives
        time.sleep(0.3)
        assert len(smtp.messages) == 2

        clock.set(T0 + timedelta(minutes=10))  # the dead worker's leases run out
        url, proc = _start(node.home, env)
        smtp.wait(6)
        time.sleep(1.5)  # a few more cycles: nothing more is due
        assert len(smtp.notices()) == 6
        clock.set(T0 + timedelta(hours=24, minutes=10))
        smtp.wait(12)
        time.sleep(1.5)
        sent = smtp.notices()
        assert len(sent) == 12 and len({(r, k) for r, k, _ in sent}) == 12
        assert sorted(k for _, k, _ in sent) == [1] * 6 + [2] * 6
        ids = [str(m["Message-ID"]) for m in smtp.messages]
        assert len(set(ids)) == 12
        assert all(s.state == "sent" for s in repo.sends(engine))
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        _stop(proc)
        engine.dispose()


DRIVER = """
import os, signal, sys
from pathlib import Path
from vigil.banks import EntryReader
from vigil.banks.indexes import BankIndexes
from vigil.matching import Matcher
from vigil.store import make_engine
from vigil.takedown.clock import FileClock
from vigil.takedown.worker import make_loop
from vigil.takedown.settings import from_env

engine = make_engine(os.environ["VIGIL_DATABASE_URL"])
home = Path(os.environ["VIGIL_HOME"])
kill_at = int(sys.argv[1])
matcher = Matcher(EntryReader(engine), BankIndexes(engine, home / "indexes" / "main"))
loop = make_loop(engine, matcher, "SG-SPF", home, from_env(home),
                 FileClock(os.environ["VIGIL_TAKEDOWN_CLOCK_FILE"]))
count = 0
def after_send(send):
    global count
    count += 1
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
loop.after_send = after_send
print(loop.cycle().sent)
"""


def test_kill_9_after_the_relay_accepted_resends_the_same_message(
        tmp_path: Path, shared: Path, smtp: Smtp, web: Callable[[str], WebHost]) -> None:
    node = make_node(tmp_path, "SG-SPF", "SG")
    assert node.engine is not None
    engine = node.engine
    photos = corpus(shared, 3)
    fill_bank(engine, {p: f"S-{i}" for i, p in enumerate(photos)})
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    h = web("127.0.0.13")
    repo.set_contact(engine, Contact(h.ip, "abuse@x"), T0)
    for i in range(3):
        h.files[f"/{i}.jpg"] = (photos[i].read_bytes(), "image/jpeg")
        intake.add(engine, intake.check(h.url(f"/{i}.jpg"), "C-1"), None, T0)
    env = {**node.env, "VIGIL_TAKEDOWN_SMTP": smtp.address, "VIGIL_TAKEDOWN_CONCURRENCY": "1",
           "VIGIL_TAKEDOWN_ALLOW_NETWORKS": "127.0.0.0/8",
           "VIGIL_TAKEDOWN_CLOCK_FILE": str(clock.path)}
    r = subprocess.run([sys.executable, "-c", DRIVER, "2"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert len(smtp.messages) == 2
    clock.set(T0 + timedelta(minutes=10))
    r = subprocess.run([sys.executable, "-c", DRIVER, "0"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sent = smtp.notices()
    ids = [str(m["Message-ID"]) for m in smtp.messages]
    # 3 notices, 4 deliveries: the second again, with its Message-ID and number
    assert len(sent) == 4 and len(set(ids)) == 3
    assert ids[1] == ids[2] and sent[1] == sent[2]
    assert sorted({(s.notice_id, s.seq, s.state) for s in repo.sends(engine)}) == sorted(
        (s.notice_id, 1, "sent") for s in repo.sends(engine))
    engine.dispose()
