"""Time pdqhash.compute against vigil's Numba PDQ (pdq_from_rgb, pdq_from_luma), one core.

Inputs are a corpus photograph upscaled with Pillow to 4000x3000 (a typical 12 MP photo)
and to 4096x3072 (a power-of-two width, where the reference's column pass aliases in the
cache), plus a 1000x750 luma plane (the scanner's reduced-decode fast path). Prints
milliseconds per image (best of several runs) and checks the hashes agree.

Run: .venv/bin/python bench/pdq_luma_speed.py
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # must precede the numba import

import sys
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

from vigil.signals.pdq_luma import (
    luma_from_rgb,
    pdq_dihedral_from_luma,
    pdq_from_luma,
    pdq_from_rgb,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def best_ms(fn, arg, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def ref_hex(rgb: np.ndarray) -> str:
    bits, _ = pdqhash.compute(rgb)
    return format(int("".join(map(str, bits)), 2), "064x")


def main() -> int:
    photos = sorted((SHARED / "corpus" / "bsds500").glob("*/*.jpg"))
    if not photos:
        print(f"no corpus under {SHARED}", file=sys.stderr)
        return 1
    src = Image.open(photos[0]).convert("RGB")
    cases = {
        "4000x3000": np.asarray(src.resize((4000, 3000), Image.Resampling.BICUBIC)),
        "4096x3072": np.asarray(src.resize((4096, 3072), Image.Resampling.BICUBIC)),
        "1000x750": np.asarray(src.resize((1000, 750), Image.Resampling.BICUBIC)),
    }
    pdq_from_rgb(cases["1000x750"])  # compile / load the Numba cache
    pdq_dihedral_from_luma(luma_from_rgb(cases["1000x750"]))
    print(f"{'image':>10} {'pdqhash':>9} {'from_rgb':>9} {'luma':>7} {'from_luma':>9} "
          f"{'dihedral':>9} {'speed-up':>8}  same")
    for name, rgb in cases.items():
        repeat = 5 if rgb.size > 5_000_000 else 30
        luma = luma_from_rgb(rgb)
        t_ref = best_ms(pdqhash.compute, rgb, repeat)
        t_rgb = best_ms(pdq_from_rgb, rgb, repeat)
        t_luma = best_ms(luma_from_rgb, rgb, repeat)
        t_pl = best_ms(pdq_from_luma, luma, repeat)
        t_dih = best_ms(pdq_dihedral_from_luma, luma, repeat)
        same = pdq_from_rgb(rgb)[0].tobytes().hex() == ref_hex(rgb)
        print(f"{name:>10} {t_ref:9.1f} {t_rgb:9.1f} {t_luma:7.1f} {t_pl:9.1f} "
              f"{t_dih:9.1f} {t_ref / t_rgb:7.1f}x  {same}")
    print("ms per image, best of several runs, one core; luma = luma_from_rgb alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
