"""Safe image decoding for hashing: bomb guard, typed errors, reduced decoding.

Why this module exists: seized devices hold every kind of image file, including
truncated, corrupt and hostile ones. Decoding must never hang, exhaust memory or stop a
scan, and must produce exactly the pixels other agencies' tools hash, so that our
signals match their banks.

Choices (documented in the README as well):

* **Pixels as stored, no EXIF rotation.** Meta's PDQ reference hasher and
  python-threatexchange hash the stored pixel grid and ignore the EXIF orientation tag,
  so banks built with them would not match if we rotated first. We record the tag
  (``ImageInfo.exif_orientation``) and rely on dihedral queries (``--dihedral``) to match
  copies stored in any of the eight orientations.
* **Animated images: first frame only** (``ImageInfo.animated`` says so). This is
  what the reference tools do; per-frame hashing of animations belongs to video.
* **Colour conversion as the reference does it**: Pillow's ``convert("RGB")`` for every
  mode (alpha is dropped, palettes expanded, CMYK converted naively).
* **Bomb guard**: the declared pixel count is checked before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from vigil.signals.errors import CorruptImageError, ImageTooLargeError
from vigil.signals.pickling import plain_state

try:  # HEIC/HEIF: what phones save photos as; decoded by libheif through pillow-heif
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - declared dependency; tolerate a minimal install
    pass

#: Refuse images whose declared size exceeds this many pixels (≈ a 15,000 × 10,000 scan).
DEFAULT_MAX_PIXELS = 150_000_000

#: Fast path: reduce large images only while the long side stays at least this long.
#: Measured (bench/hashing.py): PDQ drift from the reference hash depends on the decoded
#: size; at ≈1000 px it stays within a few bits while decoding 16× fewer pixels.
FAST_MIN_LONG_SIDE = 1000

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
)


def sniff_image_format(head: bytes) -> str | None:
    """The image format the first bytes announce, or None.

    Pillow identifies formats by content too, but when it fails we need to tell a
    corrupt image (an error to report) from a file that is simply not an image.
    """
    for magic, name in _IMAGE_MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypavif", b"ftypmif1"):
        return "HEIF"
    return None


@plain_state
@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What was decoded, and how: recorded with every PDQ so a result can be explained."""

    format: str
    width: int
    height: int
    mode: str
    animated: bool
    exif_orientation: int | None
    decoded_width: int
    decoded_height: int
    #: 1 for a full decode; 2, 4 or 8 when the fast path decoded at reduced scale
    reduction: int


def open_image(source: bytes | IO[bytes], name: str | Path,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image lazily from bytes or a seekable stream, enforcing the pixel limit
    before decoding.

    A stream (a large file on disk) is read only as far as the decoder needs, so memory
    follows the pixel count, not the file size. Raises ``CorruptImageError`` if the
    content announces an image that Pillow cannot parse, ``ImageTooLargeError`` over the
    limit, and ``UnidentifiedImageError`` (untouched) when it is not an image at all.
    """
    fh = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bomb and malformed-tag warnings: we check ourselves
            img = Image.open(fh)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(name, f"declared size exceeds the decoder's limit ({exc})") \
            from exc
    except UnidentifiedImageError:
        fh.seek(0)
        fmt = sniff_image_format(fh.read(16))
        if fmt is None:
            raise
        raise CorruptImageError(name, f"looks like {fmt} but cannot be parsed") from None
    except Exception as exc:  # Pillow plugins raise many types on hostile headers
        raise CorruptImageError(name, f"cannot parse image header: {exc}") from exc
    w, h = img.size
    if w <= 0 or h <= 0:
        raise CorruptImageError(name, f"invalid image size {w}x{h}")
    if w * h > max_pixels:
        raise ImageTooLargeError(
            name, f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}"
        )
    return img


def _exif_orientation(img: Image.Image) -> int | None:
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # broken EXIF must not cost us the hash
        return None
    return int(value) if isinstance(value, int) else None


def _info(img: Image.Image, size: tuple[int, int], decoded: Image.Image, reduction: int,
          orientation: int | None, fmt: str, mode: str) -> ImageInfo:
    """How ``img`` was decoded; ``size`` is its true size, taken before any reduced decode
    (JPEG draft mode changes ``img.size`` to the reduced one)."""
    return ImageInfo(
        format=fmt,
        width=size[0],
        height=size[1],
        mode=mode,
        animated=bool(getattr(img, "is_animated", False)),
        exif_orientation=orientation,
        decoded_width=decoded.size[0],
        decoded_height=decoded.size[1],
        reduction=reduction,
    )


def _load(img: Image.Image, name: str | Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
    except Exception as exc:
        raise CorruptImageError(name, f"cannot decode pixels: {exc}") from exc


def _convert(img: Image.Image, mode: str, name: str | Path) -> Image.Image:
    try:
        return img if img.mode == mode else img.convert(mode)
    except Exception as exc:
        raise CorruptImageError(name, f"cannot convert {img.mode} to {mode}: {exc}") from exc


def decode_rgb(img: Image.Image, name: str | Path) -> tuple[NDArray[np.uint8], ImageInfo]:
    """Full decode to an (H, W, 3) uint8 array, exactly what the reference tools hash."""
    orientation = _exif_orientation(img)
    fmt, mode, size = img.format or "unknown", img.mode, img.size
    _load(img, name)
    rgb = _convert(img, "RGB", name)
    return np.asarray(rgb), _info(img, size, rgb, 1, orientation, fmt, mode)


def reduction_factor(width: int, height: int, min_long_side: int = FAST_MIN_LONG_SIDE) -> int:
    """The largest power-of-two reduction (1, 2, 4, 8) keeping the long side >= min_long_side.

    Powers of two because that is what JPEG's DCT-domain scaling offers; using the same
    factors for other formats keeps drift behaviour identical across formats.
    """
    long_side = max(width, height)
    for factor in (8, 4, 2):
        if long_side // factor >= min_long_side:
            return factor
    return 1


def decode_reduced_luma(img: Image.Image, name: str | Path,
                        min_long_side: int = FAST_MIN_LONG_SIDE,
                        ) -> tuple[NDArray[np.float32], ImageInfo]:
    """Reduced decode straight to an (h, w) float32 luma plane for the fast PDQ path
    (``decode_reduced_grey``, as PDQ takes it)."""
    grey, info = decode_reduced_grey(img, name, min_long_side)
    return np.asarray(grey, dtype=np.float32), info


def decode_reduced_grey(img: Image.Image, name: str | Path,
                        min_long_side: int = FAST_MIN_LONG_SIDE,
                        ) -> tuple[Image.Image, ImageInfo]:
    """Reduced decode straight to an 8-bit greyscale (mode L) image for the fast PDQ path.

    JPEGs use Pillow's draft mode: libjpeg scales in the DCT domain and, when asked for
    greyscale, skips the chroma planes and colour conversion entirely — most of the
    decode cost of a photo, even unscaled (the Y plane is the same BT.601 luma PDQ
    computes, up to rounding). Other formats are decoded fully (they offer no cheaper
    way), converted to luma and box-reduced. The 8-bit image is what the stored
    thumbnail is made from (no cast of the float plane back to bytes).
    """
    orientation = _exif_orientation(img)
    fmt, mode = img.format or "unknown", img.mode
    w, h = img.size
    factor = reduction_factor(w, h, min_long_side)
    if fmt == "JPEG":
        try:
            img.draft("L", (-(-w // factor), -(-h // factor)))
        except Exception as exc:
            raise CorruptImageError(name, f"cannot set up reduced JPEG decoding: {exc}") from exc
        _load(img, name)
        reduced = _convert(img, "L", name)
    else:
        _load(img, name)
        reduced = _convert(img, "L", name)
        if factor > 1:
            reduced = reduced.reduce(factor)
    return reduced, _info(img, (w, h), reduced, factor, orientation, fmt, mode)
