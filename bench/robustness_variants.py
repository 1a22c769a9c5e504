"""Issue 22's measurements, run by ``python -m bench.robustness --variants`` (see there).

Parts (``--parts``): ``recall`` (every edit, every ``--variants`` level side by side, the
second stage's leads among them), ``radius`` (where edited copies land from their own
anchors, against the distances between different photos, and what that means as
candidates per query in a bank of a million), ``candidates`` (the anchor index's search
at the second stage's radius over 6M codes, i.e. 1M pictures with 6 anchors each, one
core, and the confirmation's cost per candidate), ``cost`` (hashing per query against
plain+dihedral) and ``scan``.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from bench._data import corpus_paths, jpeg_bytes, scaled_jpegs
from vigil.banks import Banks, EntryReader
from vigil.banks.entry import Labels
from vigil.banks.featured import ANCHORS, FEATURES_KEY, anchor_codes
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.index import HammingIndex, codes_from_hex
from vigil.matching import Matcher, queries_of
from vigil.matching.confirm import confirm
from vigil.matching.second import FEATURE_RADIUS, MAX_CANDIDATES
from vigil.signals import HashOptions, hash_bytes
from vigil.signals.features import unpack
from vigil.signals.turns import TURN_NAMES, TURNS
from vigil.store import make_engine, migrate

OPTIONS = ("off", "borders", "crops", "all", "features")
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
    "crop 15% a side": (_crop(0.15, 0.15, 0.15, 0.15), "—"),
    "crop 20% a side": (_crop(0.2, 0.2, 0.2, 0.2), "—"),
    "rotate 2°": (lambda im, _k: im.rotate(2, Image.Resampling.BICUBIC, expand=False), "—"),
    "rotate 4°": (lambda im, _k: im.rotate(4, Image.Resampling.BICUBIC, expand=False), "report"),
    "rotate 8°": (lambda im, _k: im.rotate(8, Image.Resampling.BICUBIC, expand=False), "—"),
}
#: the edits the second stage is for, whose distances ``radius`` reports
SECOND_STAGE_EDITS = ("crop 15% a side", "crop 20% a side", "rotate 2°", "rotate 4°",
                      "rotate 8°")
#: every query is hashed once with everything on; each level uses what it searches
QUERY_SIDE = HashOptions(dihedral=True, variants="features")


def _banked(photos: list[Image.Image], tmp: str) -> tuple[Matcher, BankIndexes, list[dict]]:
    """Every photo banked (JPEG q90) in a bank with a crop ladder: the matcher, its
    indexes, and each photo's PDQ entry's ``extra`` (derived codes, features)."""
    engine = make_engine(f"sqlite:///{tmp}/bench.db")
    migrate(engine)
    banks = Banks(engine, user="bench")
    banks.create("ladder", "BENCH", crop_ladder=True)
    recs, extras = [], []
    for k, im in enumerate(photos):
        r = hash_bytes(jpeg_bytes(im), f"{k}.jpg", HashOptions(crop_ladder=True))
        [pdq] = [x for x in records_of_file(r, Labels(series=f"S{k}"))
                 if x.signal_type == "pdq"]
        recs.append(pdq)
        extras.append({**pdq.extra, "value": pdq.value, "quality": pdq.quality})
    banks.apply("ladder", recs)
    indexes = BankIndexes(engine, Path(tmp) / "idx")
    return Matcher(EntryReader(engine), indexes), indexes, extras


def _queries(photos: list[Image.Image], edit: Edit) -> list[list]:
    items = []
    for k, im in enumerate(photos):
        r = hash_bytes(jpeg_bytes(edit(im, k)), f"{k}.jpg", QUERY_SIDE)
        items.append([q for q in queries_of(r, True) if q.signal_type == "pdq"])
    return items


def _recall(count: int, threshold: int) -> None:
    photos = [Image.open(p).convert("RGB") for p in corpus_paths(count)]
    with tempfile.TemporaryDirectory() as tmp:
        matcher, _, extras = _banked(photos, tmp)
        derived = [len(x.get("pdq_derived", [])) for x in extras]
        extra_bytes = [len(json.dumps(x.get("pdq_derived", []))) for x in extras]
        feats = [len(x[FEATURES_KEY]) for x in extras if FEATURES_KEY in x]
        points = [len(unpack(x[FEATURES_KEY])) for x in extras if FEATURES_KEY in x]
        print(f"recall at threshold {threshold}, {count} corpus photos banked with a crop ladder;"
              " dihedral on in every column; features: leads of the second stage in brackets")
        print("| edit | " + " | ".join(OPTIONS) + " | false leads (features) | target |")
        print("|---|" + "---|" * (len(OPTIONS) + 2))
        for name, (edit, target) in EDITS.items():
            items = _queries(photos, edit)
            cells = []
            false_last = 0
            for option in OPTIONS:
                outs = matcher.match(items, threshold=threshold, variants=option)  # type: ignore[arg-type]
                hit = [[m for m in o.matches if m.entry.labels.series == f"S{k}"]
                       for k, o in enumerate(outs)]
                false = sum(m.entry.labels.series != f"S{k}" for k, o in enumerate(outs)
                            for m in o.matches)
                false_last = false
                cell = f"{sum(bool(h) for h in hit) / count:.1%}"
                if option == "features":
                    second = sum(any(m.variant == "features" for m in h) for h in hit)
                    cell += f" ({second})"
                cells.append(cell + (f" ({false} false)" if false else ""))
            print(f"| {name} | " + " | ".join(cells) + f" | {false_last} | {target} |")
        n = len(derived)
        print()
        print(f"bank side: {1 + statistics.mean(derived):.1f} codes per entry (PDQ + "
              f"{statistics.mean(derived):.1f} derived, min {min(derived)}, max {max(derived)}); "
              f"index {32 * (1 + statistics.mean(derived)):.0f} B per entry "
              f"(+ {statistics.mean(extra_bytes):.0f} B of JSON in the entry's extra); "
              f"{n} entries")
        print(f"features: {len(feats)} of {n} entries have them; {statistics.mean(points):.0f} "
              f"keypoints on average (min {min(points)}); pdq_features "
              f"{statistics.mean(feats):.0f} characters on average, max {max(feats)} "
              f"(36 B per keypoint + 64 B of anchor codes + 10 B, base64); anchor index "
              f"{32 * statistics.mean(len(_anchors(x)) for x in extras):.0f} B per entry")


def _anchors(x: dict) -> list[tuple[int, str]]:
    return anchor_codes(0, x["value"], x["quality"], x)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2, dtype=np.int32)


def _radius(count: int) -> None:
    """Where each edit's copies land from their own picture's nearest anchor, against
    the nearest anchor of *another* picture, and the confirmations of those others."""
    photos = [Image.open(p).convert("RGB") for p in corpus_paths(count)]
    with tempfile.TemporaryDirectory() as tmp:
        _, _, extras = _banked(photos, tmp)
    anchors = [codes_from_hex([h for _, h in _anchors(x)]) for x in extras]
    owner = np.concatenate([np.full(len(a), k) for k, a in enumerate(anchors)])
    flat = np.concatenate([a for a in anchors if len(a)])
    radii = (40, 48, 56, 64, 72, 80)
    print()
    print(f"second-stage radius: distance from each query's codes (plain, trimmed, turned "
          f"back) to the nearest anchor (picture, trimmed, centre 10-20%) of its own picture, "
          f"{count} corpus photos")
    print("| edit | median | 90th pct | max | " + " | ".join(f"≤ {r}" for r in radii) + " |")
    print("|---|---|---|---|" + "---|" * len(radii))

    def nearest(items: list[list]) -> tuple[np.ndarray, list[np.ndarray]]:
        own, other = np.full(count, 256), []
        for k, [q] in enumerate(items):
            codes = [q.value] + [h for n, h, _ in q.derived
                                 if n == "trimmed" or n in TURN_NAMES]
            d = _hamming(codes_from_hex(codes), flat).min(axis=0)
            mine = owner == k
            if mine.any():
                own[k] = int(d[mine].min())
            other.append(d[~mine])
        return own, other

    for name in SECOND_STAGE_EDITS:
        own, _ = nearest(_queries(photos, EDITS[name][0]))
        cells = [f"{np.mean(own <= r):.1%}" for r in radii]
        print(f"| {name} | {np.median(own):.0f} | {np.percentile(own, 90):.0f} | {own.max()} | "
              + " | ".join(cells) + " |")
    items = _queries(photos, lambda im, _k: im)
    _, other = nearest(items)
    per_query = np.array([[np.unique(owner[~(owner == k)][d <= r]).size for r in radii]
                          for k, d in enumerate(other)])
    pairs = count * (count - 1)
    print()
    print("| different photos (each unedited photo against every other's anchors) | "
          + " | ".join(f"≤ {r}" for r in radii) + " |")
    print("|---|" + "---|" * len(radii))
    print("| pairs within the radius | " + " | ".join(
        f"{int(per_query[:, j].sum())} of {pairs}" for j in range(len(radii))) + " |")
    print("| candidates per query in a bank of 1M like these | " + " | ".join(
        f"{per_query[:, j].sum() / pairs * 1e6:.1f}" for j in range(len(radii))) + " |")
    smallest = min(int(d.min()) for d in other if len(d))
    print(f"smallest distance between different photos' codes and anchors: {smallest}")
    # the second stage's check on every pair within its radius: all must be turned down
    j = radii.index(FEATURE_RADIUS) if FEATURE_RADIUS in radii else len(radii) - 1
    checked = confirmed = 0
    most = 0
    for k, d in enumerate(other):
        q = items[k][0]
        if q.features is None:
            continue
        for o in np.unique(owner[~(owner == k)][d <= radii[j]]):
            x = extras[int(o)]
            if FEATURES_KEY not in x:
                continue
            checked += 1
            c = confirm(unpack(q.features), unpack(x[FEATURES_KEY]))
            confirmed += c is not None
    for k in range(min(count, 200)):  # inliers of the best other picture, any distance
        q = items[k][0]
        if q.features is None:
            continue
        for o in range(k + 1, min(count, 200)):
            x = extras[o]
            if FEATURES_KEY in x:
                c = confirm(unpack(q.features), unpack(x[FEATURES_KEY]))
                most = max(most, c.inliers if c else 0)
    print(f"pairs of different photos within {radii[j]} bits checked by the features: "
          f"{checked}, confirmed (false matches): {confirmed}; the most inliers any of "
          f"the first 200 photos reached against another, at any distance, when confirmed: "
          f"{most}")


def _candidates() -> None:
    """The anchor index at the second stage's radius over 1M pictures (6M random codes),
    one core; and the confirmation's cost per candidate."""
    rng = np.random.default_rng(1)
    n = 1_000_000 * len(ANCHORS)
    idx = HammingIndex(strategy="scan")  # as BankIndexes keeps it
    idx.add(rng.integers(0, 256, (n, 32), dtype=np.uint8), np.arange(n, dtype=np.int64))
    idx.compact()
    queries = rng.integers(0, 256, (1000, 32), dtype=np.uint8)
    idx.search(queries[:10], FEATURE_RADIUS, threads=1)  # compile and warm
    t0 = time.perf_counter()
    res = idx.search(queries, FEATURE_RADIUS, threads=1)
    t = time.perf_counter() - t0
    print()
    per_code = 1000 * t / 1000
    print(f"anchor search at radius {FEATURE_RADIUS} over {n:,} codes (1M pictures x "
          f"{len(ANCHORS)} anchors; {idx.nbytes() / 1e6:.0f} MB), 1,000 queries in one batch, "
          f"one core: {per_code:.2f} ms per query code, {(2 + len(TURNS)) * per_code:.1f} ms "
          f"per query picture of {2 + len(TURNS)} codes ({len(res.ids)} hits on random "
          f"codes), load {os.getloadavg()[0]:.2f}")
    photos = [Image.open(p).convert("RGB") for p in corpus_paths(60)]
    sets = []
    for k, im in enumerate(photos):
        r = hash_bytes(jpeg_bytes(im), f"{k}.jpg", HashOptions(crop_ladder=True))
        if r.pdq_features:
            sets.append(unpack(r.pdq_features))
    t0 = time.perf_counter()
    pairs = 0
    for a in sets[:30]:
        for b in sets[30:]:
            confirm(a, b)
            pairs += 1
    t = time.perf_counter() - t0
    print(f"confirmation (descriptor matching + RANSAC) of different photos: "
          f"{1000 * t / pairs:.2f} ms per candidate ({pairs} pairs); at most "
          f"{MAX_CANDIDATES} candidates per query picture")


def _costs(files: int) -> None:
    paths = scaled_jpegs("3mp", 3.0, files)
    blobs = [p.read_bytes() for p in paths]
    configs = {"plain+dihedral": HashOptions(dihedral=True)} | {
        f"{o}+dihedral": HashOptions(dihedral=True, variants=o)  # type: ignore[arg-type]
        for o in OPTIONS[1:]} | {"bank side: ladder and features": HashOptions(crop_ladder=True)}
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
        parts: tuple[str, ...] = ("recall", "radius", "candidates", "cost", "scan")) -> None:
    print(f"load average at start: {os.getloadavg()}")
    if "recall" in parts:
        _recall(count, threshold)
    if "radius" in parts:
        _radius(count)
    if "candidates" in parts:
        _candidates()
    if "cost" in parts:
        _costs(cost_files)
    if "scan" in parts:
        _scan(cost_files)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    run(500, 31, 40)
