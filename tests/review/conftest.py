"""A real finished scan of benign corpus photos, a node store with banks, and a review app
served on loopback (in this process, or as ``vigil review`` in another).

The seizure (benign BSDS500 photos from ../shared/corpus and one sample clip):

* known: an exact copy of photo K1 and a resized copy of K2, both in bank ``known``;
* group A: photo A, a half-size copy and a recompressed copy (rank 1, 3 items);
* group B: photo B and a recompressed copy (rank 2, 2 items);
* single items: photos C and D, and one video (its keyframe);
* a text file (not reviewable).

The scan is made once per session into a template folder (its node home and its scan
folder); each test gets a copy, so decisions and ledgers never leak between tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image
from sqlalchemy import Engine

from tests.conftest import SHARED
from vigil.banks import Banks, EntryReader, Labels
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.matching import Matcher
from vigil.review.ledger import Caps
from vigil.signals import hash_file
from vigil.store import make_engine, migrate
from vigil.triage.scan import ScanOptions, run_scan

CORPUS = SHARED / "corpus" / "bsds500" / "test"
VIDEO = SHARED / "fixtures" / "video" / "sample-videos" / "chair-19-sd-bar.mp4"
REVIEWER = "examiner1"


@dataclass
class Template:
    root: Path
    groups: dict[str, list[str]] = field(default_factory=dict)  # name -> seizure paths


def _photos() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip("../shared corpus is not present")
    return sorted(CORPUS.glob("*.jpg"))[:6]


def build_template(root: Path) -> Template:
    """The node home, banks and finished scan described in the module docstring."""
    k1, k2, a, b, c, d = _photos()
    home, seizure, scan = root / "home", root / "seizure", root / "scan"
    for p in (home, seizure / "phone", seizure / "laptop"):
        p.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{home / 'vigil.db'}")
    migrate(engine)
    banks = Banks(engine, user="setup")
    banks.create("known", "SG-SPF", default_scheme="us")
    banks.create("review-bank", "SG-SPF", default_scheme="us")
    banks.create("uk-bank", "SG-SPF", default_scheme="uk")
    recs = [r for f in (k1, k2) for r in records_of_file(
        hash_file(f), Labels(category=("us", "1"), series="S-known"))]
    banks.apply("known", recs)
    shutil.copy(k1, seizure / "phone" / "k1-copy.jpg")
    with Image.open(k2) as im:
        im.resize((im.width // 2, im.height // 2)).save(seizure / "laptop" / "k2-small.jpg")
    t = Template(root)
    shutil.copy(a, seizure / "phone" / "a.jpg")
    with Image.open(a) as im:
        im.resize((im.width // 2, im.height // 2)).save(seizure / "phone" / "a-half.jpg",
                                                         quality=90)
        im.save(seizure / "laptop" / "a-q60.jpg", quality=60)
    shutil.copy(b, seizure / "laptop" / "b.jpg")
    with Image.open(b) as im:
        im.save(seizure / "laptop" / "b-q50.jpg", quality=50)
    shutil.copy(c, seizure / "phone" / "c.jpg")
    shutil.copy(d, seizure / "phone" / "d.jpg")
    if VIDEO.is_file():
        shutil.copy(VIDEO, seizure / "phone" / "clip.mp4")
    (seizure / "laptop" / "notes.txt").write_text("shopping list")
    t.groups = {"A": ["a.jpg", "a-half.jpg", "a-q60.jpg"], "B": ["b.jpg", "b-q50.jpg"]}
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, home / "indexes" / "main"))
    run_scan(scan, ScanOptions(inputs=(str(seizure),), jobs=2), matcher)
    engine.dispose()
    return t


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory.mktemp("review-template"))


@dataclass
class Case:
    """One test's copy: the node home (store, banks, ledger), the scan folder, the
    seizure."""

    root: Path
    groups: dict[str, list[str]]

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def scan(self) -> Path:
        return self.root / "scan"

    @property
    def seizure(self) -> Path:
        return self.root / "seizure"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.home / 'vigil.db'}"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "VIGIL_HOME": str(self.home), "VIGIL_DATABASE_URL": self.url,
               "VIGIL_USER": REVIEWER, "COLUMNS": "400"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vigil", *args], env=self.env(),
                              text=True, capture_output=True, timeout=timeout)


@pytest.fixture
def case(template: Template, tmp_path: Path) -> Case:
    dest = tmp_path / "case"
    shutil.copytree(template.root, dest)
    return Case(dest, template.groups)


@pytest.fixture
def case_engine(case: Case) -> Iterator[Engine]:
    eng = make_engine(case.url)
    yield eng
    eng.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A review app on loopback in this process."""

    base: str
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def session(self) -> Any:
        return self.app.state.review

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(case: Case, engine: Engine, caps: Caps | None = None, bank: str = "review-bank",
          scheme: str | None = None, settle: bool = False) -> Served:
    from vigil.cli._audit import opened
    from vigil.review.web import review_app

    audit = opened(engine, case.home)
    app = review_app(case.scan, engine, REVIEWER, bank=bank, scheme=scheme, caps=caps,
                     audit=audit.record, admin=True, settle=settle)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{port}", app, server, thread)


@pytest.fixture
def served(case: Case, case_engine: Engine) -> Iterator[Served]:
    s = serve(case, case_engine, Caps(reveal_seconds=8.0))
    yield s
    s.stop()


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vigil review exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"vigil review did not start:\n{log.read_text()}")


def token_of(client: httpx.Client, path: str = "/") -> str:
    """The form token of a page (what a browser's forms carry)."""
    html = client.get(path, follow_redirects=True).text
    marker = 'name="review-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
