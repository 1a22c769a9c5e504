"""Real nodes for federation tests: each a `vigil serve` process on its own loopback port,
with its own home, keys and SQLite store; the CLI runs against a node's home as its
administrator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.api.conftest import _wait_ready, free_port, wait_for
from vigil.node import create_principal, issue_token
from vigil.store import make_engine

__all__ = ["EditingProxy", "FedNode", "wait_for"]


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


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FedNode, FedNode]]:
    """Two running nodes: Singapore and Hong Kong."""
    root = tmp_path_factory.mktemp("pair")
    sg, hk = make_node(root, "SG-SPF", "SG"), make_node(root, "HK-POL", "HK")
    try:
        sg.start()
        hk.start()
        yield sg, hk
    finally:
        for n in (sg, hk):
            n.stop()
            if n.engine is not None:
                n.engine.dispose()


class EditingProxy:
    """A loopback proxy to a node that hands each feed page to ``edit`` on its way, and
    answers 404 for the paths in ``missing``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.edit: Callable[[str, dict], dict] | None = None  # type: ignore[type-arg]
        #: paths answered 404 here, as a peer running an older Vigil would
        self.missing: tuple[str, ...] = ()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path.startswith(proxy.missing or ("\0",)):
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                r = httpx.request(method, proxy.upstream + self.path, content=body or None,
                                  timeout=60, headers={
                                      "Authorization": self.headers.get("Authorization", ""),
                                      "content-type": self.headers.get("content-type", "")})
                out = r.content
                if proxy.edit is not None and self.path.startswith("/v1/feeds/") \
                        and r.status_code == 200:
                    out = json.dumps(proxy.edit(self.path, r.json())).encode()
                self.send_response(r.status_code)
                self.send_header("content-type", r.headers.get("content-type", "text/plain"))
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self) -> None:
                self._relay("GET")

            def do_POST(self) -> None:
                self._relay("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
