"""Id validation shared by the indexes.

Ids are the caller's keys (bank entry ids). An index that silently accepted a duplicate id
would report one entry twice or lose a removal, so duplicates are an error.
"""

from __future__ import annotations

import numpy as np

from vigil.index.arrays import Flags, Ids, Positions


def as_ids(ids: object, n: int | None = None) -> Ids:
    """Coerce to a 1-D int64 array, checking its length against ``n`` rows when given."""
    arr = np.asarray(ids)
    if arr.size == 0:
        arr = arr.astype(np.int64).reshape(0)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(
            f"ids must be a 1-D integer array, got dtype {arr.dtype} shape {arr.shape}"
        )
    arr = arr.astype(np.int64, copy=False)
    if n is not None and len(arr) != n:
        raise ValueError(f"got {n} rows but {len(arr)} ids")
    return arr


def check_unique(ids: Ids) -> None:
    """Raise ValueError naming an id that occurs twice in one batch."""
    if len(ids) < 2:
        return
    s = np.sort(ids)
    dup = np.flatnonzero(s[1:] == s[:-1])
    if len(dup):
        raise ValueError(f"id {int(s[dup[0]])} occurs more than once in this batch")


def sorted_member(sorted_ids: Ids, ids: Ids) -> tuple[Flags, Positions]:
    """For each id: whether it is in ``sorted_ids`` and its position there (valid if found)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=bool), np.zeros(len(ids), dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_c = np.minimum(pos, len(sorted_ids) - 1)
    found = sorted_ids[pos_c] == ids
    return found, pos_c
