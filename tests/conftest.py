"""Shared test fixtures: where ../shared is, and generated benign images."""


from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url

from vigil.store import make_engine, migrate

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared corpus and fixtures; tests that need them skip on a clone without them."""
    if not (SHARED / "fixtures" / "pdq").is_dir():
        pytest.skip("../shared (corpus and fixtures) is not present")
    return SHARED


def encode(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("VIGIL_TEST_DATABASE_URL") else ["sqlite"]


@contextmanager
def store_url(backend: str, folder: Path, prefix: str = "t_") -> Iterator[URL]:
    """Where an empty store lives on ``backend`` ("sqlite" or "postgresql"): a file in
    ``folder``, or a schema of its own (dropped afterwards) so tests never see each
    other's rows."""
    if backend == "sqlite":
        yield make_url(f"sqlite:///{folder / 'vigil.db'}")
        return
    base = make_url(os.environ["VIGIL_TEST_DATABASE_URL"])
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield base.update_query_dict({"options": f"-csearch_path={schema}"})
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def store_engine(backend: str, tmp_path: Path, migrated: bool = True) -> Iterator[Engine]:
    """An empty store on ``backend`` ("sqlite" or "postgresql"), migrated or not
    (``store_url``)."""
    with store_url(backend, tmp_path) as url:
        eng = make_engine(url)
        try:
            if migrated:
                migrate(eng)
            yield eng
        finally:
            eng.dispose()


@pytest.fixture(params=_backends())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store: SQLite always; PostgreSQL too with VIGIL_TEST_DATABASE_URL."""
    with store_engine(request.param, tmp_path) as eng:
        yield eng
