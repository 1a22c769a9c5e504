"""Real nodes for federation tests: each a `vigil serve` process on its own loopback port,
with its own home, keys and SQLite store; the CLI runs against a node's home as its
administrator would."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.api.conftest import _wait_ready, free_port, wait_for
from vigil.node import create_principal, issue_token
from vigil.store import make_engine

__all__ = ["FedNode", "wait_for"]


@dataclass
class FedNode:
    agency: str
    home: Path
    url: str = ""
    admin_token: str = ""
    analyst_token: str = ""
    public_key: str = ""
    proc: subprocess.Popen[bytes] | None = None
    engine: Engine | None = None
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = True, timeout: float = 120,
            ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "vigil", *args], env=self.env, text=True,
                           capture_output=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"vigil {' '.join(args)} on {self.agency} exited "
                                 f"{r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers={
            "Authorization": f"Bearer {token or self.admin_token}"})

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = self.home / "serve.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vigil", "serve", "--port", str(port),
                 "--log-level", "warning"], env=self.env, stdout=out, stderr=out)
        _wait_ready(self.url, self.proc, log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def grant(self, agency: str) -> str:
        """A peer token for ``agency`` issued by this node (`vigil peer grant`)."""
        return self.cli("peer", "grant", agency, "--name",
                        f"node-{uuid.uuid4().hex[:6]}").stdout.strip()

    def add_peer(self, name: str, other: FedNode, url: str | None = None) -> None:
        token = other.grant(self.agency)
        self.cli("peer", "add", name, url or other.url, "--key", other.public_key,
                 "--token", token)

    def bank(self, name: str) -> None:
        with self.client() as c:
            r = c.post("/v1/banks", json={"name": name})
            assert r.status_code == 201, r.text

    def add(self, bank: str, entries: list[dict[str, object]]) -> None:
        with self.client() as c:
            r = c.post(f"/v1/banks/{bank}/entries", json={"entries": entries})
            assert r.status_code == 200, r.text

    def match(self, signals: list[dict[str, str]]) -> dict:  # type: ignore[type-arg]
        with self.client(self.analyst_token) as c:
            r = c.post("/v1/match", json={"signals": signals})
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]


def make_node(root: Path, agency: str, jurisdiction: str) -> FedNode:
    home = root / agency
    home.mkdir()
    n = FedNode(agency, home)
    n.env = {**os.environ, "VIGIL_HOME": str(home),
             "VIGIL_DATABASE_URL": f"sqlite:///{home / 'vigil.db'}",
             "VIGIL_SYNC_INTERVAL": "0.2", "VIGIL_PEER_SYNC_INTERVAL": "0",
             "VIGIL_USER": f"admin-{agency}", "COLUMNS": "400"}
    n.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    n.admin_token = n.cli("init", "--agency", agency, "--name", f"{agency} police",
                          "--jurisdiction", jurisdiction).stdout.strip()
    n.public_key = (home / "keys" / "node.pub").read_text().strip()
    n.engine = make_engine(n.env["VIGIL_DATABASE_URL"])
    p = create_principal(n.engine, agency, "analyst", ["analyst"])
    n.analyst_token = issue_token(n.engine, p.id, 1)[0]
    return n


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FedNode]]:
    """Four running nodes: Singapore, Hong Kong, Korea, and a fourth (Australia)."""
    root = tmp_path_factory.mktemp("fed")
    nodes = {code: make_node(root, agency, j) for code, agency, j in (
        ("sg", "SG-SPF", "SG"), ("hk", "HK-POL", "HK"), ("kr", "KR-KNPA", "KR"),
        ("au", "AU-AFP", "AU"))}
    try:
        for n in nodes.values():
            n.start()
        yield nodes
    finally:
        for n in nodes.values():
            n.stop()
            if n.engine is not None:
                n.engine.dispose()
