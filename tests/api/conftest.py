"""A real node for API tests: `vigil serve` in a subprocess on a free loopback port.

One server per backend for the whole session (SQLite with one worker always; PostgreSQL
with two workers, in a schema of its own, when VIGIL_TEST_DATABASE_URL is set), with
principals of every role in two agencies. Tests make their own banks (unique names), so
they do not see each other's entries.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import _backends, store_url
from vigil.node import ROLES, create_principal, ensure_agency, init_node, issue_token
from vigil.store import make_engine, migrate

SG, HK = "SG-SPF", "HK-POL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """A running node: its URL, store, home folder and one token per (agency, role)."""

    url: str
    engine: Engine
    home: Path
    backend: str
    workers: int
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    #: the store's URL as `vigil serve` takes it (to start another server on this node)
    db_url: str = ""

    def client(self, role: str | None = "admin", agency: str = SG,
               token: str | None = None) -> httpx.Client:
        headers = {}
        tok = token or (self.tokens[(agency, role)] if role else None)
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vigil serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"vigil serve not ready after {timeout} s:\n{log.read_text()}")


def serve(home: Path, db_url: str, workers: int, name: str = "serve",
          **env_extra: str) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `vigil serve` for the node in ``home`` on a free port; wait until it is ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "VIGIL_HOME": str(home), "VIGIL_DATABASE_URL": db_url,
           "VIGIL_SYNC_INTERVAL": "0.2", "VIGIL_MAX_UPLOAD_BYTES": str(4 << 20), **env_extra}
    log = home / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigil", "serve", "--port", str(port), "--workers",
             str(workers), "--log-level", "warning"], env=env, stdout=out, stderr=out)
    try:
        _wait_ready(url, proc, log)
    except BaseException:
        stop(proc)
        raise
    return url, proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session", params=_backends())
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Node]:
    home = tmp_path_factory.mktemp(f"node-{request.param}")
    workers = 1 if request.param == "sqlite" else 2
    with store_url(request.param, home, prefix="t_api_") as url:
        engine = make_engine(url)
        migrate(engine)
        _, admin_token = init_node(engine, home, SG, "Singapore Police Force", "SG")
        ensure_agency(engine, HK, "Hong Kong Police", "HK")
        n = Node("", engine, home, request.param, workers)
        n.tokens[(SG, "admin")] = admin_token
        for agency in (SG, HK):
            for role in ROLES:
                if (agency, role) in n.tokens:
                    continue
                p = create_principal(engine, agency, f"{role}-user", [role])
                n.tokens[(agency, role)] = issue_token(engine, p.id, 1)[0]
        n.db_url = url.render_as_string(hide_password=False)
        try:
            n.url, n.proc = serve(home, n.db_url, workers)
            yield n
        finally:
            if n.proc is not None:
                stop(n.proc)
            engine.dispose()


@pytest.fixture
def bank(node: Node) -> str:
    """A fresh bank of SG-SPF with a unique name."""
    name = f"b-{uuid.uuid4().hex[:8]}"
    with node.client("admin") as c:
        r = c.post("/v1/banks", json={"name": name, "description": "test"})
        assert r.status_code == 201, r.text
    return name


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    """Poll until ``predicate()`` is true; returns the seconds it took (fails on timeout)."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
