"""Benign generated pictures and videos for demos and tests.

Vigil is built and demonstrated without any real material: where the shared corpus is
not at hand (a fresh clone), we draw pictures — smooth colour fields, blocks, rings —
that are different per seed and have enough structure for PDQ to hash with full quality.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """An RGB picture determined by ``seed``: gradients, blocks and a ring."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy = (float(f) for f in rng.uniform(0.5, 4, 2))  # frequencies, then a phase
        ph = float(rng.uniform(0, 6.28))
        img[..., c] = 127 + 100 * np.sin(fx * x / w * 6.28 + ph) * np.cos(fy * y / h * 6.28)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        img[y0 : y0 + h // 4, x0 : x0 + w // 5] = rng.uniform(0, 255, 3)
    cx, cy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, rng.uniform(0.1, 0.3) * h
    ring = np.abs(np.hypot(x - cx, y - cy) - r) < max(2.0, h / 60)
    img[ring] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def synthetic_video(path: str | os.PathLike[str], seed: int, seconds: int = 8,
                    size: tuple[int, int] = (128, 96), rate: int = 10) -> Path:
    """An H.264 MP4 at ``path``: a ``synthetic_image`` panning sideways one pixel a frame.

    For tests and demos that need a real video file (decoded and hashed like footage)
    without any footage: each seed gives a different video, the same seed the same one
    (one encoder thread: x264's frame threads make its output depend on scheduling).
    """
    import av  # only videos need it: images stay as cheap to make as before

    w, h = size
    n = seconds * rate
    wide = np.asarray(synthetic_image(seed, (w + n, h)))
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate, options={"threads": "1"})
        stream.codec_context.thread_count = 1
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            rgb = np.ascontiguousarray(wide[:, i:i + w])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)
