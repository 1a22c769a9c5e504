"""Shared test fixtures: where ../shared is, and generated benign images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
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


def synthetic_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A benign generated picture: smooth gradients plus a few blocks, different per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = [*rng.uniform(0.5, 4, 2).tolist(), rng.uniform(0, 6.28)]
        img[..., c] = 127 + 100 * np.sin(fx * x / w * 6.28 + ph) * np.cos(fy * y / h * 6.28)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        img[y0 : y0 + h // 4, x0 : x0 + w // 5] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()
