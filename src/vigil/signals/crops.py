"""Derived PDQ hashes that survive borders, crops and caption bands, from one decode.

PDQ hashes the whole picture, so a copy that was framed, letter-boxed, cropped or had a
caption band laid over it lands far from its original. This module hashes *windows* of
the already decoded luma plane, each one more code that points to the same picture:

* **trimmed**: the content inside near-uniform borders (flat colour frames, black bars of
  a letterbox or pillarbox, white frames), found by ``border_box``. Computed on both
  sides: a query's trimmed content matches the banked picture, and a banked picture's
  trimmed content matches a query that lost its frame.
* **the crop ladder** (bank side, ``LADDER``): centre crops, single-side crops and
  two-side crops at fixed fractions of the trimmed content. A query that *lost* part of
  the picture matches one of these.
* **query windows** (query side, ``QUERY_WINDOWS``): the query without a top or bottom
  band, for the reverse case where the query holds *more* than the banked picture (a
  caption strip over or under it).

Every window is a fixed fraction of the content's size, so the same window of the same
picture gives the same code whatever the picture's resolution. Nothing here is tuned to
particular photos: the fractions are a regular grid (see README, "Crops, borders and
captions", for the measurements that chose its shape).

``border_box`` is a vectorised scan; ``border_box_reference`` is the literal pixel-by-pixel
scan it must equal (tests compare them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.signals.pdq_luma import luma_from_rgb, pdq_from_luma

#: a pixel belongs to a border when it is within this many grey levels of the border colour
BORDER_TOLERANCE = 12.0
#: share of a line's pixels that may stray from the border colour (JPEG ringing, a logo)
BORDER_OUTLIERS = 0.02
#: a border narrower than this share of the side is not trimmed (noise, not a frame)
MIN_BORDER = 0.01
#: what remains after trimming must keep at least this share of each side
MIN_CONTENT = 0.3
#: windows smaller than this many pixels on a side are not hashed
MIN_WINDOW_PX = 32

#: decoded pixels: (H, W, 3) uint8 RGB or an (H, W) float32 luma plane
Pixels = NDArray[np.uint8] | NDArray[np.float32]

#: (top, bottom, left, right) pixel bounds: rows top..bottom-1, columns left..right-1
Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Window:
    """A sub-window as fractions removed from each side of the content."""

    name: str
    top: float = 0.0
    bottom: float = 0.0
    left: float = 0.0
    right: float = 0.0

    def box(self, h: int, w: int) -> Box:
        """The window's pixel bounds inside an ``h`` x ``w`` content."""
        return (round(self.top * h), h - round(self.bottom * h),
                round(self.left * w), w - round(self.right * w))


def _ladder() -> tuple[Window, ...]:
    out = [Window(f"centre-{f:g}", f, f, f, f) for f in (0.025, 0.05, 0.075, 0.1, 0.125, 0.15)]
    for f in (0.05, 0.1, 0.15, 0.2):
        out += [Window(f"top-{f:g}", top=f), Window(f"bottom-{f:g}", bottom=f),
                Window(f"left-{f:g}", left=f), Window(f"right-{f:g}", right=f)]
    for f in (0.06, 0.12):
        out += [Window(f"top-bottom-{f:g}", top=f, bottom=f),
                Window(f"left-right-{f:g}", left=f, right=f)]
    for f in (0.06, 0.12):
        out += [Window(f"top-left-{f:g}", top=f, left=f),
                Window(f"top-right-{f:g}", top=f, right=f),
                Window(f"bottom-left-{f:g}", bottom=f, left=f),
                Window(f"bottom-right-{f:g}", bottom=f, right=f)]
    return tuple(out)


#: bank-side sub-windows of each banked picture's (trimmed) content
LADDER: tuple[Window, ...] = _ladder()

#: query-side sub-windows: the query without a band at the top or the bottom
QUERY_WINDOWS: tuple[Window, ...] = tuple(
    w for f in (0.1, 0.2)
    for w in (Window(f"no-top-{f:g}", top=f), Window(f"no-bottom-{f:g}", bottom=f)))


def _border_len(lines: NDArray[np.float32], tol: float, outliers: float, limit: int) -> int:
    """How many leading lines (rows of ``lines``) are border: each has at most
    ``outliers`` of its pixels farther than ``tol`` from the first line's median."""
    ref = float(np.median(lines[0]))
    start, step = 0, 8
    while start < limit:  # in growing chunks: most pictures stop at the first line
        stop = min(limit, start + step)
        far = (np.abs(lines[start:stop] - ref) > tol).mean(axis=1)
        bad = np.flatnonzero(far > outliers)
        if bad.size:
            return start + int(bad[0])
        start, step = stop, 2 * step
    return limit


def border_box(luma: NDArray[np.float32], tol: float = BORDER_TOLERANCE,
               outliers: float = BORDER_OUTLIERS) -> Box | None:
    """The content's bounds inside near-uniform borders, or None when there is no border
    worth trimming (narrower than ``MIN_BORDER`` on every side, or leaving too little).

    Each side is scanned on its own, inward, against the colour of its outermost line, so
    a black bar at the top and a white frame at the bottom are both found.
    """
    h, w = luma.shape
    if h < MIN_WINDOW_PX or w < MIN_WINDOW_PX:
        return None
    lim_h, lim_w = int(h * (1 - MIN_CONTENT) / 2), int(w * (1 - MIN_CONTENT) / 2)
    top = _border_len(luma, tol, outliers, lim_h)
    bottom = _border_len(luma[::-1], tol, outliers, lim_h)
    left = _border_len(luma.T, tol, outliers, lim_w)
    right = _border_len(luma.T[::-1], tol, outliers, lim_w)
    return _accept(h, w, top, bottom, left, right)


def _accept(h: int, w: int, top: int, bottom: int, left: int, right: int) -> Box | None:
    sides = [(top, h), (bottom, h), (left, w), (right, w)]
    kept = [(n if n >= MIN_BORDER * size else 0) for n, size in sides]
    if not any(kept):
        return None
    return (kept[0], h - kept[1], kept[2], w - kept[3])


def border_box_reference(luma: NDArray[np.float32], tol: float = BORDER_TOLERANCE,
                         outliers: float = BORDER_OUTLIERS) -> Box | None:
    """``border_box`` written as the plain scan it stands for: pixel by pixel, line by
    line, from each edge inward (slow; the tests' reference)."""
    h, w = luma.shape
    if h < MIN_WINDOW_PX or w < MIN_WINDOW_PX:
        return None
    lim_h, lim_w = int(h * (1 - MIN_CONTENT) / 2), int(w * (1 - MIN_CONTENT) / 2)

    def scan(line_at: list[list[float]], limit: int) -> int:
        ref = float(np.median(np.array(line_at[0], dtype=np.float32)))
        for i in range(limit):
            line = line_at[i]
            far = sum(1 for v in line if abs(v - ref) > tol)
            if far / len(line) > outliers:
                return i
        return limit

    rows = luma.tolist()
    cols = luma.T.tolist()
    top = scan(rows, lim_h)
    bottom = scan(rows[::-1], lim_h)
    left = scan(cols, lim_w)
    right = scan(cols[::-1], lim_w)
    return _accept(h, w, top, bottom, left, right)


#: planes with a longer side are box-reduced before their windows are hashed (a
#: reference-mode decode of a 12 MP photo would otherwise cost ~40 full-size PDQs)
MAX_PLANE_SIDE = 3000


def as_luma(pixels: Pixels) -> NDArray[np.float32]:
    """The float32 luma plane of decoded pixels (RGB is converted as PDQ does), reduced
    by an integer box factor when longer than ``MAX_PLANE_SIDE``."""
    luma = (luma_from_rgb(np.asarray(pixels, dtype=np.uint8)) if pixels.ndim == 3
            else np.asarray(pixels, dtype=np.float32))
    k = -(-max(luma.shape) // MAX_PLANE_SIDE)
    if k > 1:
        h, w = luma.shape[0] // k * k, luma.shape[1] // k * k
        luma = luma[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3), dtype=np.float32)
    return luma


def _hash(plane: NDArray[np.float32]) -> tuple[str, int]:
    code, quality = pdq_from_luma(np.ascontiguousarray(plane))
    return bytes(code).hex(), int(quality)


def window_hashes(luma: NDArray[np.float32], windows: tuple[Window, ...],
                  ) -> list[tuple[str, str, int]]:
    """(name, hex, quality) of each window of ``luma`` large enough to hash."""
    h, w = luma.shape
    out = []
    for win in windows:
        t, b, x0, x1 = win.box(h, w)
        if b - t >= MIN_WINDOW_PX and x1 - x0 >= MIN_WINDOW_PX:
            out.append((win.name, *_hash(luma[t:b, x0:x1])))
    return out


def derived_hashes(pixels: Pixels, *, trim: bool = True,
                   windows: tuple[Window, ...] = (), of_trimmed: bool = True,
                   ) -> list[tuple[str, str, int]]:
    """Derived codes of one decoded picture: its trimmed content (``trim``, when it has a
    border) and ``windows`` of the trimmed content (``of_trimmed``, the bank side: the
    ladder of the picture inside its frame) or of the whole picture (the query side: a
    band is cut from the picture as it was shared). (name, hex, quality) each."""
    luma = as_luma(pixels)
    out: list[tuple[str, str, int]] = []
    box = border_box(luma) if trim else None
    content = luma
    if box is not None:
        t, b, x0, x1 = box
        content = luma[t:b, x0:x1]
        out.append(("trimmed", *_hash(content)))
    out += window_hashes(content if of_trimmed else luma, windows)
    return out
