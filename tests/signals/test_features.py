"""Local features (``vigil.signals.features``) and their check (``vigil.matching.confirm``):
the packed form round-trips and refuses anything it would not write, naming the fault;
the vectorised descriptor distances equal the plain loop; the similarity fit finds a known
transform among outliers; and a picture's features confirm its rotated and cropped copy
but not a different picture."""

from __future__ import annotations

import base64
import io
import struct

import numpy as np
import pytest
from PIL import Image

from vigil.banks.entry import EntryRecord
from vigil.banks.featured import (
    ANCHORS,
    FEATURES_KEY,
    anchor_codes,
    anchor_id,
    split_anchor_id,
    stored_features,
)
from vigil.banks.text import FieldError
from vigil.matching.confirm import (
    MIN_INLIERS,
    confirm,
    descriptor_distances,
    descriptor_distances_reference,
    fit_similarity,
    ratio_matches,
)
from vigil.signals import HashOptions, hash_bytes
from vigil.signals.features import (
    MAX_POINTS,
    MAX_TEXT,
    FeatureFormatError,
    FeatureSet,
    compute_features,
    unpack,
)

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _random_set(n: int, seed: int = 0, w: int = 512, h: int = 384,
                anchors: tuple[str, ...] = ()) -> FeatureSet:
    rng = np.random.default_rng(seed)
    pts = (rng.integers(0, [w * 8, h * 8], (n, 2)) / 8).astype(np.float32)
    return FeatureSet(w, h, pts, rng.integers(0, 256, (n, 32), dtype=np.uint8), anchors)


def _textured(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8), "RGB")
    fine = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), "RGB")
    a = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), np.float32)
    b = np.asarray(fine.resize(size, Image.Resampling.BICUBIC), np.float32)
    return Image.fromarray(np.clip(0.6 * a + 0.4 * b, 0, 255).astype(np.uint8), "RGB")


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _features_of(img: Image.Image) -> FeatureSet:
    r = hash_bytes(_jpeg(img), "x.jpg", HashOptions(variants="features"))
    assert r.pdq_features is not None
    return unpack(r.pdq_features)


# ---- the packed form ------------------------------------------------------------------


def test_pack_round_trips_at_the_largest_size_within_8_kib() -> None:
    fs = _random_set(MAX_POINTS, anchors=("ab" * 32, "cd" * 32))
    text = fs.pack()
    assert len(text) <= MAX_TEXT and text.isascii()
    back = unpack(text)
    assert (back.width, back.height, back.anchors) == (fs.width, fs.height, fs.anchors)
    assert np.array_equal(back.descriptors, fs.descriptors)
    assert np.array_equal(back.points, fs.points)  # positions already on the 1/8 grid
    assert back.pack() == text


def _raw(version: int = 1, n: int = 2, w: int = 512, h: int = 384, extra: bytes = b"",
         magic: bytes = b"VF", x: int = 0, k: int = 0) -> str:
    body = struct.pack("<2sBBHHH", magic, version, k, w, h, n)
    body += np.array([[x, 0]] * n, "<u2").tobytes() + bytes(32 * n) + extra
    return base64.b64encode(body).decode()


@pytest.mark.parametrize(("value", "fault"), [
    (12, "must be a base64 string"),
    ("A" * (MAX_TEXT + 4), "too long"),
    ("not base64 at all!", "not valid base64"),
    ("é" * 8, "non-ASCII"),
    (base64.b64encode(b"VF\x01").decode(), "too short"),
    (_raw(magic=b"XX"), "bad magic"),
    (_raw(version=2), "unsupported version 2"),
    (_raw(n=MAX_POINTS + 1), f"at most {MAX_POINTS}"),
    (_raw(extra=b"\x00"), "bytes where 2 keypoints and 0 anchor codes take"),
    (_raw(k=1, extra=bytes(32)), "1 anchor codes"),
    (_raw(k=2), "bytes where 2 keypoints and 2 anchor codes take"),
    (_raw(w=4), "out of range"),
    (_raw(x=512 * 8), "outside the working size"),
])
def test_bad_values_are_refused_naming_the_fault(value: object, fault: str) -> None:
    with pytest.raises(FeatureFormatError, match=fault):
        unpack(value)
    # at the door, any entry carrying it is refused, naming the field, never the value
    with pytest.raises(FieldError, match=f"^{FEATURES_KEY}: ") as err:
        EntryRecord("pdq", PDQ, extra={FEATURES_KEY: value})
    assert str(value)[:16] not in str(err.value) or isinstance(value, int)
    assert stored_features({FEATURES_KEY: value}) is None  # a stored one is never trusted


def test_only_a_pdq_entry_carries_features() -> None:
    text = _random_set(20).pack()
    assert EntryRecord("pdq", PDQ, extra={FEATURES_KEY: text}).extra[FEATURES_KEY] == text
    with pytest.raises(FieldError, match="only a pdq entry has features"):
        EntryRecord("md5", "0" * 32, extra={FEATURES_KEY: text})


def test_anchor_ids_round_trip_and_flat_or_featureless_entries_have_none() -> None:
    for eid in (1, 9, 2**40 + 5):
        for a in ANCHORS:
            assert split_anchor_id(anchor_id(eid, a)) == (eid, a)
    text = _random_set(20, anchors=("e" * 64, "f" * 64)).pack()
    derived = [["centre-0.1", "a" * 64, 80], ["centre-0.05", "b" * 64, 80],
               ["centre-0.15", "c" * 64, 20], ["trimmed", "D" * 64, 70]]
    extra = {FEATURES_KEY: text, "pdq_derived": derived}
    assert anchor_codes(7, PDQ, 90, extra) == [(anchor_id(7, "original"), PDQ),
                                               (anchor_id(7, "centre-0.175"), "e" * 64),
                                               (anchor_id(7, "centre-0.2"), "f" * 64),
                                               (anchor_id(7, "centre-0.1"), "a" * 64),
                                               (anchor_id(7, "trimmed"), "d" * 64)]
    assert anchor_codes(7, PDQ, 40, extra) == []  # a flat picture
    assert anchor_codes(7, PDQ, 90, {"pdq_derived": derived}) == []  # no features


# ---- descriptor matching and geometry ---------------------------------------------------


def test_descriptor_distances_equal_the_reference() -> None:
    rng = np.random.default_rng(3)
    for n, m in ((0, 5), (1, 1), (17, 40), (MAX_POINTS, 33)):
        a = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        b = rng.integers(0, 256, (m, 32), dtype=np.uint8)
        b[: min(n, m) // 2] = a[: min(n, m) // 2]  # some exact pairs
        assert np.array_equal(descriptor_distances(a, b), descriptor_distances_reference(a, b))


def test_ratio_matches_keep_clear_nearest_pairs_one_to_one() -> None:
    dist = np.array([[10, 100, 120],    # clear: 0 -> 0
                     [50, 55, 200],     # ambiguous: dropped by the ratio test
                     [12, 90, 130],     # 2 -> 0 too: 0 went to the nearer claim (10)
                     [200, 150, 20]],   # clear: 3 -> 2
                    np.int32)
    q, b = ratio_matches(dist)
    assert sorted(zip(q.tolist(), b.tolist(), strict=True)) == [(0, 0), (3, 2)]


def test_fit_similarity_finds_a_known_transform_among_outliers() -> None:
    rng = np.random.default_rng(5)
    z = rng.uniform(0, 500, 60) + 1j * rng.uniform(0, 400, 60)
    a = 1.4 * np.exp(1j * np.radians(4.0))
    w = a * z + (30 - 12j)
    w[40:] = rng.uniform(0, 500, 20) + 1j * rng.uniform(0, 400, 20)  # a third are wrong
    fit = fit_similarity(z, w)
    assert fit is not None
    a_fit, b_fit, inl = fit
    assert abs(a_fit - a) < 1e-6 and abs(b_fit - (30 - 12j)) < 1e-4
    assert inl[:40].all() and inl[40:].sum() <= 1
    # a rotation far beyond a few degrees is not what the second stage is for
    assert fit_similarity(z[:40], np.exp(1j * np.radians(90)) * z[:40]) is None


def test_features_confirm_a_rotated_and_cropped_copy_but_not_another_picture() -> None:
    img = _textured(1)
    own = _features_of(img)
    assert MIN_INLIERS <= len(own) <= MAX_POINTS
    rotated = img.rotate(4, Image.Resampling.BICUBIC, expand=False)
    w, h = img.size
    cropped = img.crop((round(0.18 * w), round(0.18 * h), w - round(0.18 * w),
                        h - round(0.18 * h)))
    for copy, scale in ((rotated, 1.0), (cropped, 1 / 0.64)):
        c = confirm(_features_of(copy), own)
        assert c is not None and c.inliers >= MIN_INLIERS
        assert abs(c.scale - scale) < 0.05 * scale
    c = confirm(_features_of(rotated), own)
    assert c is not None and 3.0 <= abs(c.rotation) <= 5.0
    assert confirm(_features_of(_textured(2)), own) is None


def test_a_flat_or_tiny_picture_has_no_features() -> None:
    flat = np.full((300, 400), 128, np.uint8)
    assert compute_features(flat.astype(np.float32)) is None
    assert compute_features(np.zeros((10, 400), np.float32)) is None
