"""Search results for a batch of queries, in one compact CSR layout.

Batches of thousands of queries are the main path, so results are three flat arrays instead
of a list of lists of tuples: cheap to build, to slice and to ship between processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.index.arrays import Distances, Ids, Positions


@dataclass(frozen=True)
class SearchResult:
    """Hits of query ``i`` are ``ids[offsets[i]:offsets[i+1]]`` with matching ``distances``.

    Within one query, hits are sorted by (distance, id), so the best lead comes first and
    the order is deterministic across index implementations.
    """

    offsets: Positions  # shape (Q + 1,)
    ids: Ids  # shape (H,)
    distances: Distances  # shape (H,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def count(self, i: int) -> int:
        """Number of hits for query ``i``."""
        return int(self.offsets[i + 1] - self.offsets[i])

    def matches(self, i: int) -> list[tuple[int, int]]:
        """``(id, distance)`` pairs for query ``i``, best first."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return list(zip(self.ids[lo:hi].tolist(), self.distances[lo:hi].tolist(), strict=True))

    @classmethod
    def empty(cls, n_queries: int) -> SearchResult:
        """A result with no hits for ``n_queries`` queries."""
        return cls(
            offsets=np.zeros(n_queries + 1, dtype=np.int64),
            ids=np.zeros(0, dtype=np.int64),
            distances=np.zeros(0, dtype=np.int32),
        )

    @classmethod
    def from_hits(
        cls, n_queries: int, queries: NDArray[np.integer], ids: NDArray[np.integer],
        distances: NDArray[np.integer],
    ) -> SearchResult:
        """Build from unordered (query index, id, distance) triples; sorts them canonically."""
        if len(ids) == 0:  # the usual answer to a single query: nothing to sort
            return cls.empty(n_queries)
        q = np.asarray(queries, dtype=np.int64)
        i = np.asarray(ids, dtype=np.int64)
        d = np.asarray(distances, dtype=np.int32)
        order = np.lexsort((i, d, q))
        q, i, d = q[order], i[order], d[order]
        offsets = np.zeros(n_queries + 1, dtype=np.int64)
        np.cumsum(np.bincount(q, minlength=n_queries), out=offsets[1:])
        return cls(offsets=offsets, ids=i, distances=d)
