"""The second stage (``--variants features``): wide PDQ candidates, confirmed by features.

Rotations of a few degrees and crops of a fifth a side leave a copy's PDQ too far from its
original for the 31-bit threshold, but not as far as a different picture usually is. So:

1. **candidates**: the banked pictures with features whose anchor codes
   (``vigil.banks.featured``: the picture, its trimmed content, its 10-20% centre crops)
   lie within ``FEATURE_RADIUS`` bits of one of the query's codes: its own, its trimmed
   content's, and its centre turned back by 3, 6 and 9 degrees either way
   (``vigil.signals.turns``); searched exactly (a linear scan at this radius), nearest
   first, at most ``MAX_CANDIDATES`` per query picture (entries the first stage already
   matched are not candidates: they are leads already);
2. **confirmation**: the query's ORB features against the candidate's stored ones
   (``vigil.matching.confirm``); only a confirmed candidate is a lead, named ``features``
   with its PDQ distance (to the nearest anchor) and the inlier count.

Flat pictures (quality below 50, or the caller's minimum if higher) take no part, on either
side. A candidate whose stored features do not read is skipped, never trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vigil.banks.featured import split_anchor_id, stored_features
from vigil.banks.model import StoredEntry
from vigil.index import codes_from_hex
from vigil.matching.confirm import Confirmation, confirm
from vigil.matching.protocols import BankDirectory, EntrySource, SignalIndex
from vigil.signals.features import FeatureSet

#: candidates' anchor codes lie within this many bits of a query code (measured on the
#: corpus: bench/RESULTS.md, issue 22's second stage)
FEATURE_RADIUS = 64
#: at most this many candidates per query picture are confirmed (nearest first)
MAX_CANDIDATES = 16
#: the lead's variant
VARIANT = "features"


@dataclass(frozen=True, slots=True)
class FeatureQuery:
    """One query picture of a batch: its item, its codes (plain, trimmed) and features."""

    item: int
    codes: tuple[str, ...]
    features: FeatureSet


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A second-stage lead: the item, the entry, the PDQ distance and the confirmation."""

    item: int
    entry: StoredEntry
    distance: int
    confirmation: Confirmation


def candidates(index: SignalIndex, queries: Sequence[FeatureQuery],
               skip: set[tuple[int, int]]) -> dict[int, list[tuple[int, int]]]:
    """item -> [(entry id, distance)], nearest first (ties by entry id), at most
    ``MAX_CANDIDATES``, leaving out (item, entry) pairs in ``skip``."""
    rows = [(q.item, hx) for q in queries for hx in q.codes]
    if not rows:
        return {}
    res = index.search_pdq_featured(codes_from_hex([hx for _, hx in rows]), FEATURE_RADIUS)
    near: dict[int, dict[int, int]] = {}
    for k, (item, _) in enumerate(rows):
        mine = near.setdefault(item, {})
        for code_id, d in res.matches(k):
            eid = split_anchor_id(code_id)[0]
            if (item, eid) not in skip and d < mine.get(eid, 257):
                mine[eid] = d
    return {item: sorted(found.items(), key=lambda x: (x[1], x[0]))[:MAX_CANDIDATES]
            for item, found in near.items() if found}


def second_stage(index: SignalIndex, entries: EntrySource, queries: Sequence[FeatureQuery],
                 skip: set[tuple[int, int]], wanted: set[str] | None,
                 directory: BankDirectory | None) -> list[Confirmed]:
    """The confirmed candidates of a batch (see the module docstring)."""
    if not queries:
        return []
    found = candidates(index, queries, skip)
    if not found:
        return []
    by_item: Mapping[int, FeatureQuery] = {q.item: q for q in queries}
    stored = entries.by_ids({eid for c in found.values() for eid, _ in c}, directory)
    out = []
    for item, cands in found.items():
        for eid, d in cands:
            e = stored.get(eid)
            if (e is None or e.removed or e.signal_type != "pdq"
                    or (wanted is not None and e.bank not in wanted)):
                continue
            banked = stored_features(e.extra)
            if banked is None:
                continue
            c = confirm(by_item[item].features, banked)
            if c is not None:
                out.append(Confirmed(item, e, d, c))
    return out
