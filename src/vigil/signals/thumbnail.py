"""Small thumbnails for people who review a scan, made while hashing.

A scan stores one small JPEG per item so that an examiner who decides to look can do so
without reopening the evidence (the report blurs it by default: ``vigil.triage.thumbs``).
Images get theirs from the pixels PDQ already decoded (no second decode: on the fast path
that plane is greyscale, so these thumbnails are too); videos from a few of the frames
vPDQ decodes (``vigil.signals.keyframes``). A thumbnail is a convenience: every failure
is ``None``, never the file's error.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

#: Long side of a stored thumbnail, in pixels: enough to recognise a scene once the
#: examiner chooses to, small enough that a million of them stay a few GB.
MAX_SIDE = 160
#: JPEG quality of stored thumbnails (a balance of size and legibility).
QUALITY = 70

#: EXIF orientation -> the transpose that shows the picture upright (as exif_transpose).
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


#: Up to this share over MAX_SIDE after the box reduction, the last step drops rows and
#: columns (at most one in 16) instead of resampling: a 481 px photo reduces to 161 px,
#: and a bilinear pass to 160 cost 0.06 ms of the thumbnail's 0.2, the nearest 0.01.
NEAR = 1 / 16


def _encode(im: Image.Image) -> bytes:
    # Box-reduce by the largest integer factor that keeps the long side at MAX_SIDE or
    # more (a box average: cheap, and it filters what it drops), then a finish over the
    # last few pixels: bilinear, or dropping rows and columns within NEAR of the size.
    # Pillow's bilinear resampling costs in proportion to the pixels it reads: from a
    # 481 x 321 plane it cost 0.30 ms against 0.09 ms this way.
    factor = max(1, max(im.size) // MAX_SIDE)
    if factor > 1:
        im = im.reduce(factor)
    w, h = im.size
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        near = scale >= 1 / (1 + NEAR)
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                       Image.Resampling.NEAREST if near else Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def make_thumbnail(img: Image.Image) -> bytes:
    """A clear JPEG of ``img``, at most ``MAX_SIDE`` px on its long side.

    The orientation from EXIF is applied so the thumbnail shows what a viewer would; modes
    other than RGB/L (palette, alpha, CMYK, 16-bit) are flattened because JPEG has none.
    """
    im = ImageOps.exif_transpose(img) if hasattr(img, "getexif") else img
    if im.mode not in ("RGB", "L"):
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.getchannel("A"))
            im = bg
        elif im.mode.startswith("I"):
            # 16/32-bit greyscale: scale into 8 bits instead of clipping to white.
            im = im.point(lambda v: v * (1 / 256)).convert("L")
        else:
            im = im.convert("RGB")
    elif im is img:
        im = im.copy()
    return _encode(im)


def thumbnail_of_pixels(pixels: np.ndarray | Image.Image, orientation: int | None
                        ) -> bytes | None:
    """A greyscale thumbnail of pixels already decoded for PDQ (RGB, a float luma plane,
    or the 8-bit greyscale image that plane was made from: the same thumbnail, without
    casting the plane back to bytes, which cost 0.15 ms of 0.35), shown upright by the
    EXIF ``orientation``; None if it cannot be made."""
    try:
        # Take every k-th pixel down to about twice the thumbnail's size first: converting
        # a whole 12 MP plane would cost more than the thumbnail; the filtered reduction
        # that follows smooths what the sampling left.
        w, h = pixels.size if isinstance(pixels, Image.Image) else pixels.shape[1::-1]
        k = max(1, min(min(h, w) // (2 * MAX_SIDE), max(h, w) // (4 * MAX_SIDE)))
        if isinstance(pixels, Image.Image):
            im = pixels.convert("L") if pixels.mode != "L" else pixels
            if k > 1:
                im = Image.fromarray(np.ascontiguousarray(np.asarray(im)[::k, ::k]), "L")
        elif pixels.ndim == 3:
            rgb = np.ascontiguousarray(pixels[::k, ::k], dtype=np.uint8)
            im = Image.fromarray(rgb, "RGB").convert("L")
        else:  # the fast path's plane: float32 of 8-bit luma, so the cast is exact
            im = Image.fromarray(np.ascontiguousarray(pixels[::k, ::k], dtype=np.uint8), "L")
        if orientation in _UPRIGHT:
            im = im.transpose(_UPRIGHT[orientation])
        return _encode(im)
    except Exception:  # a thumbnail is a convenience; its failure is not the file's
        return None
