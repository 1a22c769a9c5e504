"""What a reviewer's browser receives of a picture: small greyscale derivatives, made here.

Why on the server: a page must never carry a clearer picture than the one it shows (a CSS
filter is removed in a second with the inspector), and the original's bytes never leave
the node. Every derivative is made from the scan's stored thumbnail (at most 160 px,
``vigil.signals.thumbnail``; a video's is one frame, so videos show a keyframe, never
sound), re-encoded, and bounded: never wider or taller than ``MAX_SIDE`` and never larger
than ``MAX_BYTES``.

Blur levels, from the default down (``DEFAULT_LEVEL`` is what every page shows first):

* 3 strong: the triage report's blur (``vigil.triage.thumbs.present``): layout only;
* 2 medium and 1 light: lowered step by step by the reviewer; counted as lightly-blurred
  exposure in the ledger while shown;
* 0 clear (greyscale, no blur): only while a reveal is held, and counted as clear.

``Derivatives`` caches what it made (the next item must appear within 100 ms with
derivatives made on demand); ``derive`` is the plain function it caches, and the tests
compare the two.
"""

from __future__ import annotations

import functools
import io
import threading
from collections import OrderedDict

from PIL import Image, ImageFilter

from vigil.triage.thumbs import MAX_SIDE, present

LEVELS = (0, 1, 2, 3)
DEFAULT_LEVEL = 3
#: no derivative is ever larger than this (a 160 px greyscale JPEG is 3-8 KiB)
MAX_BYTES = 24 * 1024
_QUALITIES = (80, 65, 50, 35, 20)
#: Gaussian radius as a fraction of the long side, per lowered level
_RADIUS = {2: 1 / 30, 1: 1 / 80}


class DerivativeError(ValueError):
    """The stored thumbnail cannot be turned into a derivative (damaged, or a bad level)."""


def _encode(im: Image.Image) -> bytes:
    for q in _QUALITIES:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=q)
        if buf.tell() <= MAX_BYTES:
            return buf.getvalue()
    im = im.resize((max(1, im.width // 2), max(1, im.height // 2)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=_QUALITIES[-1])
    return buf.getvalue()


def derive(thumbnail: bytes, level: int) -> bytes:
    """The derivative of a stored thumbnail at blur ``level`` (see the module)."""
    if level not in LEVELS:
        raise DerivativeError(f"blur level must be one of {', '.join(map(str, LEVELS))}")
    try:
        if level == DEFAULT_LEVEL:
            data = present(thumbnail, "blurred")
            with Image.open(io.BytesIO(data)) as blurred:
                if len(data) <= MAX_BYTES and max(blurred.size) <= MAX_SIDE:
                    return data
                return _encode(_fit(blurred.convert("L")))
        with Image.open(io.BytesIO(thumbnail)) as src:
            src.draft("L", (MAX_SIDE, MAX_SIDE))
            im: Image.Image = _fit(src.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DerivativeError(f"stored thumbnail unreadable: {exc}") from None
    if level in _RADIUS:
        im = im.filter(ImageFilter.GaussianBlur(max(1.0, max(im.size) * _RADIUS[level])))
    return _encode(im)


def _fit(im: Image.Image) -> Image.Image:
    if max(im.size) > MAX_SIDE:
        im = im.copy()
        im.thumbnail((MAX_SIDE, MAX_SIDE))
    return im


class Derivatives:
    """``derive`` with a bounded LRU cache keyed by (item, level)."""

    def __init__(self, size: int = 4096) -> None:
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str, level: int, thumbnail: bytes) -> bytes:
        k = (key, level)
        with self._lock:
            hit = self._cache.get(k)
            if hit is not None:
                self._cache.move_to_end(k)
                return hit
        data = derive(thumbnail, level)
        with self._lock:
            self._cache[k] = data
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return data


@functools.cache
def placeholder() -> bytes:
    """A plain grey picture for an item the scan kept no thumbnail of (the page says so)."""
    return _encode(Image.new("L", (MAX_SIDE, MAX_SIDE), 200))
