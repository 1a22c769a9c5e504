"""Benchmark inputs made from the benign shared corpus (never any other image source).

Derived sets are cached under bench/out/ (git-ignored) so repeated runs are fast.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "bsds500"
OUT = REPO / "bench" / "out"


def corpus_paths(limit: int | None = None) -> list[Path]:
    """The BSDS500 photos (481x321 or 321x481), sorted."""
    paths = sorted(CORPUS.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no corpus at {CORPUS}: benchmarks need ../shared")
    return paths[:limit] if limit else paths


def scaled_jpegs(name: str, megapixels: float, count: int, seed: int = 0) -> list[Path]:
    """Camera-like JPEGs: corpus photos upscaled to ~megapixels, mild noise, quality 90."""
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for src in corpus_paths()[:: max(1, 500 // count)][:count]:
        dst = folder / src.name
        if not dst.exists():
            img = Image.open(src).convert("RGB")
            scale = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
            big = img.resize((round(img.width * scale), round(img.height * scale)),
                             Image.Resampling.BICUBIC)
            arr = np.asarray(big, dtype=np.int16)
            arr = arr + rng.normal(0, 3, arr.shape).round().astype(np.int16)
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(dst, quality=90)
        out.append(dst)
    return out


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def fresh_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose tables live in a new, empty schema (each run starts from nothing)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from vigil.store import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}) \
        .render_as_string(hide_password=False)
