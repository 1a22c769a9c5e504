"""Workers of `vigil serve` (``vigil.api.server.workers``): connections spread evenly over them,
a dead worker replaced, a worker that cannot start not restarted forever."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import SG, Node, free_port, serve, stop, wait_for
from vigil.api.server.workers import MAX_DEFER, STALE_AFTER, ConnectionTable, should_accept

# ---- the rule and the shared table ---------------------------------------------------------


def test_should_accept_only_the_least_busy_until_it_waited_long_enough() -> None:
    assert should_accept(0, [], 0.0), "no live peer: accept"
    assert should_accept(3, [3, 5], 0.0), "a tie: accept (either may)"
    assert not should_accept(4, [3, 5], 0.0), "a peer holds fewer: leave it to that one"
    assert should_accept(4, [3], MAX_DEFER), "held back long enough: accept anyway"


def test_connection_table_ignores_slots_without_a_recent_heartbeat(tmp_path: Path) -> None:
    table = ConnectionTable(tmp_path / "t", 3)
    other = ConnectionTable(tmp_path / "t", 3)  # another process's view of the same file
    now = 1000.0
    assert table.others(0, now) == [], "nobody started yet"
    other.publish(1, 7, now)
    other.publish(2, 2, now - STALE_AFTER - 0.1)  # a worker that died
    assert table.others(0, now) == [7]
    assert table.others(1, now) == [], "its own slot is not a peer"
    other.clear(1)
    assert table.others(0, now) == []
    table.close()
    other.close()


# ---- a real server ---------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _owners(server: int, port: int) -> Counter[int]:
    """How many established connections to ``port`` each worker of ``server`` holds."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01":  # ESTABLISHED
            inodes.add(f[9])
    return Counter({w: len(inodes & _socket_inodes(w)) for w in _workers(server)})


def _workers(server: int) -> list[int]:
    """The worker processes (spawned Python children, not multiprocessing's helpers)."""
    return [c for c in _children(server)
            if b"vigil.api.server.workers" in Path(f"/proc/{c}/cmdline").read_bytes()
            or b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def _burst(port: int, n: int) -> list[asyncio.StreamWriter]:
    conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                   for _ in range(n)))
    return [w for _, w in conns]


@pytest.fixture
def two_workers(node: Node) -> tuple[str, subprocess.Popen[bytes]]:
    """A server of its own with two workers on the test node's store (SQLite too)."""
    url, proc = serve(node.home, node.db_url, 2, name="serve-workers")
    yield url, proc
    stop(proc)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_connections_opened_together_are_split_evenly(two_workers) -> None:  # type: ignore[no-untyped-def]
    url, proc = two_workers
    port = int(url.rsplit(":", 1)[1])
    wait_for(lambda: len(_workers(proc.pid)) == 2, timeout=10)

    async def scenario() -> list[Counter[int]]:
        deadline = time.monotonic() + 60
        while True:  # ready is one worker: wait until the other accepts too
            writers = await _burst(port, 8)
            await asyncio.sleep(0.2)
            seen = _owners(proc.pid, port)
            for w in writers:
                w.close()
            await asyncio.sleep(0.2)
            if min(seen.values()) > 0 or time.monotonic() > deadline:
                break
        splits = []
        for _ in range(3):
            writers = await _burst(port, 64)
            await asyncio.sleep(0.3)
            splits.append(_owners(proc.pid, port))
            for w in writers:
                w.close()
            await asyncio.sleep(0.3)
        return splits

    for split in asyncio.run(scenario()):
        assert sum(split.values()) == 64, split
        # uvicorn's own workers gave 7/57 to 26/38 here; the rule keeps them within a few
        assert min(split.values()) >= 28, split


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_a_killed_worker_is_replaced_and_the_node_keeps_serving(two_workers) -> None:  # type: ignore[no-untyped-def]
    url, proc = two_workers
    wait_for(lambda: len(_workers(proc.pid)) == 2, timeout=10)
    before = set(_workers(proc.pid))
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # meanwhile the other worker serves every new connection
    for _ in range(5):
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    wait_for(lambda: len(set(_workers(proc.pid)) - before) == 1, timeout=30)
    assert victim not in _workers(proc.pid)

    def both_ready() -> bool:
        return all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200
                   for _ in range(10))
    wait_for(both_ready, timeout=60, interval=0.5)
    assert proc.poll() is None


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    """No endless restarts: the supervisor gives up after a few failed starts in a row
    and exits with uvicorn's start-up failure status."""
    code = (
        "import sys; from vigil.api.server import workers\n"
        "workers.FAST_FAILURE = 30.0\n"
        f"workers.run('tests.api.test_workers:no_such_app', 2, host='127.0.0.1', "
        f"port={free_port()}, log_level='warning')\n")
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=Path(__file__).parents[2], check=False)
    assert p.returncode == 3, p.stderr[-2000:]
    assert "failed to start 3 times in a row" in p.stderr
    assert time.monotonic() - t < 90


def test_sigterm_stops_the_workers_gracefully_and_frees_the_port(two_workers) -> None:  # type: ignore[no-untyped-def]
    url, proc = two_workers
    port = int(url.rsplit(":", 1)[1])
    wait_for(lambda: len(_workers(proc.pid)) == 2, timeout=10)
    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and "Z" not in Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1][:3]]
    with socket.socket() as s:  # nobody listens any more: the port can be bound again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def _requests_counted(url: str, token: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vigil_http_requests_total{") and '"/v1/me"' in line)


def test_a_second_server_on_the_same_home_keeps_the_first_ones_metrics(
        node: Node, two_workers) -> None:  # type: ignore[no-untyped-def]
    """Each `vigil serve` keeps its workers' Prometheus files in a folder of its own:
    starting another on the same home (the fixture's) must not wipe the running one's."""
    token = node.tokens[(SG, "admin")]
    before = _requests_counted(node.url, token)
    for _ in range(3):
        r = httpx.get(f"{node.url}/v1/me", headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
        assert r.status_code == 200
    assert _requests_counted(node.url, token) >= before + 3
    runs = sorted(p.name for p in (node.home / "run").glob("metrics*"))
    assert all(n.removeprefix("metrics-").isdigit() for n in runs), runs
