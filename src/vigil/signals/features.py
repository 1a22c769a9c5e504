"""Local features of a picture for the second stage: ORB keypoints from the one decode.

PDQ sees a picture as a whole, so a rotation of a few degrees or a crop of a fifth a side
moves its code too far to match at 31 bits. Local features do not care: the corners and
blobs of a picture keep their descriptors when it is rotated, scaled or cropped, and the
matched keypoints of a true copy line up under one similarity transform (checked by
``vigil.matching.confirm``). This module computes them and packs them small.

* ``compute_features`` runs OpenCV's ORB on the luma plane PDQ was computed from, scaled
  so its long side is ``WORKING_SIDE`` (the same rule on both sides, whatever the file's
  resolution), and keeps the ``MAX_POINTS`` strongest keypoints.
* ``FeatureSet.pack`` / ``unpack``: a small versioned binary form, base64 text for JSON
  (the PDQ entry's ``extra["pdq_features"]``). Version 1 is a 10-byte header (``b"VF"``,
  version, number of anchor codes, width, height, count as little-endian uint16), then
  ``count`` positions (x, y as uint16 in 1/``POSITION_SCALE`` of a working pixel), then
  ``count`` 32-byte ORB descriptors, then the anchor codes (32 bytes each): at most
  5,834 bytes, 7,780 characters of base64 (``MAX_TEXT`` is 8 KiB).
* the **anchor codes** are the PDQ codes of the picture's centre crops of 17.5% and 20% a
  side (``ANCHOR_WINDOWS``, of its trimmed content): heavier crops than the crop ladder
  holds, kept only for the second stage's candidates (``vigil.banks.featured``).

The text is sensitive like a hash (features can be matched against other pictures, and
roughly describe where a picture's corners are): it is never printed nor logged, and
``unpack`` errors name the field and the fault, never the value.

OpenCV is imported only here, when features are first computed.
"""

from __future__ import annotations

import base64
import binascii
import struct
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vigil.signals.crops import Pixels, Window, as_luma, border_box, window_hashes

#: the long side of the plane features are computed on (both sides, any resolution)
WORKING_SIDE = 512
#: at most this many keypoints per picture (the strongest; 36 bytes each)
MAX_POINTS = 160
#: fewer keypoints than this and a picture has no features (too flat to confirm anything)
MIN_POINTS = 8
#: positions are kept in 1/8 of a working pixel
POSITION_SCALE = 8
#: planes smaller than this on a side have no features
MIN_SIDE = 32
#: the packed form's version this code writes and reads
VERSION = 1
_MAGIC = b"VF"
_HEADER = struct.Struct("<2sBBHHH")
DESCRIPTOR_BYTES = 32
#: the longest packed text accepted (8 KiB): a bound for every reader of outside data
MAX_TEXT = 8192
#: a working side larger than this is refused when reading (room for a later version)
MAX_SIDE = 2048
#: centre crops whose PDQ codes travel with the features (second-stage anchors)
ANCHOR_WINDOWS: tuple[Window, ...] = (Window("centre-0.175", 0.175, 0.175, 0.175, 0.175),
                                      Window("centre-0.2", 0.2, 0.2, 0.2, 0.2))
ANCHOR_NAMES: tuple[str, ...] = tuple(w.name for w in ANCHOR_WINDOWS)


class FeatureFormatError(ValueError):
    """A packed feature text that is not one this code writes (names the fault only)."""


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Keypoints of one picture on its working plane: positions and ORB descriptors."""

    width: int
    height: int
    #: (n, 2) float32 positions (x, y) in working pixels
    points: NDArray[np.float32]
    #: (n, 32) uint8 ORB descriptors
    descriptors: NDArray[np.uint8]
    #: PDQ hex codes of ``ANCHOR_WINDOWS``, in that order (none when too small to hash)
    anchors: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.points)

    def pack(self) -> str:
        """The versioned binary form as base64 text (positions quantised)."""
        n = len(self.points)
        q = np.clip(np.round(self.points * POSITION_SCALE), 0,
                    [self.width * POSITION_SCALE - 1, self.height * POSITION_SCALE - 1])
        raw = (_HEADER.pack(_MAGIC, VERSION, len(self.anchors), self.width, self.height, n)
               + q.astype("<u2").tobytes()
               + np.ascontiguousarray(self.descriptors, dtype=np.uint8).tobytes()
               + b"".join(bytes.fromhex(a) for a in self.anchors))
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def unpack(cls, text: object) -> FeatureSet:
        """Read a packed text back, checking every bound (``FeatureFormatError``)."""
        return unpack(text)


def unpack(text: object) -> FeatureSet:
    """A ``FeatureSet`` from its packed text; ``FeatureFormatError`` saying what is wrong
    (type, size, base64, header, version, count, length, position) for anything else."""
    if not isinstance(text, str):
        raise FeatureFormatError(f"must be a base64 string, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise FeatureFormatError(f"too long: {len(text)} characters (at most {MAX_TEXT})")
    if not text.isascii():
        raise FeatureFormatError("not base64: non-ASCII characters")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FeatureFormatError("not valid base64") from None
    if len(raw) < _HEADER.size:
        raise FeatureFormatError(f"too short for its header ({len(raw)} bytes)")
    magic, version, k, width, height, n = _HEADER.unpack_from(raw)
    if magic != _MAGIC:
        raise FeatureFormatError("not a feature set (bad magic)")
    if version != VERSION:
        raise FeatureFormatError(f"unsupported version {version} (this node reads {VERSION})")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise FeatureFormatError(f"working size {width}x{height} out of range "
                                 f"({MIN_SIDE}..{MAX_SIDE})")
    if n > MAX_POINTS:
        raise FeatureFormatError(f"{n} keypoints (at most {MAX_POINTS})")
    if k not in (0, len(ANCHOR_WINDOWS)):
        raise FeatureFormatError(f"{k} anchor codes (0 or {len(ANCHOR_WINDOWS)})")
    want = _HEADER.size + n * (4 + DESCRIPTOR_BYTES) + 32 * k
    if len(raw) != want:
        raise FeatureFormatError(f"{len(raw)} bytes where {n} keypoints and {k} anchor "
                                 f"codes take {want}")
    pos = np.frombuffer(raw, "<u2", 2 * n, _HEADER.size).reshape(n, 2)
    if n and (int(pos[:, 0].max()) >= width * POSITION_SCALE
              or int(pos[:, 1].max()) >= height * POSITION_SCALE):
        raise FeatureFormatError("a keypoint lies outside the working size")
    desc = np.frombuffer(raw, np.uint8, n * DESCRIPTOR_BYTES, _HEADER.size + 4 * n)
    tail = _HEADER.size + n * (4 + DESCRIPTOR_BYTES)
    anchors = tuple(raw[tail + 32 * j:tail + 32 * (j + 1)].hex() for j in range(k))
    return FeatureSet(int(width), int(height),
                      pos.astype(np.float32) / np.float32(POSITION_SCALE),
                      desc.reshape(n, DESCRIPTOR_BYTES).copy(), anchors)


_LOCAL = threading.local()


def _orb() -> Any:
    """This thread's ORB detector (OpenCV is imported on first use only; a server hashes
    uploads on several threads, and one detector object is not shared between them).

    OpenCV is told to use one thread: hashing already runs one file per worker process or
    thread, and a single thread keeps keypoints, hence leads, the same on every machine."""
    orb = getattr(_LOCAL, "orb", None)
    if orb is None:
        import cv2

        cv2.setNumThreads(1)
        orb = cv2.ORB.create(nfeatures=MAX_POINTS, scaleFactor=1.2, nlevels=8,
                             edgeThreshold=31, patchSize=31, fastThreshold=12)
        _LOCAL.orb = orb
    return orb


def working_plane(pixels: Pixels) -> NDArray[np.uint8]:
    """The uint8 luma plane features are computed on: long side ``WORKING_SIDE``."""
    import cv2

    luma = as_luma(pixels)
    h, w = luma.shape
    s = WORKING_SIDE / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    plane = cv2.resize(np.ascontiguousarray(luma, dtype=np.float32), size,
                       interpolation=interp)
    return np.clip(np.round(plane), 0, 255).astype(np.uint8)


def compute_features(pixels: Pixels, anchors: bool = True) -> FeatureSet | None:
    """ORB keypoints of a decoded picture (the ``MAX_POINTS`` strongest), or None when
    it is too small or too flat to have ``MIN_POINTS`` of them; with ``anchors`` (the bank
    side: a query's are never searched) the codes of ``ANCHOR_WINDOWS`` too."""
    plane = working_plane(pixels)
    h, w = plane.shape
    if h < MIN_SIDE or w < MIN_SIDE:
        return None
    keypoints, desc = _orb().detectAndCompute(plane, None)
    if desc is None or len(keypoints) < MIN_POINTS:
        return None
    order = sorted(range(len(keypoints)), key=lambda k: -keypoints[k].response)[:MAX_POINTS]
    pts = np.array([keypoints[k].pt for k in order], dtype=np.float32).reshape(-1, 2)
    # positions as packing keeps them, so a banked set and a fresh one are the same
    kept = np.clip(np.round(pts * POSITION_SCALE), 0,
                   [w * POSITION_SCALE - 1, h * POSITION_SCALE - 1]) / POSITION_SCALE
    return FeatureSet(w, h, kept.astype(np.float32),
                      np.ascontiguousarray(desc[order], dtype=np.uint8),
                      anchor_hashes(pixels) if anchors else ())


def anchor_hashes(pixels: Pixels) -> tuple[str, ...]:
    """PDQ codes of ``ANCHOR_WINDOWS`` of the picture's trimmed content (as the crop
    ladder takes its windows), or none when a window is too small to hash."""
    luma = as_luma(pixels)
    box = border_box(luma)
    if box is not None:
        t, b, x0, x1 = box
        luma = luma[t:b, x0:x1]
    found = window_hashes(luma, ANCHOR_WINDOWS)
    return tuple(hx for _, hx, _ in found) if len(found) == len(ANCHOR_WINDOWS) else ()


def packed_features(pixels: Pixels, anchors: bool = True) -> str | None:
    """``compute_features`` packed for the store and feeds (None: no features)."""
    found = compute_features(pixels, anchors)
    return None if found is None else found.pack()
