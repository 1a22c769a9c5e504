"""PDQ hashing speed and drift: Vigil's fast path vs the reference path, one core.

The reference path is what python-threatexchange's PDQ signal does: a full Pillow decode
to RGB, then ``pdqhash.compute`` (Meta's C++). The fast path is ``vigil.signals``'s
default: reduced JPEG decoding straight to luma plus the Numba PDQ. Both read the same
bytes from memory, in one process, on the same images. Drift is the Hamming distance of
the fast hash to the reference hash of the same file. "decode floor" is the time of the
fast path's decode alone: no hashing can be faster than that.

Run: .venv/bin/python bench/hashing.py [--count N] [--min-long-side PX]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

from bench._data import corpus_paths, scaled_jpegs
from vigil.signals import decode
from vigil.signals.pdq import pdq_of_image


def reference_hex(data: bytes) -> str:
    """python-threatexchange's PDQ: full decode to RGB, pdqhash.compute."""
    img = Image.open(io.BytesIO(data))
    bits, _quality = pdqhash.compute(np.asarray(img.convert("RGB")))
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def fast_hex(data: bytes, min_long_side: int) -> str:
    img = Image.open(io.BytesIO(data))
    return pdq_of_image(img, "bench", "fast", min_long_side=min_long_side).hash.hex


def decode_floor(data: bytes, min_long_side: int) -> None:
    img = Image.open(io.BytesIO(data))
    if img.format != "JPEG" and decode.reduction_factor(*img.size, min_long_side) == 1:
        decode.decode_rgb(img, "bench")
    else:
        decode.decode_reduced_luma(img, "bench", min_long_side)


def timed(fn: Callable[[bytes], object], blobs: list[bytes]) -> tuple[float, list[object]]:
    """Images per second over the whole set (after one warm-up call)."""
    fn(blobs[0])
    t0 = time.perf_counter()
    out = [fn(b) for b in blobs]
    return len(blobs) / (time.perf_counter() - t0), out


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def run_set(name: str, paths: list[Path], min_long_side: int) -> dict[str, object]:
    blobs = [p.read_bytes() for p in paths]
    w, h = Image.open(io.BytesIO(blobs[0])).size
    ref_rate, ref = timed(reference_hex, blobs)
    fast_rate, fast = timed(lambda b: fast_hex(b, min_long_side), blobs)
    floor_rate, _ = timed(lambda b: decode_floor(b, min_long_side), blobs)
    drift = [hamming(a, b) for a, b in zip(ref, fast, strict=True)]  # type: ignore[arg-type]
    return {
        "set": name, "n": len(blobs), "size": f"{w}x{h}",
        "factor": decode.reduction_factor(w, h, min_long_side),
        "ref/s": ref_rate, "fast/s": fast_rate, "speed-up": fast_rate / ref_rate,
        "floor/s": floor_rate, "drift mean": statistics.fmean(drift),
        "drift p95": sorted(drift)[int(0.95 * (len(drift) - 1))], "drift max": max(drift),
        "identical": sum(d == 0 for d in drift) / len(drift),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=40, help="images per derived set")
    ap.add_argument("--corpus", type=int, default=500, help="corpus images to use")
    ap.add_argument("--min-long-side", type=int, default=decode.FAST_MIN_LONG_SIDE)
    args = ap.parse_args()
    sets = [
        ("bsds500", corpus_paths(args.corpus)),
        ("12MP q90", scaled_jpegs("12mp", 12.0, args.count)),
        ("1MP q90", scaled_jpegs("1mp", 1.0, args.count)),
    ]
    rows = [run_set(n, p, args.min_long_side) for n, p in sets]
    cols = ["set", "n", "size", "factor", "ref/s", "fast/s", "speed-up", "floor/s",
            "drift mean", "drift p95", "drift max", "identical"]
    print(f"one core; fast path min long side {args.min_long_side} px")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c == "identical":
                cells.append(f"{v:.0%}")
            elif c == "speed-up":
                cells.append(f"{v:.1f}x")
            elif isinstance(v, float):
                cells.append(f"{v:.1f}")
            else:
                cells.append(str(v))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
