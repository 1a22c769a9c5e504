"""Derivatives: small, greyscale, bounded, blurred by default; the cache gives what the
plain function gives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vigil.demo.synthetic import synthetic_image
from vigil.review.derive import (
    DEFAULT_LEVEL,
    LEVELS,
    MAX_BYTES,
    DerivativeError,
    Derivatives,
    derive,
)
from vigil.triage.thumbs import MAX_SIDE, make_thumbnail


@pytest.fixture(scope="module")
def thumb() -> bytes:
    return make_thumbnail(synthetic_image(7, (640, 480)))


def _img(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_every_level_is_small_greyscale_and_bounded(thumb: bytes) -> None:
    for level in LEVELS:
        data = derive(thumb, level)
        im = _img(data)
        assert len(data) <= MAX_BYTES
        assert max(im.size) <= MAX_SIDE
        assert im.mode == "L"


def test_lower_levels_are_sharper(thumb: bytes) -> None:
    """Detail (mean absolute difference of neighbours) grows as the blur is lowered."""
    def detail(level: int) -> float:
        a = np.asarray(_img(derive(thumb, level)), dtype=np.float32)
        return float(np.abs(np.diff(a, axis=1)).mean())

    d = [detail(lv) for lv in LEVELS]
    assert d[0] > d[1] > d[2] > d[3]


def test_a_huge_noisy_thumbnail_is_still_bounded() -> None:
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (600, 800), dtype=np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, "JPEG", quality=100)
    for level in LEVELS:
        data = derive(buf.getvalue(), level)
        assert len(data) <= MAX_BYTES and max(_img(data).size) <= MAX_SIDE


def test_bad_input_is_a_clear_error(thumb: bytes) -> None:
    with pytest.raises(DerivativeError, match="blur level"):
        derive(thumb, 7)
    with pytest.raises(DerivativeError, match="unreadable"):
        derive(b"not a jpeg", 1)


def test_the_cache_gives_what_derive_gives(thumb: bytes) -> None:
    cache = Derivatives(size=2)
    for level in (*LEVELS, DEFAULT_LEVEL, 0):
        assert cache.get("x", level, thumb) == derive(thumb, level)
    assert len(cache._cache) == 2
