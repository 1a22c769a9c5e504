"""A real node on loopback sharing a bank with HK-POL, and the real `threatexchange` CLI.

The node is `vigil serve` (tests/exchange/conftest.py's ``make_node``); photos come from
the shared corpus and are banked through the API as an agency's curator would bank them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import bank, node  # noqa: F401 (a running node, for the HMA routes)
from tests.exchange.conftest import FedNode, make_node

PEER = "HK-POL"


def threatexchange_cli() -> str:
    """The `threatexchange` command of this interpreter's environment (skip without it)."""
    pytest.importorskip("threatexchange", reason="the pytx extra is not installed "
                                                 "(pip install 'vigil[pytx]')")
    here = Path(sys.executable).parent / "threatexchange"
    found = str(here) if here.exists() else shutil.which("threatexchange")
    if found is None:
        pytest.skip("the threatexchange command is not installed")
    return found


@dataclass
class Tx:
    """The pytx CLI with a state folder and a home of its own (no operator's files)."""

    exe: str
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True, timeout: float = 180,
                 ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([self.exe, *args], env=self.env, text=True, capture_output=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"threatexchange {' '.join(args)} exited {r.returncode}:\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r


@pytest.fixture(scope="module")
def sg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FedNode]:
    """Singapore's node, running."""
    n = make_node(tmp_path_factory.mktemp("interop"), "SG-SPF", "SG")
    try:
        n.start()
        yield n
    finally:
        n.stop()
        if n.engine is not None:
            n.engine.dispose()


@pytest.fixture
def tx(tmp_path: Path) -> Tx:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "TX_STATEDIR": str(home / ".threatexchange")}
    env.pop("VIGIL_PYTX_TOKENS", None)
    return Tx(threatexchange_cli(), env)


def bank_file(fed: FedNode, name: str, photo: Path, category: str) -> dict[str, str]:
    """Bank a photo's signals with ``category``; returns its hashes (``POST /v1/hash``)."""
    data = photo.read_bytes()
    with fed.client() as c:
        r = c.post(f"/v1/banks/{name}/entries/file", params={"category": category},
                   content=data, headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        h = c.post("/v1/hash", content=data, params={"reference": "true"},
                   headers={"content-type": "application/octet-stream"})
        assert h.status_code == 200, h.text
    return {k: h.json()[k] for k in ("md5", "sha1", "sha256", "pdq")}


def signals_of(hashes: dict[str, str]) -> list[dict[str, str]]:
    return [{"type": t, "value": v} for t, v in hashes.items()]


class TamperingProxy:
    """A loopback HTTP proxy to a node that alters feed pages with ``tamper``."""

    def __init__(self, upstream: str, tamper: Callable[[bytes], bytes]) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                r = httpx.get(upstream + self.path, timeout=60, headers={
                    "Authorization": self.headers.get("Authorization", "")})
                body = r.content
                if self.path.startswith("/v1/feeds/") and r.status_code == 200:
                    body = proxy.tamper(body)
                    proxy.tampered += 1
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.tamper, self.tampered = tamper, 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TamperingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
