"""The reviewer workspace (issue 20): opening a large scan, and the next item's latency.

Anchors (issue 20): opening a scan of 100k items takes <= 2 s; the next item appears
within 100 ms at p95 for a queue of 10,000 groups, derivatives made on demand.

The scan database is synthetic and built here (``--items N``, ``--groups G``: G groups of
two items, the rest single unknown items, plus 5% known items with a match): file rows as
a finished ``vigil scan`` writes them, and a stored thumbnail for every grouped item, made
from the benign corpus photos (cycled; each item has its own row, so every derivative is
made on demand: the cache never holds it before it is asked for).

Measured, each run in a fresh process (``bench._spread``):

``open``  ``ReviewSession`` over the folder: the finished-scan check, the review tables,
          the queue (its order written into SQLite temporary tables,
          ``vigil.review.sqlqueue``) — what ``vigil review`` does before serving; the
          reference is the same with the queue read whole into Python objects
          (``vigil.review.queue.build_queue``, how a scan was opened before);
``next``  a real review app on loopback (uvicorn in this process, httpx): one queue step
          = POST a decision for the whole group, follow the redirect to the next group's
          page, GET the focused picture and each member's picture (strong blur, made on
          demand); wall time per step, p50 / p95 over ``--steps`` steps.

The reference for ``next`` is the same step with the derivative cache already warm
(pictures made before): the gap is the cost of making derivatives on demand.

Run: .venv/bin/python -m bench.review [--items 100000 --groups 10000 --steps 300]
Never prints hash values.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._spread import Runs, add_repeat_argument, spread_cell

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus" / "bsds500"


def _thumbs(n: int) -> list[bytes]:
    from PIL import Image

    from vigil.triage.thumbs import make_thumbnail

    out = []
    for p in sorted(CORPUS.rglob("*.jpg"))[:n]:
        with Image.open(p) as im:
            out.append(make_thumbnail(im.convert("RGB")))
    return out


def build(folder: Path, items: int, groups: int) -> None:
    """A finished scan's database with ``items`` unknown items (see the module)."""
    from vigil.triage.scandb import GroupRow, MatchRow, ScanDB

    folder.mkdir(parents=True, exist_ok=True)
    db = ScanDB(folder / "scan.db")
    db.set_meta("started_at", time.time() - 60)
    known = items // 20
    total = items + known
    shas = [hashlib.sha256(f"item{i}".encode()).hexdigest() for i in range(total)]
    db.add_pending([(f"E01/DCIM/{i // 1000:03d}/IMG_{i:06d}.jpg", None, 1000, None)
                    for i in range(total)])
    thumbs = _thumbs(64)
    rows = []
    for i, sha in enumerate(shas):
        rows.append({"path": f"E01/DCIM/{i // 1000:03d}/IMG_{i:06d}.jpg", "status": "done",
                     "size": 1000, "kind": "image", "format": "JPEG", "width": 481,
                     "height": 321, "md5": sha[:32], "sha1": sha[:40], "sha256": sha,
                     "pdq": sha, "pdq_quality": 100, "exif": {}, "seconds": 0.01})
    grouped = 2 * groups
    db.record(rows, [(shas[i], thumbs[i % len(thumbs)]) for i in range(grouped)])
    db.replace_matches([MatchRow(shas[items + k], "known", "SG", k + 1, "md5", ["md5"],
                                 "original", 0, "us", "1", None, "unknown", [])
                        for k in range(known)])
    db.replace_groups([GroupRow(g + 1, g + 1, 2, 2.0, None, {}, [(shas[2 * g], 0),
                                                                 (shas[2 * g + 1], 8)])
                       for g in range(groups)])
    db.set_meta("finished_at", time.time())
    db.close()


def _engine(home: Path) -> Any:
    from vigil.store import make_engine, migrate

    eng = make_engine(f"sqlite:///{home / 'vigil.db'}")
    migrate(eng)
    return eng


def run_open(folder: str, home: str) -> dict[str, float]:
    """Seconds to open the scan for review (a fresh process)."""
    from vigil.review.ledger import Ledger
    from vigil.review.service import ReviewSession

    eng = _engine(Path(home))
    t = time.perf_counter()
    rs = ReviewSession(Path(folder), "us", Ledger(eng))
    secs = time.perf_counter() - t
    n_items, n_units = len(rs.queue.items), len(rs.queue.units)
    rs.close()
    return {"seconds": secs, "items": n_items, "units": n_units}


def run_open_plain(folder: str, home: str) -> dict[str, float]:
    """The reference: the same opening with the queue read whole into Python objects."""
    from vigil.review.queue import build_queue
    from vigil.review.scan import check_scan_folder
    from vigil.review.store import ReviewStore

    _engine(Path(home))
    t = time.perf_counter()
    store = ReviewStore(check_scan_folder(Path(folder)))
    q = build_queue(store.conn)
    secs = time.perf_counter() - t
    n_items, n_units = len(q.items), len(q.units)
    store.close()
    return {"seconds": secs, "items": n_items, "units": n_units}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_next(folder: str, home: str, steps: int, warm: bool) -> dict[str, Any]:
    """Per-step wall times over a real app on loopback (a fresh process); the scan folder
    is copied so every run starts from the same undecided queue."""
    import httpx
    import uvicorn

    from vigil.review.web import review_app

    work = Path(tempfile.mkdtemp(prefix="review-bench-"))
    try:
        shutil.copy(Path(folder) / "scan.db", work / "scan.db")
        eng = _engine(Path(home))
        app = review_app(work, eng, "bench")
        rs = app.state.review
        if warm:
            for u in rs.queue.units[:steps + 1]:
                for i in u.items:
                    rs.image("bench", i, 3, None)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        while not server.started:
            time.sleep(0.02)
        times: list[float] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            html = c.get("/unit/0").text
            marker = 'name="review-token" content="'
            start = html.index(marker) + len(marker)
            token = html[start:html.index('"', start)]
            for pos in range(steps):
                first = rs.queue.units[pos].items[0]
                t = time.perf_counter()
                r = c.post("/decide", data={"token": token, "item": str(first),
                                            "category": "1", "scope": "group"},
                           follow_redirects=True)
                assert r.status_code == 200 and r.url.path == f"/unit/{pos + 1}", r.url
                for i in rs.queue.units[pos + 1].items:
                    img = c.get(f"/item/{i}/image?level=3")
                    assert img.status_code == 200
                times.append(time.perf_counter() - t)
        server.should_exit = True
        th.join(timeout=10)
        times.sort()
        return {"p50": statistics.median(times) * 1000,
                "p95": times[int(0.95 * (len(times) - 1))] * 1000,
                "max": times[-1] * 1000}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=300)
    add_repeat_argument(ap)
    args = ap.parse_args()
    if not CORPUS.is_dir():
        sys.exit("bench.review needs ../shared/corpus")
    out = Path(__file__).resolve().parent / "out" / f"review-{args.items}-{args.groups}"
    home = out / "home"
    if not (out / "scan" / "scan.db").exists():
        t = time.perf_counter()
        shutil.rmtree(out, ignore_errors=True)
        home.mkdir(parents=True)
        build(out / "scan", args.items, args.groups)
        print(f"built the synthetic scan in {time.perf_counter() - t:.1f} s "
              f"({(out / 'scan' / 'scan.db').stat().st_size / 2**20:.0f} MiB)")
    home.mkdir(parents=True, exist_ok=True)
    runs = Runs()
    opens, plains = [], []
    for _ in range(args.repeat):  # alternated, so a slow spell hits both
        opens.append(runs.call(run_open, str(out / "scan"), str(home)))
        plains.append(runs.call(run_open_plain, str(out / "scan"), str(home)))
    cold = [runs.call(run_next, str(out / "scan"), str(home), args.steps, False)
            for _ in range(args.repeat)]
    warm = [runs.call(run_next, str(out / "scan"), str(home), args.steps, True)
            for _ in range(args.repeat)]
    o = opens[0]
    print(f"\nbench.review: {int(o['items']):,} unknown items in {int(o['units']):,} queue "
          f"steps ({args.groups:,} groups), {args.steps} steps per run, "
          f"{args.repeat} runs (min / median / max)\n")
    print("| measure | figure | anchor / reference | ratio | target | verdict |")
    print("|---|---|---|---|---|---|")
    secs = [r["seconds"] for r in opens]
    plain = [r["seconds"] for r in plains]
    assert all((r["items"], r["units"]) == (o["items"], o["units"])
               for r, o in zip(plains, opens, strict=True))
    print(f"| open the scan for review | {spread_cell(secs, '{:.2f}', ' s')} | "
          f"issue anchor 2 s | {max(secs) / 2.0:.2f}× of the anchor (worst run) | ≤ 2 s | "
          f"{'met' if max(secs) <= 2.0 else 'missed'} |")
    print(f"| open, the queue read whole (reference) | {spread_cell(plain, '{:.2f}', ' s')} | "
          f"SQL queue / whole queue: {statistics.median(secs) / statistics.median(plain):.2f}× "
          "(median) | | | |")
    p95 = [r["p95"] for r in cold]
    p95w = [r["p95"] for r in warm]
    print(f"| next item, derivatives on demand: p95 | {spread_cell(p95, '{:.1f}', ' ms')} | "
          f"warm cache p95 {spread_cell(p95w, '{:.1f}', ' ms')} | "
          f"{statistics.median(p95) / statistics.median(p95w):.2f}× of warm (median) | "
          f"≤ 100 ms | {'met' if max(p95) <= 100 else 'missed'} |")
    print(f"| next item, derivatives on demand: p50 | "
          f"{spread_cell([r['p50'] for r in cold], '{:.1f}', ' ms')} | warm p50 "
          f"{spread_cell([r['p50'] for r in warm], '{:.1f}', ' ms')} | | | |")
    print(f"\n{runs.load_line()}")
    print(f"commit {os.popen('git rev-parse --short HEAD').read().strip()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
