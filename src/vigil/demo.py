"""``make demo``: generate benign pictures, hash them, and find their edited copies.

What it shows, end to end on a fresh clone with no data: a small "known" bank of
generated pictures; a "seizure" holding exact copies, edited copies (resized,
recompressed, greyscale, brighter, rotated, mirrored) and pictures never seen before;
Vigil hashes the seizure, finds exact copies by SHA-256, edited ones by PDQ within the
threshold (rotations and mirrors through dihedral queries), and leaves the new ones as
unknown — the material a specialist should look at first.

Run: ``python -m vigil.demo [--out DIR] [--known N]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance
from rich.console import Console
from rich.table import Table

from vigil.index import ExactIndex, HammingIndex, codes_from_hex, digests_from_hex
from vigil.signals import FileSignals, HashOptions, hash_file
from vigil.synthetic import synthetic_image

EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "exact copy": lambda im: im,
    "resized 50%": lambda im: im.resize((im.width // 2, im.height // 2)),
    "recompressed q=40": lambda im: im,
    "greyscale": lambda im: im.convert("L"),
    "brightness +30%": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "rotated 90°": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


def build_inputs(root: Path, known: int) -> tuple[list[Path], list[tuple[Path, str, int | None]]]:
    """Write the known pictures and the seizure; return (known files, (file, edit, source))."""
    bank_dir, seizure = root / "bank", root / "seizure"
    bank_dir.mkdir(parents=True)
    seizure.mkdir()
    known_files = []
    for i in range(known):
        p = bank_dir / f"known-{i:02d}.jpg"
        synthetic_image(1000 + i, (640, 480)).save(p, quality=92)
        known_files.append(p)
    cases: list[tuple[Path, str, int | None]] = []
    for n, (name, edit) in enumerate(EDITS.items()):
        src = n % known
        p = seizure / f"IMG_{n:04d}.jpg"
        if name == "exact copy":
            shutil.copyfile(known_files[src], p)
        else:
            edit(Image.open(known_files[src])).save(p, quality=40 if "q=40" in name else 90)
        cases.append((p, name, src))
    for j in range(3):
        p = seizure / f"IMG_{100 + j:04d}.jpg"
        synthetic_image(5000 + j, (640, 480)).save(p, quality=90)
        cases.append((p, "never seen before", None))
    return known_files, cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, help="keep the generated files here (default: temp)")
    ap.add_argument("--known", type=int, default=10, help="pictures in the known bank")
    ap.add_argument("--threshold", type=int, default=31, help="PDQ match threshold (bits)")
    args = ap.parse_args(argv)
    console = Console()
    root = args.out or Path(tempfile.mkdtemp(prefix="vigil-demo-"))
    if args.out and args.out.exists():
        shutil.rmtree(args.out)
    known_files, cases = build_inputs(root, args.known)
    console.print(f"[bold]Vigil demo[/bold] — benign generated pictures in {root}")

    bank = [hash_file(p) for p in known_files]
    ids = np.arange(len(bank), dtype=np.int64)
    pdq_index = HammingIndex()
    pdq_index.add(codes_from_hex([b.pdq.hex for b in bank if b.pdq]), ids)
    sha_index = ExactIndex(32)
    sha_index.add(digests_from_hex([b.digests.sha256 for b in bank if b.digests], 32), ids)
    console.print(f"bank: {len(bank)} known pictures indexed (PDQ and SHA-256)")

    hashed: list[FileSignals] = [hash_file(p, HashOptions(dihedral=True)) for p, _, _ in cases]
    exact = sha_index.lookup(digests_from_hex([h.digests.sha256 for h in hashed
                                               if h.digests], 32))
    table = Table(title=f"seizure: {len(cases)} files, PDQ threshold {args.threshold}")
    for col in ("file", "what it is", "verdict", "match", "bits", "via"):
        table.add_column(col, no_wrap=True)
    correct = 0
    for i, (h, (path, edit, src)) in enumerate(zip(hashed, cases, strict=True)):
        verdict, match, dist, how = "unknown", "", "", ""
        if exact.count(i):
            verdict, match, dist, how = "known", str(exact.matches(i)[0][0]), "0", "SHA-256"
        elif h.pdq_dihedral:
            variants = codes_from_hex([v.hex for v in h.pdq_dihedral])
            res = pdq_index.search(variants, radius=args.threshold)
            hits = [(d, mid, k) for k in range(len(variants)) for mid, d in res.matches(k)]
            if hits:
                d, mid, k = min(hits)
                verdict, match, dist = "known", str(mid), str(d)
                how = "PDQ" if k == 0 else "PDQ, dihedral"
        expected_known = src is not None
        ok = (verdict == "known") == expected_known and (not match or int(match) == src)
        correct += ok
        style = "green" if verdict == "known" else "yellow"
        table.add_row(path.name, edit, f"[{style}]{verdict}[/{style}]",
                      f"known-{int(match):02d}" if match else "", dist, how)
    console.print(table)
    console.print(f"{correct} of {len(cases)} verdicts as expected; unknown files are the "
                  "ones a specialist reviews first.")
    if not args.out:
        shutil.rmtree(root)
    return 0 if correct == len(cases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
