"""Cost model for the multi-index: how to split the 256 bits, and when to scan instead.

Multi-index hashing pays for itself only while the probes and candidates it touches cost
less than one linear pass over the codes. Both decisions below use the same rough model,
calibrated on this project's benchmark machine (one core, bench/RESULTS_matching.md):

* a probe (one bucket lookup in a table too large for cache)  ~ PROBE_NS
* a candidate (fetch a random code, 256-bit popcount)          ~ CANDIDATE_NS
* one code in the batched scan (streaming, vectorised)         ~ SCAN_NS

The numbers only steer speed; every path is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb

PROBE_NS = 40.0
CANDIDATE_NS = 40.0
SCAN_NS = 0.3
DESIGN_RADIUS = 31  # PDQ's customary match threshold; builds are tuned for it
MAX_WIDTH = 28  # offsets table of 2^28 uint32 = 1 GiB per chunk: the hard ceiling
MAX_PROBES = 2_000_000  # flip masks we are willing to enumerate per chunk
BYTES_PER_CODE_BUDGET = 128  # 4x the raw 32 bytes (issue target), all structures included
MIN_TABLE_BUDGET = 8 << 20  # small indexes may use a few MiB of tables regardless


@dataclass(frozen=True)
class Layout:
    """``chunks`` tables over bits ``[i*width, (i+1)*width)``; leftover high bits unindexed.

    Leaving a few bits out of every table is still exact: distance on a subset of the bits
    is at most the full distance, so the pigeonhole argument holds on the indexed bits, and
    verification always uses all 256.
    """

    chunks: int
    width: int

    def table_bytes(self, n: int) -> int:
        """Rows (uint32 per code per chunk) plus offsets (2^width + 1 uint32 per chunk)."""
        return self.chunks * (4 * n + 4 * ((1 << self.width) + 1))


def split_radius(radius: int, chunks: int) -> list[int]:
    """Per-chunk radii ``t_i`` with ``sum(t_i + 1) >= radius + 1`` as evenly as possible.

    If every chunk differed from the query by more than ``t_i`` bits the total distance
    would be at least ``radius + 1``; so a match has some chunk within ``t_i``. ``t_i = -1``
    means chunk ``i`` need not be probed at all.
    """
    base, extra = divmod(radius + 1, chunks)
    return [base if i < extra else base - 1 for i in range(chunks)]


def probes(width: int, t: int) -> int:
    """Number of bucket values within ``t`` bits of a ``width``-bit value."""
    return sum(comb(width, k) for k in range(t + 1)) if t >= 0 else 0


def mih_cost_ns(layout: Layout, n: int, radius: int) -> float:
    """Expected time per query of a multi-index search on uniformly spread codes."""
    per_bucket = n / float(1 << layout.width)
    total = 0.0
    for t in split_radius(radius, layout.chunks):
        p = probes(layout.width, t)
        total += p * (PROBE_NS + CANDIDATE_NS * per_bucket)
    return total


def scan_cost_ns(n: int) -> float:
    """Time per query of the batched linear scan."""
    return n * SCAN_NS


def choose_layout(n: int) -> Layout | None:
    """Cheapest layout at the design radius that fits the memory budget; None = scan only."""
    if n == 0:
        return None
    budget = max(BYTES_PER_CODE_BUDGET * n, MIN_TABLE_BUDGET) - (32 + 8 + 1) * n
    best: tuple[float, Layout] | None = None
    for chunks in range(8, 65):
        width = min(256 // chunks, MAX_WIDTH)
        layout = Layout(chunks, width)
        if layout.table_bytes(n) > budget:
            continue
        cost = mih_cost_ns(layout, n, DESIGN_RADIUS)
        if best is None or cost < best[0]:
            best = (cost, layout)
    if best is None or best[0] >= scan_cost_ns(n):
        return None
    return best[1]


@lru_cache(maxsize=4096)
def use_tables(layout: Layout | None, n: int, radius: int) -> bool:
    """Whether probing the tables is expected to beat scanning for this radius.

    Memoised: a server asks this for every single-code search, and working it out cost
    ~30 µs, a tenth of the search itself."""
    if layout is None:
        return False
    t_max = max(split_radius(radius, layout.chunks))
    if probes(layout.width, t_max) > MAX_PROBES:
        return False
    return mih_cost_ns(layout, n, radius) < scan_cost_ns(n)
