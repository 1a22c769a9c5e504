"""The receiver side of a first mirror sync alone, without HTTP or a running origin.

Why: the receiver's work (decode, verify, convert, write) dominated the 1M federation sync
(bench/federation.py); timing it in-process is cheap and repeatable, and isolates it from
the origin competing for the same cores.

Two modes:

* ``apply`` — ``Banks.apply`` of 10,000-record pages of new PDQ entries into a mirror bank
  (the store writes alone), per-page time as the bank grows; ``--no-analyze`` disables the
  ANALYZE-on-growth of ``vigil.banks`` (PostgreSQL) to compare.
* ``sync`` (default) — a whole ``PeerSyncer.run`` (verify + convert + apply + checkpoint,
  with its fetch-ahead thread) against an in-memory peer that serves pre-built, signed,
  gzip-compressed feed pages from ``bench/out/mirror-pages-N`` (built once and reused:
  80% PDQ, 20% MD5, category us:1/us:2, as bench/federation.py's origin). Decompressing a
  page is counted (httpx does it too); the socket is not.

Each run is a fresh process with a fresh store (a new SQLite file or PostgreSQL schema),
``--repeat`` times (default 3), one after the other; the feed pages are built before the
first run. Totals are reported as min / median / max with the load average.

Run: .venv/bin/python -m bench.mirror_apply [--entries 1000000] [--mode sync|apply]
     [--url sqlite|postgresql+psycopg://postgres@127.0.0.1:5432/test] [--no-analyze]
     [--page-size 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
import vigil.banks.bank as vb
import vigil.store.dialects as vdialects
from bench._spread import SPREAD_NOTE, Runs, add_repeat_argument, spread_cell
from vigil.banks import Banks
from vigil.banks.entry import EntryRecord, Labels
from vigil.store import make_engine, migrate

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OUT = Path(__file__).resolve().parent / "out"
ORIGIN, LOCAL, PEER, BANK = "SG-SPF", "HK-POL", "sg", "bench-fed"
SEED = 21


def _hexes(a: np.ndarray) -> list[str]:
    h = a.tobytes().hex()
    w = a.shape[1] * 2
    return [h[i:i + w] for i in range(0, len(h), w)]


def build_pages(entries: int, page_size: int) -> Path:
    """Signed feed pages of ``entries`` adds, as the origin serves them (gzip JSON), once."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vigil.exchange.records import (
        SIGN_EVERY,
        Descriptor,
        genesis,
        make_body,
        record_hash,
        sign_checkpoint,
    )

    where = OUT / f"mirror-pages-{entries}-p{page_size}"
    if (where / "done").exists():
        return where
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    key = Ed25519PrivateKey.generate()  # a throwaway origin key (bench data only)
    pub = key.public_key().public_bytes_raw().hex()
    d = Descriptor(ORIGIN, BANK, ("category",), False)
    rng = np.random.default_rng(SEED)
    prev, seq = genesis(d), 0
    at = "2026-11-30T00:00:00+00:00"
    for p in range(0, entries, page_size):
        n = min(page_size, entries - p)
        md5 = rng.random(n) < 0.2
        pdq = _hexes(rng.integers(0, 256, (n, 32), dtype=np.uint8))
        h16 = _hexes(rng.integers(0, 256, (n, 16), dtype=np.uint8))
        cat = rng.integers(1, 3, n)
        recs = []
        for i in range(n):
            seq += 1
            body = make_body(seq, prev, "add", "md5" if md5[i] else "pdq",
                             h16[i] if md5[i] else pdq[i], None if md5[i] else 100,
                             {"category": ["us", str(cat[i])]}, at)
            h = record_hash(body)
            sig = sign_checkpoint(key, d, seq, h) \
                if seq % SIGN_EVERY == 0 or i == n - 1 else None
            recs.append([body, h, sig])
            prev = h
        doc = {"feed": d.text(), "head": entries, "records": recs}
        (where / f"{p // page_size:06d}.json.gz").write_bytes(
            gzip.compress(json.dumps(doc).encode(), 1))
    (where / "meta.json").write_text(json.dumps({"descriptor": d.as_dict(), "public_key": pub,
                                                 "entries": entries}))
    (where / "done").write_text("ok")
    return where


class _Response:
    """Just what the syncer reads of an ``httpx.Response``."""

    def __init__(self, status: int, content: bytes) -> None:
        self.status_code, self.content = status, content
        self.text = content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


class FakePeer:
    """Stands in for ``vigil.exchange.sync._Client``: pages from ``build_pages`` files."""

    pages: Path
    page_size: int

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.meta = json.loads((self.pages / "meta.json").read_text())

    def get(self, path: str, **params: Any) -> _Response:
        if path == "/v1/feeds":
            return _Response(200, json.dumps({"feeds": [
                {"bank": BANK, "descriptor": self.meta["descriptor"],
                 "head": self.meta["entries"]}]}).encode())
        if path == "/v1/opinions":
            return _Response(200, b'{"opinions": []}')
        return _Response(404, b'{"detail": "not here"}')

    def page(self, bank: str, after: int, limit: int) -> _Response:
        if after % self.page_size or limit != self.page_size:
            raise AssertionError("the fake peer serves whole pre-built pages only")
        f = self.pages / f"{after // self.page_size:06d}.json.gz"
        if not f.exists():
            d = self.meta["descriptor"]
            return _Response(200, json.dumps({"feed": d, "head": self.meta["entries"],
                                              "records": []}).encode())
        return _Response(200, gzip.decompress(f.read_bytes()))

    def close(self) -> None:
        pass


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_sync(eng: Any, home: Path, entries: int, page_size: int) -> dict[str, float]:
    import vigil.exchange.sync as S
    from vigil.exchange.peers import _save_token, trust
    from vigil.node import init_node
    from vigil.store.models import utcnow
    from vigil.store.models_exchange import Peer

    pages = build_pages(entries, page_size)
    meta = json.loads((pages / "meta.json").read_text())
    init_node(eng, home, LOCAL, "bench receiver", "HK")
    trust(eng, ORIGIN, meta["public_key"])
    _save_token(home, PEER, "unused")
    from sqlalchemy.orm import Session
    with Session(eng) as s, s.begin():
        s.add(Peer(name=PEER, agency=ORIGIN, url="http://fake", created_at=utcnow(),
                   opinions_after=0))
    FakePeer.pages, FakePeer.page_size = pages, page_size
    S._Client = FakePeer  # type: ignore[misc,assignment]
    samples: list[tuple[float, int, float]] = []
    done = [0]
    stop = threading.Event()
    t0 = time.perf_counter()

    def sampler() -> None:
        while not stop.wait(0.5):
            samples.append((time.perf_counter() - t0, done[0], _rss_mb()))

    def progress(fs: Any) -> None:
        done[0] = fs.after - fs.before
        if done[0] % 100_000 < page_size:
            print(f"| {done[0]:,} | {time.perf_counter() - t0:.1f} | {_rss_mb():.0f} |",
                  flush=True)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    print(f"load average {os.getloadavg()[0]:.2f}; RSS before {_rss_mb():.0f} MB")
    print("| records | s | RSS MB |\n|---|---|---|")
    res = S.PeerSyncer(eng, home, PEER, page_size=page_size, progress=progress).run()
    total = time.perf_counter() - t0
    stop.set()
    if not res.ok:
        raise SystemExit(f"sync failed: {res.error or [f.error for f in res.feeds]}")
    n = sum(f.records for f in res.feeds)
    print(f"sync total {total:.1f} s, {n / total:,.0f} records/s, peak RSS {_hwm_mb():.0f} MB; "
          f"load average {os.getloadavg()[0]:.2f}")
    return {"s": total, "records": n, "peak_rss_mb": _hwm_mb()}


def run_apply(eng: Any, entries: int, page_size: int) -> dict[str, float]:
    b = Banks(eng, user="bench")
    b.create("mirror", LOCAL)
    lab, empty = Labels(category=("us", "1")), {}
    rng = np.random.default_rng(1)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("| entries so far | page s |\n|---|---|")
    t = time.perf_counter()
    for p in range(0, entries, page_size):
        recs = [EntryRecord("pdq", h, lab, 90, source_id=f"SG-SPF/b#{i}", extra=empty)
                for i, h in enumerate(_hexes(rng.integers(0, 256, (page_size, 32), np.uint8)),
                                      start=p)]
        t1 = time.perf_counter()
        b.apply("mirror", recs, mirror=True)
        if p % 100_000 == 0 or p + page_size >= entries:
            print(f"| {p:,} | {time.perf_counter() - t1:.2f} |", flush=True)
    total = time.perf_counter() - t
    print(f"total {total:.1f} s, {entries / total:,.0f} entries/s; "
          f"load average {os.getloadavg()[0]:.2f}")
    return {"s": total, "records": entries, "peak_rss_mb": _hwm_mb()}


def one_run(opts: dict[str, Any]) -> dict[str, float]:
    """One run in a fresh process, into a fresh store; its totals."""
    if opts["unsorted"]:
        vb.SORTED_INSERTS = False
    if opts["no_analyze"]:
        vdialects.ANALYZE_MIN_ROWS = 10**12
    home = OUT / f"mirror-apply-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    admin = schema = None
    if opts["url"] == "sqlite":
        eng = make_engine(f"sqlite:///{home / 'vigil.db'}")
    else:
        base = make_url(opts["url"])
        schema = "bench_apply_" + uuid.uuid4().hex[:8]
        admin = make_engine(base)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        eng = make_engine(base.update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        migrate(eng)
        if opts["drop_index"]:
            with eng.begin() as c:
                c.execute(text(f"DROP INDEX {opts['drop_index']}"))
        if opts["mode"] == "sync":
            return run_sync(eng, home, opts["entries"], opts["page_size"])
        return run_apply(eng, opts["entries"], opts["page_size"])
    finally:
        eng.dispose()
        if admin is not None:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=300_000)
    ap.add_argument("--mode", choices=("sync", "apply"), default="sync")
    ap.add_argument("--url", default="sqlite", help="'sqlite' (a fresh file) or a PG URL")
    ap.add_argument("--page-size", type=int, default=10_000)
    ap.add_argument("--no-analyze", action="store_true")
    ap.add_argument("--drop-index", help=argparse.SUPPRESS)  # experiment: index cost
    ap.add_argument("--unsorted", action="store_true", help=argparse.SUPPRESS)
    add_repeat_argument(ap)
    args = ap.parse_args()
    if args.mode == "sync":
        build_pages(args.entries, args.page_size)  # once, before any timed run
    runs = Runs()
    got = [runs.call(one_run, vars(args)) for _ in range(args.repeat)]
    secs = [r["s"] for r in got]
    n = got[0]["records"]
    print(f"\n{args.mode}, {args.url.split('@')[-1]}, {n:,.0f} records; {args.repeat} runs; "
          f"{SPREAD_NOTE}")
    print("| seconds | records/s | peak RSS MB |\n|---|---|---|")
    print(f"| {spread_cell(secs, '{:.1f}')} | {spread_cell([n / x for x in secs], '{:,.0f}')} "
          f"| {spread_cell([r['peak_rss_mb'] for r in got], '{:.0f}')} |")
    print(runs.load_line())


if __name__ == "__main__":
    main()
