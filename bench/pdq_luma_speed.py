"""Time pdqhash.compute against vigil's Numba PDQ (pdq_from_rgb, pdq_from_luma), one core.

Inputs are a corpus photograph upscaled with Pillow to 4000x3000 (a typical 12 MP photo)
and to 4096x3072 (a power-of-two width, where the reference's column pass aliases in the
cache), plus a 1000x750 luma plane (the scanner's reduced-decode fast path). Prints
milliseconds per image and checks the hashes agree. Each run is a fresh process (spawn:
new interpreter, allocator and Numba dispatchers) that loads the kernels untimed, then
takes the best of several calls per figure; cells are min / median / max over
``--repeat`` runs (default 3).

Run: .venv/bin/python -m bench.pdq_luma_speed [--repeat N]
"""

from __future__ import annotations

import os
import sys

os.environ["NUMBA_NUM_THREADS"] = "1"  # must precede the numba import
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script

import argparse
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

from bench._spread import SPREAD_NOTE, Runs, add_repeat_argument, spread_cell
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


CASES = {"4000x3000": (4000, 3000), "4096x3072": (4096, 3072), "1000x750": (1000, 750)}
COLS = ("pdqhash", "from_rgb", "luma", "from_luma", "dihedral")


def one_run(photo: str) -> dict[str, dict[str, float]]:
    """Milliseconds per image for every case and function, in a fresh process."""
    src = Image.open(photo).convert("RGB")
    cases = {k: np.asarray(src.resize(wh, Image.Resampling.BICUBIC)) for k, wh in CASES.items()}
    pdq_from_rgb(cases["1000x750"])  # compile / load the Numba cache
    pdq_dihedral_from_luma(luma_from_rgb(cases["1000x750"]))
    out = {}
    for name, rgb in cases.items():
        repeat = 5 if rgb.size > 5_000_000 else 30
        luma = luma_from_rgb(rgb)
        out[name] = {
            "pdqhash": best_ms(pdqhash.compute, rgb, repeat),
            "from_rgb": best_ms(pdq_from_rgb, rgb, repeat),
            "luma": best_ms(luma_from_rgb, rgb, repeat),
            "from_luma": best_ms(pdq_from_luma, luma, repeat),
            "dihedral": best_ms(pdq_dihedral_from_luma, luma, repeat),
            "same": float(pdq_from_rgb(rgb)[0].tobytes().hex() == ref_hex(rgb)),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeat_argument(ap)
    args = ap.parse_args()
    photos = sorted((SHARED / "corpus" / "bsds500").glob("*/*.jpg"))
    if not photos:
        print(f"no corpus under {SHARED}", file=sys.stderr)
        return 1
    runs = Runs()
    got = [runs.call(one_run, str(photos[0])) for _ in range(args.repeat)]
    print(f"ms per image, best of several calls per run, one core; luma = luma_from_rgb alone;"
          f" {args.repeat} runs; {SPREAD_NOTE}\n")
    print("| image | " + " | ".join(COLS) + " | speed-up (pdqhash / from_rgb) | same hash |")
    print("|" + "---|" * (len(COLS) + 3))
    for name in CASES:
        rs = [g[name] for g in got]
        cells = [spread_cell([r[c] for r in rs], "{:.1f}") for c in COLS]
        speed = spread_cell([r["pdqhash"] / r["from_rgb"] for r in rs], "{:.1f}", "x")
        same = all(r["same"] == 1.0 for r in rs)
        print(f"| {name} | " + " | ".join(cells) + f" | {speed} | {same} |")
    print()
    print(runs.load_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
