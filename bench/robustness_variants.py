"""Issue 22's measurements, run by ``python -m bench.robustness --variants`` (see there)."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from bench._data import corpus_paths, jpeg_bytes, scaled_jpegs
from vigil.banks import Banks, EntryReader
from vigil.banks.entry import Labels
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.matching import Matcher, queries_of
from vigil.signals import HashOptions, hash_bytes
from vigil.store import make_engine, migrate

OPTIONS = ("off", "borders", "crops", "all")
Edit = Callable[[Image.Image, int], Image.Image]


def _crop(t: float, b: float, left: float, r: float) -> Edit:
    def f(im: Image.Image, _k: int) -> Image.Image:
        w, h = im.size
        return im.crop((round(left * w), round(t * h), w - round(r * w), h - round(b * h)))
    return f


def _one_side(frac: float) -> Edit:
    """A crop from one side only, the side taken in turn (top, right, bottom, left)."""
    def f(im: Image.Image, k: int) -> Image.Image:
        sides = [0.0, 0.0, 0.0, 0.0]
        sides[k % 4] = frac
        t, r, b, left = sides
        return _crop(t, b, left, r)(im, k)
    return f


def _border(im: Image.Image, k: int) -> Image.Image:
    colours = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 60, 160), (200, 40, 40)]
    return ImageOps.expand(im, border=round(0.1 * max(im.size)), fill=colours[k % 5])


def _letterbox(im: Image.Image, _k: int) -> Image.Image:
    w, h = im.size
    out = Image.new("RGB", (max(w, round(h * 16 / 9)), max(h, round(w * 9 / 16))))
    out.paste(im, ((out.width - w) // 2, (out.height - h) // 2))
    return out


def _caption(frac: float) -> Edit:
    """A band of flat colour with text over the bottom (or, every 3rd photo, the top)."""
    def f(im: Image.Image, k: int) -> Image.Image:
        out = im.copy()
        band = round(frac * im.height)
        y0 = 0 if k % 3 == 2 else im.height - band
        d = ImageDraw.Draw(out)
        d.rectangle((0, y0, im.width, y0 + band), fill=(250, 250, 250) if k % 2 else (0, 0, 0))
        d.text((10, y0 + band // 3), f"when you see it #{k} lol",
               fill=(0, 0, 0) if k % 2 else (255, 255, 255))
        return out
    return f


EDITS: dict[str, tuple[Edit, str]] = {
    "border 10% (flat colour)": (_border, "≥ 95%"),
    "letterbox to 16:9": (_letterbox, "≥ 95%"),
    "crop 5% a side": (_crop(0.05, 0.05, 0.05, 0.05), "≥ 90%"),
    "crop 5% one side": (_one_side(0.05), "≥ 90%"),
    "crop 7% a side (off the ladder's grid)": (_crop(0.07, 0.07, 0.07, 0.07), "—"),
    "crop 10% a side": (_crop(0.1, 0.1, 0.1, 0.1), "≥ 70%"),
    "caption band 12%": (_caption(0.12), "≥ 80%"),
    "caption band 10% (off the grid)": (_caption(0.10), "—"),
    "rotate 4°": (lambda im, _k: im.rotate(4, Image.Resampling.BICUBIC, expand=False), "report"),
}


def _recall(count: int, threshold: int) -> None:
    photos = [Image.open(p).convert("RGB") for p in corpus_paths(count)]
    originals = [jpeg_bytes(im) for im in photos]
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        banks = Banks(engine, user="bench")
        banks.create("ladder", "BENCH", crop_ladder=True)
        recs, derived, extra_bytes = [], [], []
        for k, blob in enumerate(originals):
            r = hash_bytes(blob, f"{k}.jpg", HashOptions(crop_ladder=True))
            pdq = [x for x in records_of_file(r, Labels(series=f"S{k}")) if x.signal_type == "pdq"]
            recs += pdq
            derived.append(len(pdq[0].extra.get("pdq_derived", [])))
            extra_bytes.append(len(json.dumps(pdq[0].extra.get("pdq_derived", []))))
        banks.apply("ladder", recs)
        matcher = Matcher(EntryReader(engine), BankIndexes(engine, Path(tmp) / "idx"))
        print(f"recall at threshold {threshold}, {count} corpus photos banked with a crop ladder;"
              " dihedral on in every column")
        print("| edit | " + " | ".join(OPTIONS) + " | false leads (all) | target |")
        print("|---|" + "---|" * (len(OPTIONS) + 2))
        for name, (edit, target) in EDITS.items():
            cells = []
            false_all = 0
            for option in OPTIONS:
                opts = HashOptions(dihedral=True, variants=option)  # type: ignore[arg-type]
                items = []
                for k, im in enumerate(photos):
                    r = hash_bytes(jpeg_bytes(edit(im, k)), f"{k}.jpg", opts)
                    items.append([q for q in queries_of(r, True) if q.signal_type == "pdq"])
                outs = matcher.match(items, threshold=threshold, variants=option)  # type: ignore[arg-type]
                hit = sum(any(m.entry.labels.series == f"S{k}" for m in o.matches)
                          for k, o in enumerate(outs))
                false = sum(m.entry.labels.series != f"S{k}" for k, o in enumerate(outs)
                            for m in o.matches)
                if option == "all":
                    false_all = false
                cells.append(f"{hit / count:.1%}" + (f" ({false} false)" if false else ""))
            print(f"| {name} | " + " | ".join(cells) + f" | {false_all} | {target} |")
        n = len(derived)
        print()
        print(f"bank side: {1 + statistics.mean(derived):.1f} codes per entry (PDQ + "
              f"{statistics.mean(derived):.1f} derived, min {min(derived)}, max {max(derived)}); "
              f"index {32 * (1 + statistics.mean(derived)):.0f} B per entry "
              f"(+ {statistics.mean(extra_bytes):.0f} B of JSON in the entry's extra); "
              f"{n} entries")


def _costs(files: int) -> None:
    paths = scaled_jpegs("3mp", 3.0, files)
    blobs = [p.read_bytes() for p in paths]
    configs = {"plain+dihedral": HashOptions(dihedral=True)} | {
        f"{o}+dihedral": HashOptions(dihedral=True, variants=o)  # type: ignore[arg-type]
        for o in OPTIONS[1:]} | {"bank side: ladder": HashOptions(crop_ladder=True)}
    for o in configs.values():  # compile and warm
        hash_bytes(blobs[0], "w.jpg", o)
    runs: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(5):  # rounds over every option in turn: load changes hit them alike
        for name, o in configs.items():
            t0 = time.perf_counter()
            for k, b in enumerate(blobs):
                hash_bytes(b, f"{k}.jpg", o)
            runs[name].append(time.perf_counter() - t0)
    times = {name: min(r) / len(blobs) for name, r in runs.items()}
    print()
    print(f"query cost on {files} JPEGs of 3 MP, one core (best of 5 interleaved rounds), "
          f"load {os.getloadavg()[0]:.2f}")
    print("| hashing | ms per file | vs plain+dihedral | target |")
    print("|---|---|---|---|")
    base = times["plain+dihedral"]
    for name, t in times.items():
        target = "≤ 3×" if name.endswith("+dihedral") and name != "plain+dihedral" else "—"
        print(f"| {name} | {1000 * t:.1f} | {t / base:.2f}× | {target} |")


def _scan(files: int) -> None:
    from vigil.triage.scan import ScanOptions, run_scan

    paths = scaled_jpegs("3mp", 3.0, files)
    print()
    print(f"vigil scan -j1 (hash phase, no matching, no thumbnails) of {files} JPEGs of 3 MP, "
          f"load {os.getloadavg()[0]:.2f}")
    print("| --variants | files/s | vs off |")
    print("|---|---|---|")
    rates = {}
    for option in OPTIONS:
        with tempfile.TemporaryDirectory() as tmp:
            opts = ScanOptions(inputs=tuple(str(p) for p in paths), jobs=1,
                               thumbnails="none", variants=option)  # type: ignore[arg-type]
            stats = run_scan(Path(tmp) / "case", opts, None, None)
            rates[option] = stats.hashed / stats.seconds["hash"]
        print(f"| {option} | {rates[option]:.1f} | {rates[option] / rates['off']:.2f}× |")


def run(count: int, threshold: int, cost_files: int,
        parts: tuple[str, ...] = ("recall", "cost", "scan")) -> None:
    print(f"load average at start: {os.getloadavg()}")
    if "recall" in parts:
        _recall(count, threshold)
    if "cost" in parts:
        _costs(cost_files)
    if "scan" in parts:
        _scan(cost_files)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    run(500, 31, 40)
