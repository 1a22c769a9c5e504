"""PDQ signals of images: reference mode (bit-exact with Meta's C++) and the fast path.

* **Reference mode** decodes the whole image to RGB and calls ``pdqhash`` (Meta's C++
  reference): bit-identical to what other agencies' PDQ banks were built with.
* **Fast path** (the default for scanning) decodes JPEGs straight to their luma (Y)
  plane, at a reduced scale when large, and other large images with a box reduction,
  then hashes the plane with our Numba PDQ (``pdq_luma``). Small non-JPEG images take
  the exact route, so their hashes equal the reference. Drift is measured in
  ``bench/hashing.py``.

The eight dihedral variants (rotations and mirrors) come from the same computation as
the plain hash, so asking for them costs almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

from vigil.signals import decode
from vigil.signals.pdq_luma import luma_from_rgb, pdq_dihedral_from_luma, pdq_from_luma
from vigil.signals.pickling import plain_state

Mode = Literal["fast", "reference"]
Variants = tuple["PdqHash", ...] | None

#: Names of the eight dihedral variants, in pdqhash's order.
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original", "rotate90", "rotate180", "rotate270",
    "flip-x", "flip-y", "flip-plus1", "flip-minus1",
)


@plain_state
@dataclass(frozen=True, slots=True)
class PdqHash:
    """One PDQ hash: 64 lowercase hex characters and a quality of 0–100.

    Quality measures how much gradient the image has; hashes of near-uniform images
    (quality < 50 by convention) match too easily and are usually ignored by matchers.
    """

    hex: str
    quality: int


@dataclass(frozen=True, slots=True)
class PdqResult:
    """The PDQ of one image, its dihedral variants if asked, and how it was decoded."""

    hash: PdqHash
    #: all eight variants in ``DIHEDRAL_NAMES`` order (the first equals ``hash``), or None
    dihedral: tuple[PdqHash, ...] | None
    info: decode.ImageInfo
    #: the pixels that were hashed: (H, W, 3) uint8 RGB or an (h, w) float32 luma plane;
    #: kept so a thumbnail needs no second decode
    pixels: np.ndarray | None = None
    #: the fast path's plane as the 8-bit image it was made from (the same values), for
    #: the thumbnail; None on the other paths
    grey: Image.Image | None = None


def _hex_from_bits(bits: NDArray[np.integer]) -> str:
    """pdqhash returns 256 bits, most significant first; hex is written the same way."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def _hashes(codes: NDArray[np.uint8], quality: int) -> tuple[PdqHash, ...]:
    return tuple(PdqHash(bytes(c).hex(), int(quality)) for c in codes)


def pdq_reference(rgb: NDArray[np.uint8], dihedral: bool = False,
                  ) -> tuple[PdqHash, Variants]:
    """PDQ of a full RGB image by Meta's C++ reference (``pdqhash``)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(rgb)
        variants = tuple(PdqHash(_hex_from_bits(v), int(quality)) for v in vectors)
        return variants[0], variants
    bits, quality = pdqhash.compute(rgb)
    return PdqHash(_hex_from_bits(bits), int(quality)), None


def pdq_of_luma(luma: NDArray[np.float32], dihedral: bool = False,
                ) -> tuple[PdqHash, Variants]:
    """PDQ of a float32 luma plane by our Numba implementation."""
    if dihedral:
        codes, quality = pdq_dihedral_from_luma(luma)
        variants = _hashes(codes, quality)
        return variants[0], variants
    code, quality = pdq_from_luma(luma)
    return PdqHash(bytes(code).hex(), int(quality)), None


def pdq_of_image(img: Image.Image, name: str | Path, mode: Mode = "fast", dihedral: bool = False,
                 min_long_side: int = decode.FAST_MIN_LONG_SIDE) -> PdqResult:
    """PDQ of an opened (not yet decoded) image.

    Raises ``CorruptImageError`` when the pixels cannot be decoded.
    """
    if mode == "reference":
        rgb, info = decode.decode_rgb(img, name)
        h, variants = pdq_reference(rgb, dihedral)
        return PdqResult(h, variants, info, rgb)
    if mode != "fast":
        raise ValueError(f"unknown PDQ mode {mode!r}: use 'fast' or 'reference'")
    if img.format != "JPEG" and decode.reduction_factor(*img.size, min_long_side) == 1:
        # Too small to reduce and no cheaper decode to offer: the exact route.
        rgb, info = decode.decode_rgb(img, name)
        h, variants = pdq_of_luma(luma_from_rgb(rgb), dihedral)
        return PdqResult(h, variants, info, rgb)
    grey, info = decode.decode_reduced_grey(img, name, min_long_side)
    luma = np.asarray(grey, dtype=np.float32)
    h, variants = pdq_of_luma(luma, dihedral)
    return PdqResult(h, variants, info, luma, grey)
