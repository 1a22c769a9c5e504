"""Query-side PDQ codes of a picture turned back by a few degrees: the second stage's
candidates for rotated copies.

A copy rotated by 4° lands ~70 bits from its original's PDQ (median over the corpus):
too far to tell from a different picture by PDQ alone. Turning the query back by the
right angle undoes most of that, but the angle is unknown, so the query is turned back by
each of a few fixed angles (``TURNS``), and the centre of each result is hashed: the
centre crop drops the corners, which a rotation fills with whatever its tool chose (black,
white, a blur, or a crop to fill), so the code depends on the picture, not on the tool.
These codes are compared with the banked pictures' centre crops (anchors of
``vigil.banks.featured``) at the second stage's radius; only candidates, never leads.

The turning runs on the luma plane scaled to a long side of ``TURN_SIDE`` (PDQ drifts
little at that size), with bilinear interpolation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from vigil.signals.crops import Pixels, Window, as_luma, window_hashes

#: (degrees, the centre crop hashed afterwards): every 3° up to 9° either way, so a copy
#: rotated by up to ~10° has a turn within 1.5° of its angle
TURNS: tuple[tuple[float, float], ...] = (
    (-9.0, 0.15), (-6.0, 0.15), (-3.0, 0.1), (3.0, 0.1), (6.0, 0.15), (9.0, 0.15))
#: the long side of the plane that is turned
TURN_SIDE = 1000


def turn_name(degrees: float) -> str:
    """The derived code's name of one turn: ``turn+3``, ``turn-6``."""
    return f"turn{degrees:+g}"


TURN_NAMES: frozenset[str] = frozenset(turn_name(d) for d, _ in TURNS)


def _turned(plane: NDArray[np.float32], degrees: float) -> NDArray[np.float32]:
    import cv2

    h, w = plane.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    out = cv2.warpAffine(plane, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32)


def turned_hashes(pixels: Pixels) -> list[tuple[str, str, int]]:
    """(name, hex, quality) of the centre of the picture turned by each of ``TURNS``."""
    import cv2

    luma = as_luma(pixels)
    h, w = luma.shape
    s = min(1.0, TURN_SIDE / max(h, w))
    if s < 1.0:
        luma = np.asarray(cv2.resize(np.ascontiguousarray(luma), (round(w * s), round(h * s)),
                                     interpolation=cv2.INTER_AREA), dtype=np.float32)
    out = []
    for degrees, crop in TURNS:
        found = window_hashes(_turned(luma, degrees),
                              (Window(turn_name(degrees), crop, crop, crop, crop),))
        out += found
    return out
