"""``vigil match`` over 10k files against a 1M-entry bank: files/s and where the time goes.

Inputs (cached under bench/out/): the 500 corpus photos plus derived copies (resize,
recompress, rotate, crop, greyscale, brightness, flip) up to ``--files``; and a private
store (``bench/out/bench-home``: SQLite + indexes) holding one bank of 1,000,000 entries:
random MD5/SHA-1/SHA-256/PDQ values plus the signals of 100 corpus photos ("planted"), so
originals of those photos match exactly and their derived copies match by PDQ.

Two measurements, on the same files (page cache warmed first):

1. the real CLI once, ``vigil match DIR -q`` in a child process with VIGIL_HOME and
   VIGIL_DATABASE_URL pointing at the private store: end-to-end files/s (interpreter
   start, store open, index load, hashing, matching, printing);
2. the same functions the CLI calls, in this process, each under a timer: opening the
   store and indexes (``open_banks`` / ``open_indexes``), hashing (``hash_paths`` with the
   CLI's ``default_jobs()``), ``Matcher.match`` split into index search
   (``BankIndexes.search_pdq``/``lookup``), store reads (``Banks.by_ids``/``list``) and the
   policy code around them.

Never prints a hash value. Run: .venv/bin/python -m bench.match_files [--files 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance, ImageOps

from bench._data import OUT, REPO, corpus_paths

HOME = OUT / "bench-home"
BANK = "bench-1m"
BANK_SIZE = 1_000_000
PLANTED_EVERY = 5  # every 5th corpus photo (100 of 500) is in the bank


# ---- the store ---------------------------------------------------------------------------


def store_env() -> dict[str, str]:
    """Environment that points the CLI at the private store."""
    return {**os.environ, "VIGIL_HOME": str(HOME),
            "VIGIL_DATABASE_URL": f"sqlite:///{HOME / 'vigil.db'}"}


def planted_photos() -> list[Path]:
    return corpus_paths()[::PLANTED_EVERY]


def _bank_records(seed: int = 7) -> Iterator[Any]:
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.signals import HashOptions, hash_file

    planted_labels = [Labels(category=("us", "1"), series=f"bench-S{k}") for k in range(10)]
    n = 0
    for i, p in enumerate(planted_photos()):
        s = hash_file(p, HashOptions())
        assert s.digests is not None and s.pdq is not None
        lab = planted_labels[i % 10]
        sid = f"planted-{i}"
        for t, v, q in (("md5", s.digests.md5, None), ("sha1", s.digests.sha1, None),
                        ("sha256", s.digests.sha256, None), ("pdq", s.pdq.hex, s.pdq.quality)):
            yield EntryRecord(t, v, lab, quality=q, source_id=sid)
            n += 1
    rng = random.Random(seed)
    labels = [Labels(category=("us", str(c))) for c in range(6)]
    types = (("pdq", 64), ("md5", 32), ("sha1", 40), ("sha256", 64))
    for i in range(BANK_SIZE - n):
        t, w = types[i % 4]
        yield EntryRecord(t, f"{rng.getrandbits(4 * w):0{w}x}", labels[i % 6],
                          quality=100 if t == "pdq" else None)


def ensure_bank(log: Callable[[str], None] = print) -> None:
    """Create the private store with the 1M-entry bank and its saved indexes (once)."""
    ready = HOME / "BANK-READY"
    if ready.exists():
        return
    import shutil

    from vigil.banks import Banks
    from vigil.banks.indexes import BankIndexes
    from vigil.store import make_engine, migrate

    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    engine = make_engine(store_env()["VIGIL_DATABASE_URL"])
    migrate(engine)
    banks = Banks(engine, user="bench")
    banks.create(BANK, "BENCH", "random signals + 100 planted corpus photos")
    t = time.perf_counter()
    r = banks.apply(BANK, _bank_records(), source="bench")
    log(f"bank {BANK}: {r.added:,} entries in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    BankIndexes(engine, HOME / "indexes" / "main")
    log(f"indexes built and saved in {time.perf_counter() - t:.0f} s")
    engine.dispose()
    ready.write_text(json.dumps({"entries": r.added}))


# ---- derived images ----------------------------------------------------------------------


def derive(img: Image.Image, rng: random.Random, kinds: tuple[str, ...] | None = None
           ) -> tuple[str, Image.Image, int]:
    """A transformed copy: (transform name, image, JPEG quality to save it with)."""
    kind = rng.choice(kinds or ("resize", "recompress", "rotate", "crop", "grey", "bright",
                                "flip"))
    q = rng.randrange(70, 95)
    if kind == "resize":
        s = rng.uniform(0.4, 0.95)
        img = img.resize((max(8, round(img.width * s)), max(8, round(img.height * s))),
                         Image.Resampling.BILINEAR)
    elif kind == "recompress":
        q = rng.randrange(25, 90)
    elif kind == "rotate":
        if rng.random() < 0.5:
            img = img.transpose(rng.choice((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                            Image.Transpose.ROTATE_270)))
        else:
            img = img.rotate(rng.uniform(-4, 4), Image.Resampling.BILINEAR)
    elif kind == "crop":
        f = rng.uniform(0.005, 0.04)
        dx, dy = round(img.width * f), round(img.height * f)
        img = img.crop((dx, dy, img.width - dx, img.height - dy))
    elif kind == "grey":
        img = ImageOps.grayscale(img)
    elif kind == "bright":
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))
    else:
        img = ImageOps.mirror(img)
    return kind, img, q


def match_set(count: int) -> Path:
    """Corpus originals + derived copies, ``count`` files in all (cached)."""
    folder = OUT / f"match-files-{count}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    photos = corpus_paths()
    rng = random.Random(11)
    for k in range(count):
        src = photos[k % len(photos)]
        if k < len(photos):
            dst = folder / "orig" / src.name
            dst.parent.mkdir(exist_ok=True)
            dst.write_bytes(src.read_bytes())
            continue
        kind, img, q = derive(Image.open(src).convert("RGB"), rng)
        dst = folder / kind / f"{k:06d}_{src.stem}.jpg"
        dst.parent.mkdir(exist_ok=True)
        img.save(dst, "JPEG", quality=q)
    done.write_text(str(count))
    return folder


def warm(folder: Path) -> int:
    """Read every file once so both measurements start from a warm page cache."""
    n = 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            p.read_bytes()
            n += 1
    return n


# ---- measurements ------------------------------------------------------------------------


def run_cli(folder: Path) -> dict[str, Any]:
    argv = [str(REPO / ".venv/bin/python"), "-m", "vigil", "match", str(folder), "-q",
            "--bank", BANK]
    t = time.perf_counter()
    p = subprocess.run(argv, env=store_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    lines = p.stdout.splitlines()
    matched = {ln.split(": MATCH ")[0] for ln in lines if ": MATCH " in ln}
    return {"wall": wall, "exit": p.returncode, "lines": len(lines), "matched_items": len(matched)}


class Timers:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t0
        return timed


def run_inprocess(folder: Path) -> dict[str, Any]:
    os.environ.update(store_env())
    from vigil.banks import EntryReader
    from vigil.cli._app import open_banks, open_indexes
    from vigil.cli._files import default_jobs, hash_paths
    from vigil.matching import Matcher, queries_of
    from vigil.signals import HashOptions

    out: dict[str, float] = {}
    t = time.perf_counter()
    banks = open_banks()
    out["open store"] = time.perf_counter() - t
    t = time.perf_counter()
    indexes = open_indexes(banks)
    out["open+sync indexes"] = time.perf_counter() - t
    reader = EntryReader(banks.engine)
    matcher = Matcher(reader, indexes)
    t = time.perf_counter()
    files = list(hash_paths([folder], HashOptions(), default_jobs()))
    out["hash"] = time.perf_counter() - t
    tm = Timers()
    indexes.search_pdq = tm.wrap("index: pdq search", indexes.search_pdq)  # type: ignore[method-assign]
    indexes.lookup = tm.wrap("index: exact lookup", indexes.lookup)  # type: ignore[method-assign]
    reader.by_ids = tm.wrap("store: by_ids", reader.by_ids)  # type: ignore[method-assign]
    banks.list = tm.wrap("store: list banks", banks.list)  # type: ignore[method-assign]
    t = time.perf_counter()
    items = [queries_of(f, False) for f in files]
    outcomes = matcher.match(items, bank_names=[BANK])
    match_total = time.perf_counter() - t
    out.update(tm.t)
    out["match: policy (rest of Matcher.match)"] = match_total - sum(tm.t.values())
    matched = sum(1 for o in outcomes if o.leads())
    exact = sum(1 for o in outcomes if any(m.signal_type != "pdq" for m, _ in o.leads()))
    return {"seconds": out, "files": len(files), "matched": matched, "exact": exact,
            "errors": sum(f.error is not None for f in files), "jobs": default_jobs()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    ensure_bank(log)
    folder = match_set(args.files)
    n = warm(folder)
    cli = run_cli(folder)
    inp = run_inprocess(folder)
    s = inp["seconds"]
    total = sum(s.values())
    groups = {
        "hashing": s["hash"],
        "matching (index search)": s.get("index: pdq search", 0) + s.get("index: exact lookup", 0),
        "matching (policy code)": s["match: policy (rest of Matcher.match)"],
        "storage (store reads, open store, load+sync indexes)":
            s.get("store: by_ids", 0) + s.get("store: list banks", 0) + s["open store"]
            + s["open+sync indexes"],
    }
    print(f"{n:,} files ({inp['errors']} errors), bank {BANK}: {BANK_SIZE:,} entries; "
          f"hashing jobs = default_jobs() = {inp['jobs']}")
    print(f"items with a lead: {inp['matched']:,} ({inp['exact']:,} via an exact digest)")
    print()
    print("| measurement | seconds | files/s |")
    print("|---|---|---|")
    print(f"| CLI `vigil match` end to end (exit {cli['exit']}) | {cli['wall']:.1f} | "
          f"{n / cli['wall']:.0f} |")
    print(f"| same functions in-process, sum of timed parts | {total:.1f} | {n / total:.0f} |")
    print()
    print("| part | seconds | share |")
    print("|---|---|---|")
    for k, v in s.items():
        print(f"| {k} | {v:.2f} | {v / total:.1%} |")
    print()
    print("| group | seconds | share |")
    print("|---|---|---|")
    for k, v in groups.items():
        print(f"| {k} | {v:.2f} | {v / total:.1%} |")
    print(f"\nCLI printed {cli['lines']:,} lines; "
          f"items with a MATCH line: {cli['matched_items']:,}")


if __name__ == "__main__":
    main()
