"""Shared test fixtures: where ../shared is, and generated benign images."""


from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

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
