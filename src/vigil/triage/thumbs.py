"""Thumbnails: the small clear JPEG the scan stores, and what a reviewer is actually shown.

Why two steps: the scan stores one small *clear* thumbnail per item (made while hashing,
``vigil.signals.thumbnail``) so that an examiner who decides to look can do so without
reopening the evidence; every page that shows media to a person passes it through
``present`` first, which by default blurs it (greyscale) until the content is not
recognisable at a glance
(DESIGN.md: reviewers' wellness is a feature). Blurring happens here, on the bytes, and
not with a CSS filter: a page in "blurred" mode must not carry the clear image at all,
or anyone could remove the filter in the browser's inspector.
"""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image, ImageFilter

from vigil.signals.thumbnail import MAX_SIDE, QUALITY, make_thumbnail

Mode = Literal["blurred", "clear"]


def blur_radius(size: tuple[int, int]) -> float:
    """Gaussian radius for a thumbnail of ``size``: a tenth of the long side (16 px at 160).

    At that radius shapes and faces dissolve into soft tonal areas while the overall layout
    (light/dark regions, how many near-duplicates look alike) stays visible, which is what
    a reviewer needs to compare members of a group without seeing them.
    """
    return max(2.0, max(size) / 10)


def present(jpeg: bytes, mode: Mode = "blurred") -> bytes:
    """The bytes to show a person: ``blurred`` (greyscale + strong blur) or ``clear`` (as stored).

    ``clear`` returns the stored thumbnail unchanged (it is already small and re-encoding
    would only lose quality). ``blurred`` decodes at an eighth of the size (the JPEG
    decoder's own scaling: the fine detail is never even decoded), blurs that with
    ``blur_radius`` scaled down alike, and scales it back up smoothly to the thumbnail's
    size: the same strength as a blur at full size, at about half the cost (a report shows
    thousands of these, so this is most of its time).
    """
    if mode == "clear":
        return jpeg
    if mode != "blurred":
        raise ValueError(f"thumbnail mode must be 'blurred' or 'clear', not {mode!r}")
    with Image.open(io.BytesIO(jpeg)) as src:
        w, h = src.size
        small_size = (max(1, w // 8), max(1, h // 8))
        src.draft("L", small_size)
        small = src.convert("L")
    if small.size != small_size:  # not a JPEG, or a size the decoder cannot scale to
        small = small.resize(small_size, Image.Resampling.BOX)
    small = small.filter(ImageFilter.GaussianBlur(blur_radius((w, h)) / 16))
    im = small.resize((w, h), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


__all__ = ["MAX_SIDE", "QUALITY", "Mode", "blur_radius", "make_thumbnail", "present"]
