"""Exact radius search at 1M / 10M codes: Vigil's HammingIndex vs its anchors, one core.

Anchors, measured in the same process on the same data (each freed before the next):
python-threatexchange ``PDQIndex`` (faiss multi-hash, the tool agencies use today), faiss
``IndexBinaryFlat`` (range_search), and Vigil's own batched Numba scan (the floor an index
must beat). Truth for recall is the Numba scan, which the test suite checks against the
NumPy reference. Only generated random codes are used; nothing from a real hash list.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/matching.py --sizes 1M,10M --kinds random,clustered
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from vigil.index import HammingIndex, SearchResult  # noqa: E402
from vigil.index import _kernels as kernels  # noqa: E402
from vigil.index._bits import as_words  # noqa: E402

CHUNK = 500_000


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def flip_rows(codes: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip each bit of row i with probability p[i] (vectorised, chunked to bound memory)."""
    out = codes.copy()
    for s in range(0, len(codes), CHUNK):
        e = min(len(codes), s + CHUNK)
        thresh = np.round(p[s:e] * 65536).astype(np.uint32)[:, None]
        mask = rng.integers(0, 65536, size=(e - s, 256), dtype=np.uint32) < thresh
        out[s:e] ^= np.packbits(mask, axis=1)
    return out


def flip_exact(codes: np.ndarray, dist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip exactly dist[i] distinct bits of row i (used for planted near-duplicates)."""
    out = codes.copy()
    for s in range(0, len(codes), CHUNK):
        e = min(len(codes), s + CHUNK)
        order = np.argsort(rng.random((e - s, 256), dtype=np.float32), axis=1)
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(256)[None, :], axis=1)
        out[s:e] ^= np.packbits(ranks < dist[s:e, None], axis=1)
    return out


def make_bank(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random codes (or skewed clusters) with 5% planted near-duplicates at distance 0-31."""
    if kind == "random":
        codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    else:
        # skewed bits (p(1)=0.8 on 64 positions, 0.2 on 32) and clusters of ~100 codes
        # spread 0-40 bits around their centre, like near-duplicate families in real banks
        p_one = np.full(256, 0.5)
        pos = rng.permutation(256)
        p_one[pos[:64]], p_one[pos[64:96]] = 0.8, 0.2
        n_centres = max(1, n // 100)
        centres = np.packbits(rng.random((n_centres, 256)) < p_one, axis=1)
        codes = centres[rng.integers(0, n_centres, size=n)]
        codes = flip_rows(codes, rng.integers(0, 41, size=n) / 256.0, rng)
    planted = rng.choice(n, size=n // 20, replace=False)
    sources = rng.integers(0, n, size=len(planted))
    codes[planted] = flip_exact(codes[sources], rng.integers(0, 32, size=len(planted)), rng)
    return codes


def make_queries(bank: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Half near-duplicates (0-31 bits) of stored codes, half random codes."""
    q = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    half = n // 2
    q[:half] = flip_exact(
        bank[rng.integers(0, len(bank), size=half)], rng.integers(0, 32, half), rng
    )
    return q[rng.permutation(n)]


def hit_set(qidx: np.ndarray, ids: np.ndarray, dist: np.ndarray) -> set[tuple[int, int, int]]:
    return set(zip(qidx.tolist(), ids.tolist(), dist.tolist(), strict=True))


def result_set(res: SearchResult) -> set[tuple[int, int, int]]:
    q = np.repeat(np.arange(len(res)), np.diff(res.offsets))
    return hit_set(q, res.ids, res.distances)


def recall(found: set[tuple[int, int, int]], truth: set[tuple[int, int, int]]) -> str:
    """Recall, with a '!' when anything not in the truth was returned (exactness check)."""
    r = len(found & truth) / max(1, len(truth))
    return f"{r:.4f}" + ("" if found <= truth else " !extra")


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_vigil(bank: np.ndarray, queries: np.ndarray, r: int, truth: set, row: dict) -> None:
    n = len(bank)
    ids = np.arange(n, dtype=np.int64)
    before = rss_bytes()
    index = HammingIndex()

    def build() -> None:
        index.add(bank, ids)
        index.compact()

    row["build_s"], _ = timed(build)
    row["layout"] = str(index.layout)
    index.search(queries[:20], r)  # compile / warm
    dt, res = timed(lambda: index.search(queries, r), repeat=3)
    row["qps"] = len(queries) / dt
    row["recall"] = recall(result_set(res), truth)  # type: ignore[arg-type]
    row["bytes_per_code"] = index.nbytes() / n
    row["rss_gb"] = (rss_bytes() - before) / 1e9
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        row["save_s"], _ = timed(lambda: index.save(tmp / "ix"))
        index = None  # free it before loading the saved copy
        gc.collect()
        row["load_s"], loaded = timed(lambda: HammingIndex.load(tmp / "ix", mmap=True))
        t1, _ = timed(lambda: loaded.search(queries, r))  # type: ignore[attr-defined]
        row["first_batch_after_load_s"] = t1
        dt, res = timed(lambda: loaded.search(queries, r), repeat=3)  # type: ignore[attr-defined]
        row["qps_mmap"] = len(queries) / dt
        row["recall_mmap"] = recall(result_set(res), truth)  # type: ignore[arg-type]
        loaded = res = None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    gc.collect()


def bench_pdqindex(bank: np.ndarray, queries: np.ndarray, r: int, truth: set, row: dict) -> None:
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    hexes = [c.tobytes().hex() for c in bank]
    qhex = [c.tobytes().hex() for c in queries]
    before = rss_bytes()
    t = time.perf_counter()
    index = PDQIndex(entries=((h, i) for i, h in enumerate(hexes)))
    row["build_s"] = time.perf_counter() - t
    del hexes
    gc.collect()
    row["rss_gb"] = (rss_bytes() - before) / 1e9
    row["bytes_per_code"] = (rss_bytes() - before) / len(bank)
    inner = index.index  # PDQMultiHashIndex: the batch entry point under PDQIndex.query
    inner.search_with_distance_in_result(qhex[:20], r)
    dt, out = timed(lambda: inner.search_with_distance_in_result(qhex, r))
    row["qps"] = len(queries) / dt
    found = set()
    for qi, h in enumerate(qhex):
        for local_id, _, d in out[h]:  # type: ignore[index]
            found.add((qi, int(index.local_id_to_entry[local_id][1]), int(d)))
    row["recall"] = recall(found, truth)
    one = qhex[:100]
    dt1, _ = timed(lambda: [index.query(h) for h in one])
    row["qps_single"] = len(one) / dt1
    index = inner = out = None
    gc.collect()


def bench_faiss_flat(bank: np.ndarray, queries: np.ndarray, r: int, truth: set, row: dict) -> None:
    import faiss

    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    index = faiss.IndexBinaryFlat(256)
    index.add(bank)
    row["build_s"] = time.perf_counter() - t
    row["bytes_per_code"] = 32.0  # codes only; labels are row numbers
    # faiss binary range_search returns distances strictly below the radius: pass r + 1.
    dt, out = timed(lambda: index.range_search(queries, r + 1))
    lims, dist, labels = out  # type: ignore[misc]
    row["qps"] = len(queries) / dt
    q = np.repeat(np.arange(len(queries)), np.diff(lims).astype(np.int64))
    row["recall"] = recall(hit_set(q, labels, dist), truth)
    index = out = None
    gc.collect()


def bench_scan(bank: np.ndarray, queries: np.ndarray, r: int, row: dict) -> set:
    alive = np.ones(len(bank), np.uint8)
    words, qw = as_words(bank), as_words(queries)
    kernels.scan(words, alive, qw[:2], r)
    dt, out = timed(lambda: kernels.scan(words, alive, qw, r))
    row["qps"] = len(queries) / dt
    row["build_s"] = 0.0
    row["bytes_per_code"] = 32.0
    row["recall"] = "1 (truth)"
    qidx, rows, dist = out  # type: ignore[misc]
    return hit_set(qidx, rows, dist)


def ratio(rows: dict[str, dict], row: dict, ref: str) -> str:
    """Speed of ``row`` relative to the ``ref`` engine, or '-' if it was not measured."""
    return f"{row['qps'] / rows[ref]['qps']:.1f}x" if ref in rows else "-"


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * mult)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1M,10M", help="bank sizes, e.g. 1M,10M")
    ap.add_argument("--kinds", default="random,clustered")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--radius", type=int, default=31)
    ap.add_argument("--anchors", default="pdqindex,faiss_flat", help="comma list or 'none'")
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    anchors = [a for a in args.anchors.split(",") if a and a != "none"]
    r = args.radius
    print(f"# one core; radius {r}; batches of {args.queries} queries; anchors {anchors}")
    head = (
        "| kind | size | engine | q/s | vs PDQIndex | vs faiss flat | vs scan | build s "
        "| B/code | recall |"
    )
    lines = [head, "|" + "---|" * 10]
    extras = []
    for kind in args.kinds.split(","):
        for size in (parse_size(s) for s in args.sizes.split(",")):
            rng = np.random.default_rng(args.seed)
            t = time.perf_counter()
            bank = make_bank(kind, size, rng)
            queries = make_queries(bank, args.queries, rng)
            print(f"\n## {kind} {size:,} codes (generated in {time.perf_counter() - t:.1f} s)")
            rows: dict[str, dict] = {"scan": {}}
            truth = bench_scan(bank, queries, r, rows["scan"])
            print(f"truth: {len(truth)} hits; scan {rows['scan']['qps']:.0f} q/s", flush=True)
            rows["vigil"] = {}
            bench_vigil(bank, queries, r, truth, rows["vigil"])
            print("vigil", rows["vigil"], flush=True)
            for name in anchors:
                rows[name] = {}
                fn = {"pdqindex": bench_pdqindex, "faiss_flat": bench_faiss_flat}[name]
                fn(bank, queries, r, truth, rows[name])
                print(name, rows[name], flush=True)
            for name, row in rows.items():
                lines.append(
                    f"| {kind} | {size:,} | {name} | {row['qps']:,.0f} | "
                    f"{ratio(rows, row, 'pdqindex')} | {ratio(rows, row, 'faiss_flat')} | "
                    f"{ratio(rows, row, 'scan')} | {row['build_s']:.1f} | "
                    f"{row['bytes_per_code']:.0f} | {row['recall']} |"
                )
            v = rows["vigil"]
            extras.append(
                f"| {kind} | {size:,} | {v['layout']} | {v['save_s']:.2f} | {v['load_s']:.3f} | "
                f"{v['first_batch_after_load_s']:.2f} | {v['qps_mmap']:,.0f} | {v['recall_mmap']} |"
                + (f" {rows['pdqindex']['qps_single']:,.0f} |" if "pdqindex" in rows else " - |")
            )
            del bank, queries, truth
            gc.collect()
    print("\n" + "\n".join(lines))
    print(
        "\n| kind | size | Vigil layout | save s | load s (mmap) | first batch after load s | "
        "q/s mmapped | recall mmapped | PDQIndex.query one by one q/s |"
    )
    print("|" + "---|" * 9)
    print("\n".join(extras))


if __name__ == "__main__":
    main()
