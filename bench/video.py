"""Video: vPDQ hashing speed vs Meta's vpdq, and video matching at 10,000 bank videos.

(a) Hashing: the 14 benign sample videos in ../shared/fixtures/video, one core (the process
    is pinned to one CPU; libav decoding threads = 1 on both sides), best of ``--repeat``
    runs per video. Meta's ``vpdq`` Python package (bench-only: it compiles against the
    system FFmpeg development packages, see bench/requirements.txt) runs in the same
    process. Also the plain path (decode every frame, ``fast=False``) and a parity check
    of the frame hashes. Generated clips with colour tags (BT.709, full range) check that
    our forced BT.601 conversion matches vpdq's where PyAV's default would not.
(b) Matching: a synthetic bank of 10,000 videos x 300 frames (random codes), 100 query
    videos made from bank videos (every frame perturbed by 0-8 bits, 10% of frames
    replaced by random codes) plus unrelated ones; video queries/s through
    ``VideoIndex.search_many`` at Meta's default (query >= 80%) and with no query
    threshold (every video sharing a frame: the compilation case), recall vs brute-force
    scoring of every bank video.

    sudo apt-get install -y libavcodec-dev libavformat-dev libswscale-dev libavutil-dev \\
        libavdevice-dev pkg-config cmake g++          # for vpdq only
    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/video.py                   # both parts
    .venv/bin/python bench/video.py --part match --videos 10000 --frames 300 --queries 100
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from fractions import Fraction  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402

from vigil.signals.vpdq import VpdqFrame, hash_video_info  # noqa: E402
from vigil.videomatch import (  # noqa: E402
    PreparedVideo,
    VideoIndex,
    VideoMatch,
    _pair_hits,
    brute_force_score,
    prepare_arrays,
)

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "fixtures" / "video" / "sample-videos"


def pin_one_core() -> int:
    """Run on one CPU so libav and Numba cannot borrow a second core."""
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


# --------------------------------------------------------------------------- (a) hashing


def _vpdq() -> Any | None:
    try:
        import vpdq  # type: ignore[import-not-found]
    except ImportError:
        return None
    return vpdq


def _from_vpdq(features: list[Any]) -> list[VpdqFrame]:
    return [VpdqFrame(f.frame_number, f.quality, f.hex, f.timestamp) for f in features]


def _decisions(videos: dict[str, list[VpdqFrame]]) -> dict[tuple[str, str], tuple[float, float]]:
    names = sorted(videos)
    out = {}
    for q in names:
        for c in names:
            s = brute_force_score(videos[q], videos[c])
            out[q, c] = (s.query_pct, s.compared_pct)
    return out


_BT709 = "colorprim=bt709:transfer=bt709:colormatrix=bt709"


def _decide(score: tuple[float, float], qmin: float, cmin: float) -> bool:
    return score[0] > 0 and score[0] >= qmin and score[1] >= cmin


def _tagged_clips(tmp: Path) -> list[Path]:
    """Generated clips whose colour tags make PyAV's default conversion differ from vpdq's."""
    out = []
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w]
    for name, pix_fmt, opts in (
        ("untagged.mp4", "yuv420p", {}),
        ("bt709.mp4", "yuv420p", {"x264-params": _BT709}),
        ("fullrange.mp4", "yuvj420p", {}),
    ):  # fmt: skip
        path = tmp / name
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=30, options=opts)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            for i in range(90):
                r = (128 + 100 * np.sin(x / 13 + i / 10)).astype(np.uint8)
                g = (128 + 100 * np.cos(y / 9 - i / 7)).astype(np.uint8)
                b = ((x * y + 5 * i) % 256).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(np.stack([r, g, b], -1), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 30)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        out.append(path)
    return out


def bench_hashing(repeat: int) -> list[str]:
    vpdq = _vpdq()
    paths = sorted(VIDEOS.glob("*.mp4"))
    lines = [
        "| video | frames | duration s | vpdq s | vigil s | vigil plain s | vigil frames/s "
        "| x real time | vs vpdq | hashes identical |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    tot = {"frames": 0, "dur": 0.0, "vpdq": 0.0, "ours": 0.0, "plain": 0.0, "same": 0, "n": 0}
    ours_all: dict[str, list[VpdqFrame]] = {}
    ref_all: dict[str, list[VpdqFrame]] = {}
    for path in paths:
        t_ours, got = best(lambda p=path: hash_video_info(p), repeat)
        t_plain, _ = best(lambda p=path: hash_video_info(p, fast=False), repeat)
        info = got.info
        ours_all[path.stem] = got.frames
        t_vpdq = float("nan")
        same = "-"
        if vpdq is not None:
            t_vpdq, feats = best(
                lambda p=path: vpdq.computeHash(str(p), seconds_per_hash=1, thread_count=1),
                repeat,
            )
            ref = _from_vpdq(feats)
            ref_all[path.stem] = ref
            n_same = sum(
                a.pdq == b.pdq and a.frame == b.frame for a, b in zip(got.frames, ref, strict=False)
            )
            same = f"{n_same}/{len(ref)}"
            tot["same"] += n_same
            tot["n"] += len(ref)
            tot["vpdq"] += t_vpdq
        tot["frames"] += info.frames
        tot["dur"] += info.duration
        tot["ours"] += t_ours
        tot["plain"] += t_plain
        lines.append(
            f"| {path.stem} | {info.frames} | {info.duration:.1f} | {t_vpdq:.3f} | {t_ours:.3f} "
            f"| {t_plain:.3f} | {info.frames / t_ours:,.0f} | {info.duration / t_ours:.0f}x "
            f"| {t_vpdq / t_ours:.2f}x | {same} |"
        )
    fr, dur, ours, vp = tot["frames"], tot["dur"], tot["ours"], tot["vpdq"]
    lines.append(
        f"| **all 14** | {fr} | {dur:.1f} | {vp:.2f} | {ours:.2f} | {tot['plain']:.2f} "
        f"| {fr / ours:,.0f} | {dur / ours:.0f}x | **{vp / ours:.2f}x** "
        f"| {tot['same']}/{tot['n']} |"
    )
    lines.append("")
    if vpdq is not None:
        lines.append(
            f"vpdq alone: {fr / vp:,.0f} frames/s, {dur / vp:.0f}x real time; Vigil plain "
            f"path (every frame decoded): {fr / tot['plain']:,.0f} frames/s "
            f"({vp / tot['plain']:.2f}x vpdq)."
        )
        ours_d, ref_d = _decisions(ours_all), _decisions(ref_all)
        flips = sum(
            _decide(a, 80, 0) != _decide(b, 80, 0) or _decide(a, 80, 80) != _decide(b, 80, 80)
            for a, b in ((ours_d[k], ref_d[k]) for k in ours_d)
        )
        gap = max(
            max(abs(a[0] - b[0]), abs(a[1] - b[1]))
            for a, b in zip(ours_d.values(), ref_d.values(), strict=True)
        )
        lines.append(
            f"Match decisions, all {len(ours_d)} ordered pairs at 1 fps (query >= 80%, and "
            f"query & compared >= 80%): {flips} differ; largest percentage gap {gap:.2f} points."
        )
        with tempfile.TemporaryDirectory() as tmp:
            parts = []
            for clip in _tagged_clips(Path(tmp)):
                mine = hash_video_info(clip, interval=0).frames
                theirs = _from_vpdq(vpdq.computeHash(str(clip), seconds_per_hash=0, thread_count=1))
                default = _pyav_default_hashes(clip)
                n = len(theirs)
                same = sum(a.pdq == b.pdq for a, b in zip(mine, theirs, strict=False))
                dflt = sum(a == b.pdq for a, b in zip(default, theirs, strict=False))
                parts.append(
                    f"{clip.stem}: {same}/{n} identical (PyAV's default conversion: {dflt}/{n})"
                )
            lines.append(
                "Generated colour-tagged clips vs vpdq, every frame: " + "; ".join(parts) + "."
            )
    else:
        lines.append("vpdq is not installed: no side-by-side figures (see the module doc).")
    return lines


def _pyav_default_hashes(path: Path) -> list[str]:
    """Frame hashes with PyAV's default RGB conversion (follows the frame's colour tags)."""
    from vigil.signals.pdq_luma import pdq_from_rgb

    with av.open(str(path)) as container:
        return [
            pdq_from_rgb(f.to_ndarray(format="rgb24"))[0].tobytes().hex()
            for f in container.decode(video=0)
        ]


# --------------------------------------------------------------------------- (b) matching


def _flip_bits(codes: np.ndarray, nbits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = codes.copy()
    for k in range(int(nbits.max(initial=0))):
        rows = np.nonzero(nbits > k)[0]
        pos = rng.integers(0, 256, len(rows))  # may repeat a bit: distance <= nbits
        out[rows, pos // 8] ^= (1 << (pos % 8)).astype(np.uint8)
    return out


def _video_arrays(codes: np.ndarray, rng: np.random.Generator) -> PreparedVideo:
    n = len(codes)
    quality = np.where(rng.random(n) < 0.05, 30, 100)
    return prepare_arrays(codes, quality, np.arange(n, dtype=np.float64))


def _brute(query: PreparedVideo, bank: list[PreparedVideo], ids: list[int]) -> list[VideoMatch]:
    """Score the query against every bank video (the pairwise kernel over all of them)."""
    out = []
    for vid, c in zip(ids, bank, strict=True):
        qhit = np.zeros(query.n_unique, bool)
        chit = np.zeros(c.n_unique, bool)
        _pair_hits(query.words, c.words, 31, qhit, chit)
        if qhit.any():
            out.append((vid, int(qhit.sum()), query.n_unique, int(chit.sum()), c.n_unique))
    return out  # type: ignore[return-value]


def bench_matching(n_videos: int, n_frames: int, n_queries: int, brute_queries: int) -> list[str]:
    rng = np.random.default_rng(2026)
    t = time.perf_counter()
    bank = [
        _video_arrays(rng.integers(0, 256, (n_frames, 32), dtype=np.uint8), rng)
        for _ in range(n_videos)
    ]
    ids = [10 * i + 3 for i in range(n_videos)]
    t_gen = time.perf_counter() - t
    index = VideoIndex()
    t = time.perf_counter()
    index.add_many(zip(ids, bank, strict=True))
    index.compact()
    t_build = time.perf_counter() - t
    queries: list[PreparedVideo] = []
    sources: list[int | None] = []
    for k in range(n_queries):
        if k % 10 == 9:  # unrelated video
            codes = rng.integers(0, 256, (n_frames, 32), dtype=np.uint8)
            sources.append(None)
        else:
            src = int(rng.integers(n_videos))
            base = bank[src].words.view(np.uint8).reshape(-1, 32)
            codes = _flip_bits(base, rng.integers(0, 9, len(base)), rng)
            swap = rng.random(len(codes)) < 0.10
            codes[swap] = rng.integers(0, 256, (int(swap.sum()), 32), dtype=np.uint8)
            sources.append(ids[src])
        queries.append(_video_arrays(codes, rng))
    lines = [
        f"Bank: {n_videos:,} videos x {n_frames} frames = {len(index.index):,} unique indexed "
        f"frame hashes (5% of frames below quality 50); generated in {t_gen:.1f} s, index built "
        f"in {t_build:.1f} s (layout {index.index.layout}), "
        f"{index.index.nbytes() / 2**20:,.0f} MiB in the Hamming index.",
        "",
        "| mode | query videos | s | video queries/s | frame lookups | matches "
        "| recall vs brute force |",
        "|---|---|---|---|---|---|---|",
    ]
    # Numba compile outside the timing
    index.search_many(queries[:2])
    index.search_many(queries[:2], min_query_pct=0.0)
    brute_sets: list[set] = []
    t = time.perf_counter()
    for q in queries[:brute_queries]:
        brute_sets.append(set(_brute(q, bank, ids)))  # type: ignore[arg-type]
    t_brute = time.perf_counter() - t
    for label, qmin in (
        ("Meta default: query >= 80%", 80.0),
        ("no threshold (every shared frame)", 0.0),
    ):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            got = index.search_many(queries, min_query_pct=qmin)
            runs.append(time.perf_counter() - t)
        dt = min(runs)
        from vigil.videomatch import _probe_rows

        lookups = sum(len(_probe_rows(q.n_unique, qmin)) for q in queries)  # type: ignore[arg-type]
        found = want = 0
        for q_res, b in zip(got[:brute_queries], brute_sets, strict=True):
            expect = {x for x in b if x[1] * 100.0 / x[2] >= qmin}
            have = {
                (m.video_id, m.score.query_matched, m.score.query_frames,
                 m.score.compared_matched, m.score.compared_frames)
                for m in q_res
            }  # fmt: skip
            assert have == expect, (label, have ^ expect)
            found += len(have & expect)
            want += len(expect)
        n_match = sum(len(r) for r in got)
        lines.append(
            f"| {label} | {len(queries)} | {dt:.2f} | **{len(queries) / dt:,.1f}** | {lookups:,} "
            f"| {n_match} | {found}/{want} (exact scores) |"
        )
    pairs = list(zip(got, sources, strict=True))
    hits = sum(1 for r, s in pairs if s is not None and any(m.video_id == s for m in r))
    stray = sum(1 for r, s in pairs if s is None and r)
    lines += [
        "",
        f"Brute force (pairwise kernel over all {n_videos:,} videos): "
        f"{t_brute / brute_queries:.2f} s per query video ({brute_queries} queries checked). "
        f"Source video found for {hits}/{sum(s is not None for s in sources)} perturbed "
        f"queries; {stray} unrelated queries matched anything.",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["hash", "match", "all"], default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--videos", type=int, default=10_000)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--brute-queries", type=int, default=100)
    args = ap.parse_args()
    cpu = pin_one_core()
    print(f"# pinned to CPU {cpu}; PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})")
    if args.part in ("hash", "all"):
        print("\n## (a) hashing, one hash per second\n")
        print("\n".join(bench_hashing(args.repeat)), flush=True)
    if args.part in ("match", "all"):
        print("\n## (b) matching\n")
        print("\n".join(bench_matching(args.videos, args.frames, args.queries, args.brute_queries)))


if __name__ == "__main__":
    main()
