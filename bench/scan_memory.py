"""Parent memory of ``vigil scan`` as the seizure grows (issue 21: peak at 500k files
≤ 1.2× the peak at 50k).

The seizure is made from the corpus only: ``--bases`` small JPEGs (64 px crops of the
500 BSDS500 photos at random offsets, each blended with its own random block pattern so
their PDQs are unrelated), each written N/bases times with a unique trailer after its
end-of-image marker. Every file is a valid JPEG a decoder reads as its base picture, with
its own SHA-256: N distinct items, in near-duplicate groups of N/bases (the base's PDQ),
so hashing, matching and grouping all see N items. A bank holds every 10th base, so a
tenth of the items are leads. Files are kept under bench/out/mem-N/ (about 1.1 KB each).

Each size runs the real CLI (``vigil scan -j J --out ...``) in a child process and reads
its own peak RSS (``VmHWM``) at exit: the parent, without its workers. Never prints
hash values.

Run: .venv/bin/python -m bench.scan_memory [--files 50000,500000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "bench" / "out"
BASES = 50_000
PER_DIR = 1000

# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child would report the peak of the
# bench process it was forked from (hundreds of MB of base pictures), not its own.
CHILD = """
import sys
from vigil.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    hwm = next(line.split()[1] for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
    with open({out!r}, "w") as f:
        f.write(hwm)
"""


def _bases(count: int) -> list[bytes]:
    photos = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not photos:
        sys.exit(f"no corpus photos under {CORPUS}")
    rng = np.random.default_rng(21)
    opened = [Image.open(p).convert("RGB") for p in photos]
    out = []
    for k in range(count):
        im = opened[k % len(opened)]
        w, h = im.size
        side = min(w, h) // 2
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        small = im.crop((x, y, x + side, y + side)).resize((64, 64))
        blocks = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
            (64, 64), Image.Resampling.NEAREST)
        small = Image.blend(small, blocks, 0.5)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def seizure(n: int, bases: list[bytes]) -> Path:
    root = OUT / f"mem-{n}-b{len(bases)}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    for i in range(n):
        d = root / f"d{i // PER_DIR:05d}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True)
        (d / f"f{i:07d}.jpg").write_bytes(bases[i % len(bases)] + b"vigil-bench-%d" % i)
    done.touch()
    print(f"  made {n:,} files in {time.perf_counter() - t:.0f} s", flush=True)
    return root


def _home(bases: list[bytes]) -> Path:
    home = OUT / f"mem-home-b{len(bases)}"
    if (home / ".complete").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    src = home / "known"
    src.mkdir(parents=True)
    for k in range(0, len(bases), 10):
        (src / f"b{k}.jpg").write_bytes(bases[k])
    env = {**os.environ, "VIGIL_HOME": str(home)}
    vigil = [sys.executable, "-m", "vigil"]
    subprocess.run([*vigil, "bank", "create", "known", "--agency", "BENCH"], env=env,
                   check=True, capture_output=True)
    subprocess.run([*vigil, "bank", "add", "known", str(src), "-q"], env=env, check=True,
                   capture_output=True)
    (home / ".complete").touch()
    return home


def scan(root: Path, home: Path, jobs: int) -> tuple[float, float]:
    """(parent peak RSS in MB, wall seconds) of one uninterrupted scan."""
    out = OUT / f"{root.name}-scan"
    shutil.rmtree(out, ignore_errors=True)
    rss = OUT / f"{root.name}-rss.txt"
    env = {**os.environ, "VIGIL_HOME": str(home)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD.format(out=str(rss)), "scan", str(root),
                    "--out", str(out), "-j", str(jobs), "-q"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    return int(rss.read_text()) / 1024, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default="50000,500000",
                    help="seizure sizes, comma-separated; the first is the baseline")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--bases", type=int, default=BASES,
                    help="distinct pictures; each is repeated N/bases times")
    args = ap.parse_args()
    sizes = [int(x) for x in args.files.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    bases = _bases(args.bases)
    home = _home(bases)
    # Warm-up, not reported: the first scan after a bank is made builds its indexes and
    # compiles the numba kernels (cached on disk), which would count against the first size.
    scan(seizure(100, bases), home, args.jobs)
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    for n in sizes:
        root = seizure(n, bases)
        peak, wall = scan(root, home, args.jobs)
        rows.append((n, peak, wall))
        print(f"  {n:,} files: parent peak {peak:.0f} MB, {wall:.0f} s", flush=True)
    print(f"load average at end: {os.getloadavg()}")
    base = rows[0][1]
    print("\n| files | parent peak RSS | vs first | wall | files/s |")
    print("|---:|---:|---:|---:|---:|")
    for n, peak, wall in rows:
        print(f"| {n:,} | {peak:.0f} MB | {peak / base:.2f}× | {wall:.0f} s | {n / wall:.0f} |")


if __name__ == "__main__":
    main()
