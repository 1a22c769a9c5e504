"""Robustness of PDQ matching to everyday edits: recall at threshold 31 on the corpus.

For every corpus photo and every transform, the edited copy (re-encoded as JPEG q=90,
or q=30 for the "jpeg q30" transform) is hashed and compared with the hash of the
original. Recall is the share of edited copies within the threshold of their own
original, for the reference path and the fast path, with plain queries and with dihedral
queries (the 8 rotations/mirrors of the query, best distance counts). False matches: the
smallest distance between *different* corpus photos, and how many pairs fall within the
threshold — a matcher that finds every copy but also matches strangers is useless.

The figures are deterministic (the same hashes on every run, whatever the machine's load)
and nothing is timed, so unlike the speed benchmarks it runs once, with no ``--repeat``.

With ``--variants`` (issue 22) it measures derived-code matching instead, through the real
pipeline, store, indexes and matcher: every photo is banked with its crop ladder (a bank
created with ``crop_ladder``), every edited copy is matched with each option (off,
borders, crops, all; dihedral on in every column, so "off" is plain PDQ as shipped), and
recall counts copies that find their own original; false matches count leads to any other
photo. Then the costs: codes and bytes per banked entry, hashing time per query on 3 MP
JPEGs for each option against plain+dihedral (one core), and ``vigil scan -j1``
throughput per option (hash phase, no matching) on the same files.

Run: .venv/bin/python -m bench.robustness [--count N] [--threshold 31]
     .venv/bin/python -m bench.robustness --variants [--count N] [--cost-files 40]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script

import argparse
import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from bench._data import corpus_paths, jpeg_bytes
from vigil.signals.pdq import pdq_of_image


def _crop(img: Image.Image, frac: float) -> Image.Image:
    dx, dy = round(img.width * frac), round(img.height * frac)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _text(img: Image.Image) -> Image.Image:
    out = img.copy()
    ImageDraw.Draw(out).text((8, img.height - 20), "shared 2026-11-30", fill=(255, 255, 255))
    return out


def _border(img: Image.Image) -> Image.Image:
    return ImageOps.expand(img, border=round(0.1 * max(img.size)), fill=(0, 0, 0))


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize 50%": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "jpeg q30": lambda im: im,
    "greyscale": lambda im: im.convert("L").convert("RGB"),
    "brightness +30%": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "text overlay": _text,
    "rotate 90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "flip horizontal": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "crop 2%": lambda im: _crop(im, 0.02),
    "crop 5%": lambda im: _crop(im, 0.05),
    "border 10%": _border,
}


def codes(data: bytes, mode: str) -> np.ndarray:
    """(8, 32) uint8: the dihedral variants; row 0 is the plain hash."""
    r = pdq_of_image(Image.open(io.BytesIO(data)), "bench", mode, dihedral=True)  # type: ignore[arg-type]
    assert r.dihedral is not None
    return np.array([np.frombuffer(bytes.fromhex(h.hex), np.uint8) for h in r.dihedral])


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between every row of a and every row of b."""
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.bitwise_count(x).sum(axis=2, dtype=np.int32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--threshold", type=int, default=31)
    ap.add_argument("--variants", action="store_true", help="issue 22's tables (see above)")
    ap.add_argument("--cost-files", type=int, default=40)
    ap.add_argument("--parts", default="recall,radius,candidates,cost,scan",
                    help="with --variants (see bench/robustness_variants.py)")
    args = ap.parse_args()
    if args.variants:
        from bench.robustness_variants import run

        run(args.count, args.threshold, args.cost_files, tuple(args.parts.split(",")))
        return
    t = args.threshold
    photos = [Image.open(p).convert("RGB") for p in corpus_paths(args.count)]
    modes = ("reference", "fast")
    originals = {m: np.array([codes(jpeg_bytes(im), m) for im in photos]) for m in modes}
    rows = []
    for name, fn in TRANSFORMS.items():
        q = 30 if name == "jpeg q30" else 90
        blobs = [jpeg_bytes(fn(im), q) for im in photos]
        row = [name]
        for mode in ("reference", "fast"):
            edited = np.array([codes(b, mode) for b in blobs])
            orig = originals[mode][:, 0, :]
            plain = np.bitwise_count(edited[:, 0, :] ^ orig).sum(axis=1)
            dih = np.bitwise_count(edited ^ orig[:, None, :]).sum(axis=2).min(axis=1)
            row += [f"{(plain <= t).mean():.1%}", f"{(dih <= t).mean():.1%}"]
        rows.append(row)
    print(f"recall at threshold {t}, {len(photos)} corpus photos, one core")
    print("| transform | reference plain | reference dihedral | fast plain | fast dihedral |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("| different photos | reference plain | reference dihedral | fast plain "
          "| fast dihedral |")
    print("|---|---|---|---|---|")
    cells_min, cells_n = [], []
    for mode in ("reference", "fast"):
        all8 = originals[mode]
        plain = distances(all8[:, 0, :], all8[:, 0, :])
        dih = np.min([distances(all8[:, k, :], all8[:, 0, :]) for k in range(8)], axis=0)
        off = ~np.eye(len(photos), dtype=bool)
        for d in (plain, dih):
            cells_min.append(str(int(d[off].min())))
            cells_n.append(str(int(((d <= t) & off).sum() // 2)))
    print("| smallest distance | " + " | ".join(cells_min) + " |")
    print(f"| pairs within {t} | " + " | ".join(cells_n) + " |")


if __name__ == "__main__":
    main()
