"""What the hashing workers' fork server loads once, before it forks any worker.

Why: a worker forked from a server that has only imported the code still has to load
PDQ's compiled kernels (Numba's on-disk cache) on its first file, about 0.2 s, and every
replacement worker after a death pays it again. Hashing one small generated picture here
compiles them in the server, and every forked worker inherits them: it starts hashing at
once. Importing this module has that effect on purpose; only the fork server imports it
(``vigil.signals.forkstart.PRELOAD``).

The picture is made here (a gradient), never read from anywhere: no evidence, no file.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from PIL import Image

import vigil.signals.runner  # noqa: F401  (the workers' entry point, imported once here)
from vigil.signals.options import HashOptions
from vigil.signals.pipeline import hash_bytes


def _warm_up() -> None:
    """Hash a generated JPEG through the whole pipeline (PDQ, EXIF, thumbnail).

    Never raises: the fork server must start even if this fails, and a worker then meets
    the same failure on a real file, where it is reported against that file.
    """
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.dstack([(x * 2 + y) % 256, (x + y * 3) % 256, (x * y) % 256]).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=80)
    hash_bytes(buf.getvalue(), "warm-up", HashOptions(thumbnails=True, exif=True))


with contextlib.suppress(Exception):  # see _warm_up: the server must start regardless
    _warm_up()
