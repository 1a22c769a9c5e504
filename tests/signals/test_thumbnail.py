"""The stored thumbnail: made from the 8-bit image the fast PDQ plane came from, it is the
same JPEG as the one made from the float plane (the reference), byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import encode
from vigil.demo.synthetic import synthetic_image
from vigil.signals import decode, hash_bytes
from vigil.signals.pdq import pdq_of_image
from vigil.signals.thumbnail import MAX_SIDE, thumbnail_of_pixels
from vigil.triage.rows import hash_options


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("size", "fmt", "orientation"), [
    ((640, 480), "jpeg", None), ((481, 321), "jpeg", 6), ((4000, 3000), "jpeg", None),
    ((2600, 700), "png", 3), ((2000, 1500), "png", None)])
def test_the_grey_image_gives_the_planes_thumbnail(size: tuple[int, int], fmt: str,
                                                   orientation: int | None) -> None:
    img = synthetic_image(9, size)
    data = encode(img) if fmt == "jpeg" else _png(img)
    r = pdq_of_image(decode.open_image(data, "t", 200_000_000), "t")
    assert r.grey is not None and r.pixels is not None and r.pixels.ndim == 2
    want = thumbnail_of_pixels(r.pixels, orientation)
    got = thumbnail_of_pixels(r.grey, orientation)
    assert want is not None and got == want
    with Image.open(io.BytesIO(got)) as t:
        assert t.mode == "L" and max(t.size) <= MAX_SIDE


def test_the_pipeline_stores_the_same_thumbnail(tmp_path: Path) -> None:
    """What a scan stores is the reference thumbnail of the plane it hashed."""
    data = encode(synthetic_image(10, (800, 600)))
    r = hash_bytes(data, "a.jpg", hash_options("fast", False, thumbnails=True))
    ref = pdq_of_image(decode.open_image(data, "a.jpg", 200_000_000), "a.jpg")
    assert r.thumbnail == thumbnail_of_pixels(ref.pixels, ref.info.exif_orientation)
    # the reference path has no grey image: its RGB pixels make the thumbnail
    slow = hash_bytes(data, "a.jpg", hash_options("reference", False, thumbnails=True))
    assert slow.thumbnail is not None


def test_a_large_grey_image_is_sampled_as_the_plane_is() -> None:
    """Planes over about four thumbnails wide are sampled every k-th pixel first; the
    grey image is sampled the same way."""
    import numpy as np

    grey = synthetic_image(11, (3000, 2000)).convert("L")
    plane = np.asarray(grey, dtype=np.float32)
    for orientation in (None, 8):
        got = thumbnail_of_pixels(grey, orientation)
        assert got is not None and got == thumbnail_of_pixels(plane, orientation)


@pytest.mark.parametrize("long_side", [161, 165, 170])
def test_a_nearly_sized_thumbnail_drops_rows_and_looks_like_the_resampled_one(
        long_side: int) -> None:
    """Just over MAX_SIDE after the box reduction, the finish drops rows and columns; the
    reference (a bilinear finish) differs from it by little on average."""
    import numpy as np

    from vigil.signals import thumbnail

    grey = synthetic_image(12, (long_side, long_side * 2 // 3)).convert("L")
    assert max(grey.size) <= MAX_SIDE * (1 + thumbnail.NEAR)
    scale = MAX_SIDE / long_side
    size = (round(grey.size[0] * scale), round(grey.size[1] * scale))
    ref = np.asarray(grey.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    with Image.open(io.BytesIO(thumbnail._encode(grey))) as t:
        got = np.asarray(t, dtype=np.float32)
        assert t.size == size and t.mode == "L"
    with Image.open(io.BytesIO(thumbnail._encode(grey.resize((MAX_SIDE * 2, MAX_SIDE))))) as t:
        assert max(t.size) == MAX_SIDE  # well over: box-reduced, then resampled
    assert float(np.mean(np.abs(got - ref))) < 4  # 2.0-2.2 measured; another picture: 36
