"""Video-to-video matching on vPDQ frame hashes, exact, scaled by the Hamming index.

Semantics (Meta's vpdq / python-threatexchange, so scores mean the same everywhere)
----------------------------------------------------------------------------------
A video is its list of sampled frames (:class:`vigil.signals.vpdq.VpdqFrame`). Frames
below ``quality`` (50) are dropped, then frames with identical hashes are counted once.
Between a query video Q and a compared (bank) video C:

* ``query_pct``: share of Q's unique hashes within ``distance`` (31, inclusive) of some
  hash of C;
* ``compared_pct``: share of C's unique hashes within ``distance`` of some hash of Q.

Meta's defaults call it a match when ``query_pct >= 80`` (and ``compared_pct >= 0``).
Both thresholds are parameters: a compilation that contains a known clip has a low
``query_pct`` but a high ``compared_pct``, so investigators may want that side too.
(Meta's C++ matcher compares ``distance < 31``; python-threatexchange, newer, uses
``<= 31`` like every PDQ matcher, and so do we.)

How it scales
-------------
Every unique frame hash of every bank video goes into one
:class:`vigil.index.HammingIndex` under an id that encodes (video slot, unique-frame
number) as ``slot << 20 | frame``. A query then needs frame lookups only to find
*candidate* videos; scores are computed exactly for each candidate by comparing its
unique hashes with the query's (a few hundred by a few hundred popcounts). When
``min_query_pct > 0`` not every query frame needs a lookup: a video reaching
``k`` matched query frames out of ``m`` must be hit by at least one of any
``m - k + 1`` query frames (pigeonhole), so only that many evenly spaced frames are
searched. At the default 80% that is a fifth of the frames, and the result is still
exactly the set of videos brute-force scoring reports, with the same percentages
(tests compare with :func:`brute_force_search` on random and clustered data).

Matched time ranges: consecutive matched frames (in frame order, quality-passing frames
only) are merged while the gap between their timestamps stays within 1.5 sampling
intervals; a quality-passing frame that does not match ends a range. A range is
``(first matched second, last matched second)``: the material extends up to one sampling
interval past its end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.index import HammingIndex
from vigil.index._kernels import pair_hits
from vigil.index.arrays import Codes, Flags, Ids, Positions, Words
from vigil.signals.vpdq import VpdqFrame

__all__ = [
    "DISTANCE",
    "MIN_COMPARED_PCT",
    "MIN_QUERY_PCT",
    "QUALITY",
    "PreparedVideo",
    "VideoIndex",
    "VideoMatch",
    "VideoScore",
    "brute_force_score",
    "brute_force_search",
    "merge_ranges",
    "prepare",
    "prepare_arrays",
]

#: frame distance threshold (inclusive), quality floor and match percentages: Meta's defaults
DISTANCE = 31
QUALITY = 50
MIN_QUERY_PCT = 80.0
MIN_COMPARED_PCT = 0.0

_FRAME_BITS = 20  # unique frames per video < 2**20 (12 days at one frame per second)
_FRAME_MASK = (1 << _FRAME_BITS) - 1

Range = tuple[float, float]


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True, slots=True)
class VideoScore:
    """Counts behind both percentages, so callers can show "23 of 25 frames"."""

    query_matched: int
    query_frames: int
    compared_matched: int
    compared_frames: int

    @property
    def query_pct(self) -> float:
        return self.query_matched * 100.0 / self.query_frames if self.query_frames else 0.0

    @property
    def compared_pct(self) -> float:
        return self.compared_matched * 100.0 / self.compared_frames if self.compared_frames else 0.0

    def is_match(
        self, min_query_pct: float = MIN_QUERY_PCT, min_compared_pct: float = MIN_COMPARED_PCT
    ) -> bool:
        """Both thresholds reached and at least one frame pair matched."""
        return (
            self.query_matched > 0
            and self.query_pct >= min_query_pct
            and self.compared_pct >= min_compared_pct
        )


@dataclass(frozen=True, slots=True)
class VideoMatch:
    """One bank video that matched a query: its score and where, in both videos."""

    video_id: int
    score: VideoScore
    query_ranges: list[Range]
    compared_ranges: list[Range]


# --------------------------------------------------------------------------- preparation


@dataclass(frozen=True, slots=True)
class PreparedVideo:
    """A video reduced to what matching needs.

    ``words`` are the unique quality-passing hashes as (k, 4) uint64 (first occurrence
    order); ``seconds[i]`` and ``unique[i]`` describe the i-th quality-passing frame in
    frame order (its time and which unique hash it has); ``gap`` is the largest time step
    that still joins two matched frames into one range.
    """

    words: Words
    seconds: NDArray[np.float64]
    unique: Positions
    gap: float

    @property
    def n_unique(self) -> int:
        return len(self.words)


def _codes(frames: Sequence[VpdqFrame]) -> Codes:
    raw = b"".join(bytes.fromhex(f.pdq) for f in frames)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(frames), 32)


def prepare(frames: Iterable[VpdqFrame], quality: int = QUALITY) -> PreparedVideo:
    """Quality filter, frame order, dedupe by exact hash (see the module doc)."""
    frames = sorted(frames, key=lambda f: f.frame)
    return prepare_arrays(
        _codes(frames),
        np.array([f.quality for f in frames], dtype=np.int64),
        np.array([f.seconds for f in frames], dtype=np.float64),
        quality,
    )


def prepare_arrays(
    codes: Codes, qualities: NDArray[np.integer], seconds: NDArray[np.floating],
    quality: int = QUALITY,
) -> PreparedVideo:
    """:func:`prepare` for frames already held as arrays, in frame order: ``(n, 32) uint8``
    codes, qualities and seconds (bulk loads skip building millions of frame objects)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, 32)
    secs = np.asarray(seconds, dtype=np.float64)
    times = np.sort(secs[~np.isnan(secs)])
    steps = np.diff(times)
    steps = steps[steps > 0]
    gap = 1.5 * float(np.median(steps)) if len(steps) else math.inf
    keep = np.asarray(qualities) >= quality
    kept = codes[keep]
    if len(kept):
        _, first, inverse = np.unique(kept, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)  # unique hashes in first-occurrence order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        unique = rank[inverse.reshape(-1)].astype(np.int64)
        words = np.ascontiguousarray(kept[np.sort(first)]).view("<u8")
    else:
        unique = np.zeros(0, np.int64)
        words = np.zeros((0, 4), np.uint64)
    return PreparedVideo(words=words, seconds=secs[keep], unique=unique, gap=gap)


def merge_ranges(seconds: NDArray[np.float64], matched: Flags, gap: float) -> list[Range]:
    """Join consecutive matched frames into ``(start, end)`` second ranges (module doc)."""
    out: list[Range] = []
    span: Range | None = None  # (first, last) matched second of the range being built
    for t, hit in zip(seconds.tolist(), matched.tolist(), strict=True):
        if span is not None and hit and t - span[1] <= gap:
            span = (span[0], t)
            continue
        if span is not None:  # an unmatched frame or a gap ends the range
            out.append(span)
            span = None
        if hit:
            span = (t, t)
    if span is not None:
        out.append(span)
    return out


def _match_of(
    video_id: int, q: PreparedVideo, c: PreparedVideo, qhit: Flags, chit: Flags
) -> VideoMatch:
    score = VideoScore(int(qhit.sum()), q.n_unique, int(chit.sum()), c.n_unique)
    return VideoMatch(
        video_id=video_id,
        score=score,
        query_ranges=merge_ranges(q.seconds, qhit[q.unique], q.gap),
        compared_ranges=merge_ranges(c.seconds, chit[c.unique], c.gap),
    )


# --------------------------------------------------------------------------- brute force


def _brute_hits(q: Words, c: Words, distance: int) -> tuple[Flags, Flags]:
    if len(q) == 0 or len(c) == 0:
        return np.zeros(len(q), bool), np.zeros(len(c), bool)
    d = np.bitwise_count(q[:, None, :] ^ c[None, :, :]).sum(axis=2)
    close = d <= distance
    return close.any(axis=1), close.any(axis=0)


def brute_force_score(
    query: Iterable[VpdqFrame],
    compared: Iterable[VpdqFrame],
    *,
    distance: int = DISTANCE,
    quality: int = QUALITY,
) -> VideoScore:
    """The reference score of two videos: every unique hash against every other (NumPy)."""
    q, c = prepare(query, quality), prepare(compared, quality)
    qhit, chit = _brute_hits(q.words, c.words, distance)
    return VideoScore(int(qhit.sum()), q.n_unique, int(chit.sum()), c.n_unique)


def brute_force_search(
    query: Iterable[VpdqFrame] | PreparedVideo,
    bank: dict[int, Sequence[VpdqFrame] | PreparedVideo],
    *,
    distance: int = DISTANCE,
    quality: int = QUALITY,
    min_query_pct: float = MIN_QUERY_PCT,
    min_compared_pct: float = MIN_COMPARED_PCT,
) -> list[VideoMatch]:
    """Reference for :meth:`VideoIndex.search`: score the query against every bank video."""
    q = query if isinstance(query, PreparedVideo) else prepare(query, quality)
    out = []
    for vid, frames in bank.items():
        c = frames if isinstance(frames, PreparedVideo) else prepare(frames, quality)
        qhit, chit = _brute_hits(q.words, c.words, distance)
        m = _match_of(vid, q, c, qhit, chit)
        if m.score.is_match(min_query_pct, min_compared_pct):
            out.append(m)
    return _ordered(out)


def _ordered(matches: list[VideoMatch]) -> list[VideoMatch]:
    """Best first: query %, then compared %, then video id (deterministic)."""
    return sorted(matches, key=lambda m: (-m.score.query_pct, -m.score.compared_pct, m.video_id))


# --------------------------------------------------------------------------- index


def _min_count(m: int, pct: float) -> int:
    """Smallest matched count c (0..m+1) with ``c * 100.0 / m >= pct``, exactly as scored."""
    c = max(0, math.floor(pct * m / 100.0) - 1)
    while c <= m and c * 100.0 / m < pct:
        c += 1
    return c


def _probe_rows(m: int, min_query_pct: float) -> Positions | None:
    """Which unique query hashes to look up (pigeonhole); None when no video can match."""
    if min_query_pct <= 0:
        return np.arange(m)
    k = max(1, _min_count(m, min_query_pct))
    if k > m:
        return None
    s = m - k + 1
    return np.unique(np.linspace(0, m - 1, s).round().astype(np.int64))


class VideoIndex:
    """Bank videos' frame hashes in one exact Hamming index, scored per video exactly.

    ``quality`` is fixed per index (frames below it are never indexed); distance and the
    match thresholds are per query.
    """

    def __init__(self, *, quality: int = QUALITY, index: HammingIndex | None = None) -> None:
        self.quality = quality
        self.index = index if index is not None else HammingIndex()
        self._videos: list[PreparedVideo | None] = []
        self._ids: list[int] = []
        self._slot: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._slot

    def add(self, video_id: int, frames: Iterable[VpdqFrame]) -> None:
        """Add one bank video under a caller-chosen int id (unique in this index)."""
        self.add_prepared(video_id, prepare(frames, self.quality))

    def add_prepared(self, video_id: int, video: PreparedVideo) -> None:
        """Add an already prepared video."""
        self.add_many([(video_id, video)])

    def add_many(self, videos: Iterable[tuple[int, Iterable[VpdqFrame] | PreparedVideo]]) -> None:
        """Add many videos with one index insertion (a bank load: one table build, not one
        per video)."""
        codes: list[Codes] = []
        ids: list[Ids] = []
        added: list[int] = []
        try:
            for video_id, frames in videos:
                video_id = int(video_id)
                video = (
                    frames if isinstance(frames, PreparedVideo) else prepare(frames, self.quality)
                )
                if video_id in self._slot:
                    raise ValueError(f"video {video_id} is already in the index")
                if video.n_unique > _FRAME_MASK:
                    raise ValueError(f"video {video_id} has more than {_FRAME_MASK} unique frames")
                slot = len(self._videos)
                self._videos.append(video)
                self._ids.append(video_id)
                self._slot[video_id] = slot
                added.append(video_id)
                if video.n_unique:
                    codes.append(video.words.view(np.uint8).reshape(-1, 32))
                    ids.append(
                        (np.int64(slot) << _FRAME_BITS) | np.arange(video.n_unique, dtype=np.int64)
                    )
            if codes:
                self.index.add(np.concatenate(codes), np.concatenate(ids))
        except BaseException:
            for video_id in added:  # all or nothing: nothing half-indexed
                self._videos[self._slot.pop(video_id)] = None
            raise

    def remove(self, video_id: int) -> bool:
        """Remove a video; False when it was not there."""
        slot = self._slot.pop(int(video_id), None)
        if slot is None:
            return False
        video = self._videos[slot]
        assert video is not None
        if video.n_unique:
            ids = (np.int64(slot) << _FRAME_BITS) | np.arange(video.n_unique, dtype=np.int64)
            self.index.remove(ids)
        self._videos[slot] = None
        return True

    def compact(self) -> None:
        """Fold pending additions into the index's tables (after a bulk load)."""
        self.index.compact()

    def search(
        self,
        query: Iterable[VpdqFrame] | PreparedVideo,
        *,
        distance: int = DISTANCE,
        min_query_pct: float = MIN_QUERY_PCT,
        min_compared_pct: float = MIN_COMPARED_PCT,
    ) -> list[VideoMatch]:
        """Bank videos matching one query video, best first (see the module doc)."""
        return self.search_many(
            [query],
            distance=distance,
            min_query_pct=min_query_pct,
            min_compared_pct=min_compared_pct,
        )[0]

    def search_many(
        self,
        queries: Sequence[Iterable[VpdqFrame] | PreparedVideo],
        *,
        distance: int = DISTANCE,
        min_query_pct: float = MIN_QUERY_PCT,
        min_compared_pct: float = MIN_COMPARED_PCT,
    ) -> list[list[VideoMatch]]:
        """Many query videos with one batched frame lookup (the index's efficient path)."""
        prepared = [
            q if isinstance(q, PreparedVideo) else prepare(q, self.quality) for q in queries
        ]
        probes: list[Words] = []
        owner: list[Positions] = []
        for n, q in enumerate(prepared):
            rows = _probe_rows(q.n_unique, min_query_pct) if q.n_unique else None
            if rows is not None and len(rows):
                probes.append(q.words[rows])
                owner.append(np.full(len(rows), n, np.int64))
        results: list[list[VideoMatch]] = [[] for _ in prepared]
        if not probes or len(self.index) == 0:
            return results
        words = np.concatenate(probes)
        who = np.concatenate(owner)
        found = self.index.search(np.ascontiguousarray(words).view(np.uint8), distance)
        counts = np.diff(found.offsets)
        pairs = np.unique(
            np.stack([np.repeat(who, counts), found.ids >> _FRAME_BITS], axis=1), axis=0
        )
        for n, slot in pairs.tolist():
            q, c = prepared[n], self._videos[slot]
            if c is None:  # removed after an id was handed out (not expected: ids go too)
                continue
            qhit = np.zeros(q.n_unique, bool)
            chit = np.zeros(c.n_unique, bool)
            pair_hits(q.words, c.words, distance, qhit, chit)
            m = _match_of(self._ids[slot], q, c, qhit, chit)
            if m.score.is_match(min_query_pct, min_compared_pct):
                results[n].append(m)
        return [_ordered(r) for r in results]
