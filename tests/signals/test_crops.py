"""Border trimming and sub-window hashes (``vigil.signals.crops``) against simple
references: the vectorised border scan against the pixel-by-pixel one, and every window's
hash against Meta's reference PDQ (``pdqhash``) of the same crop, cut by PIL."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from vigil.signals import HashOptions, hash_bytes
from vigil.signals.crops import (
    LADDER,
    QUERY_WINDOWS,
    as_luma,
    border_box,
    border_box_reference,
    derived_hashes,
)
from vigil.signals.pdq import pdq_reference
from vigil.signals.pdq_luma import luma_from_rgb

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bsds500"


def _textured(seed: int, size: tuple[int, int] = (200, 150)) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8), "RGB")
    fine = Image.fromarray(rng.integers(0, 256, (36, 48, 3), dtype=np.uint8), "RGB")
    a = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), np.float32)
    b = np.asarray(fine.resize(size, Image.Resampling.BICUBIC), np.float32)
    return Image.fromarray(np.clip(0.75 * a + 0.25 * b, 0, 255).astype(np.uint8), "RGB")


def _framed(seed: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A picture with random borders (colour, width per side, mild noise) and its box."""
    rng = np.random.default_rng(1000 + seed)
    pic = _textured(seed)
    sides = [int(rng.integers(0, 40)) if rng.random() < 0.7 else 0 for _ in range(4)]
    t, b, left, r = sides
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    out = ImageOps.expand(pic, border=(left, t, r, b), fill=colour)
    arr = np.asarray(out, np.int16) + rng.integers(-3, 4, (out.height, out.width, 3))
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return out, (t, out.height - b, left, out.width - r)


def test_border_box_equals_the_pixel_by_pixel_scan() -> None:
    found = 0
    for seed in range(60):
        img, _ = _framed(seed)
        luma = as_luma(np.asarray(img))
        fast = border_box(luma)
        assert fast == border_box_reference(luma), seed
        found += fast is not None
    photos = sorted(CORPUS.glob("*/*.jpg"))[:15]
    for p in photos:  # real photos, and the same photos framed
        rgb = np.asarray(Image.open(p).convert("RGB"))
        luma = as_luma(rgb)
        assert border_box(luma) == border_box_reference(luma), p.name
        framed = as_luma(np.asarray(ImageOps.expand(Image.fromarray(rgb), 30, (0, 0, 0))))
        assert border_box(framed) == border_box_reference(framed), p.name
    assert found >= 30


def test_border_box_finds_the_frame_it_was_given() -> None:
    for seed in range(40):
        img, (t, b, left, r) = _framed(seed)
        box = border_box(as_luma(np.asarray(img)))
        if (t, img.height - b, left, img.width - r) == (0, 0, 0, 0):
            assert box is None, seed
            continue
        assert box is not None, seed
        # exact, or one line into the content where it happens to match the frame
        for got, want in zip(box, (t, b, left, r), strict=True):
            assert abs(got - want) <= 2, (seed, box, (t, b, left, r))


def test_no_border_on_a_textured_picture_and_flat_sides_alone_are_kept() -> None:
    for seed in range(20):
        assert border_box(as_luma(np.asarray(_textured(seed)))) is None
    flat = np.full((100, 100), 128, np.float32)
    assert border_box(flat) is None or border_box(flat) == border_box_reference(flat)


def test_window_hashes_equal_the_reference_pdq_of_the_same_crop() -> None:
    img, _ = _framed(3)
    rgb = np.asarray(img)
    box = border_box(luma_from_rgb(rgb))
    assert box is not None
    t, b, x0, x1 = box
    content = img.crop((x0, t, x1, b))
    got = dict((n, h) for n, h, _ in derived_hashes(rgb, windows=LADDER))
    ref, _ = pdq_reference(np.asarray(content))
    assert got["trimmed"] == ref.hex
    for w in LADDER:
        wt, wb, wl, wr = w.box(content.height, content.width)
        ref, _ = pdq_reference(np.asarray(content.crop((wl, wt, wr, wb))))
        assert got[w.name] == ref.hex, w.name
    # query windows are cut from the whole picture, not from its content
    got = dict((n, h) for n, h, _ in derived_hashes(rgb, trim=False, windows=QUERY_WINDOWS,
                                                     of_trimmed=False))
    for w in QUERY_WINDOWS:
        wt, wb, wl, wr = w.box(img.height, img.width)
        ref, _ = pdq_reference(np.asarray(img.crop((wl, wt, wr, wb))))
        assert got[w.name] == ref.hex, w.name


def test_the_pipeline_computes_them_from_one_decode() -> None:
    img, _ = _framed(5)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    bank = hash_bytes(buf.getvalue(), "x.png", HashOptions(crop_ladder=True))
    assert bank.pdq_derived is not None
    names = [n for n, _ in bank.pdq_derived]
    assert names[0] == "trimmed" and len(names) == 1 + len(LADDER)
    query = hash_bytes(buf.getvalue(), "x.png", HashOptions(variants="all"))
    assert query.pdq_derived is not None
    assert [n for n, _ in query.pdq_derived] == ["trimmed", *(w.name for w in QUERY_WINDOWS)]
    assert hash_bytes(buf.getvalue(), "x.png", HashOptions(variants="borders")).to_json()[
        "pdq_derived"].keys() == {"trimmed"}
    assert hash_bytes(buf.getvalue(), "x.png").pdq_derived is None
    with pytest.raises(ValueError, match="variants"):
        HashOptions(variants="sideways")  # type: ignore[arg-type]


def test_large_planes_are_reduced_before_their_windows_are_hashed() -> None:
    big = np.asarray(_textured(1, (6100, 300)))
    assert max(as_luma(big).shape) <= 3000
