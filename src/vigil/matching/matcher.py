"""Match policy: which signals are looked up where, and how hits become leads.

Every match is a lead for a human, not a verdict, so a ``Match`` keeps everything that
made it one: the signal type and (dihedral) variant that matched, the integer distance,
the bank and the entry with its labels. Policy in one place:

* exact signals (MD5, SHA-1, SHA-256) are looked up in the exact indexes; opaque types
  (e.g. PhotoDNA carried from VICS) by exact value in the store;
* PDQ is searched within ``threshold`` bits (default 31, the PDQ authors' recommendation);
  with ``dihedral`` the 7 rotated/mirrored variants are searched too;
* with ``variants`` (off, borders, crops, all) a PDQ's derived codes are searched too,
  and its code among the banks' derived codes, in the pairs ``vigil.matching.variants``
  allows; the lead names both sides (``original/centre-0.05``);
* with ``variants="features"`` also the second stage (``vigil.matching.second``): banked
  pictures within a wide PDQ radius, confirmed by local features; the lead's variant is
  ``features``, with the PDQ distance and the inlier count;
* PDQ queries below ``min_quality`` (default 50) are not searched: hashes of flat images
  collide with each other, and the caller is told (``Outcome.skipped``);
* videos (vPDQ) match by the share of frames within 31 bits, as Meta's vpdq does (frames
  below quality 50 ignored; a match needs 80% of the query's frames), through the video
  index; the ``Match`` carries both percentages and the matched time ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vigil.banks.derived import MIN_VARIANT_QUALITY
from vigil.banks.model import StoredEntry
from vigil.index import codes_from_hex
from vigil.index.video import VideoMatch
from vigil.matching.protocols import EXACT_TYPES, BankDirectory, EntrySource, SignalIndex
from vigil.matching.query import DEFAULT_MIN_QUALITY, DEFAULT_THRESHOLD, Match, Outcome, Query
from vigil.matching.second import VARIANT as SECOND_STAGE
from vigil.matching.second import FeatureQuery, second_stage
from vigil.matching.variants import (
    VARIANT_OPTIONS,
    VariantOption,
    pair_allowed,
    query_codes,
    split_derived_id,
)
from vigil.signals.features import FeatureFormatError, unpack
from vigil.signals.turns import TURN_NAMES
from vigil.signals.vpdq import VpdqFrame


class Matcher:
    """Matches queries against the banks through the indexes, then resolves entries."""

    def __init__(self, entries: EntrySource, index: SignalIndex,
                 bank_directory: Callable[[], BankDirectory] | None = None) -> None:
        self.entries = entries
        self.index = index
        #: bank id -> (name, agency) held by a server (read from the store when None)
        self.bank_directory = bank_directory

    def match(self, items: list[list[Query]], *, threshold: int = DEFAULT_THRESHOLD,
              bank_names: Iterable[str] | None = None, min_quality: int = DEFAULT_MIN_QUALITY,
              variants: VariantOption = "off") -> list[Outcome]:
        """Match a batch of items (each a list of queries); one ``Outcome`` per item.

        Batches are the fast path: all PDQ codes of all items go to the index at once.
        """
        if not 0 <= threshold <= 64:
            raise ValueError(f"threshold must be between 0 and 64 bits, got {threshold}")
        if variants not in VARIANT_OPTIONS:
            raise ValueError(f"variants must be one of {', '.join(VARIANT_OPTIONS)}, "
                             f"got {variants!r}")
        wanted = set(bank_names) if bank_names is not None else None
        if wanted is not None:
            known = self.entries.names()
            missing = sorted(wanted - known)
            if missing:
                raise ValueError(f"no bank named {', '.join(map(repr, missing))}")
        outcomes = [Outcome() for _ in items]
        hits: list[tuple[int, int, str, int, str]] = []  # item, entry id, type, dist, variant
        pdq_rows: list[tuple[int, str, str]] = []  # item, variant, hex
        derived_rows: list[tuple[int, str, str]] = []  # item, query code, hex
        exact: dict[str, list[tuple[int, str]]] = {}
        videos: list[tuple[int, tuple[VpdqFrame, ...]]] = []
        featured: list[FeatureQuery] = []  # the second stage's query pictures
        opaque: dict[str, list[tuple[int, str]]] = {}
        for i, queries in enumerate(items):
            for q in queries:
                if q.signal_type == "pdq":
                    if q.quality is not None and q.quality < min_quality:
                        outcomes[i].skipped.append(
                            f"pdq not searched: quality {q.quality} < {min_quality}")
                        continue
                    pdq_rows.append((i, "original", q.value))
                    pdq_rows += [(i, name, h) for name, h in q.variants]
                    if variants != "off":
                        own = [(i, n, h) for n, h in query_codes(q.derived, variants,
                                                                 min_quality)]
                        pdq_rows += own
                        derived_rows += [(i, "original", q.value), *own]
                    if variants == "features":
                        fq = self._feature_query(i, q, min_quality, outcomes[i])
                        if fq is not None:
                            featured.append(fq)
                elif q.signal_type == "vpdq":
                    if q.frames:
                        videos.append((i, q.frames))
                    else:  # a bare digest: the same frame list, exactly
                        opaque.setdefault("vpdq", []).append((i, q.value))
                elif q.signal_type in EXACT_TYPES:
                    exact.setdefault(q.signal_type, []).append((i, q.value))
                else:
                    opaque.setdefault(q.signal_type, []).append((i, q.value))
        if pdq_rows:
            res = self.index.search_pdq(codes_from_hex([h for _, _, h in pdq_rows]), threshold)
            for k, (i, variant, _) in enumerate(pdq_rows):
                hits += [(i, eid, "pdq", d, variant) for eid, d in res.matches(k)]
        if derived_rows:
            res = self.index.search_pdq_derived(
                codes_from_hex([h for _, _, h in derived_rows]), threshold)
            for k, (i, qv, _) in enumerate(derived_rows):
                for cid, d in res.matches(k):
                    eid, window = split_derived_id(cid)
                    if pair_allowed(qv, window, variants):
                        hits.append((i, eid, "pdq", d, f"{qv}/{window}"))
        for t, rows in exact.items():
            res = self.index.lookup(t, [v for _, v in rows])
            for k, (i, _) in enumerate(rows):
                hits += [(i, eid, t, 0, "original") for eid, _ in res.matches(k)]
        video_hits: dict[tuple[int, int], VideoMatch] = {}
        if videos:
            found = self.index.search_videos([f for _, f in videos])
            for (i, _), matches in zip(videos, found, strict=True):
                for vm in matches:
                    video_hits[(i, vm.video_id)] = vm
                    hits.append((i, vm.video_id, "vpdq", 0, "original"))
        directory = self.bank_directory() if self.bank_directory else None
        entries = self.entries.by_ids((h[1] for h in hits), directory) if hits else {}
        best: dict[tuple[int, int], Match] = {}
        for i, eid, t, d, variant in hits:
            e = entries.get(eid)
            if e is None or e.removed or (wanted is not None and e.bank not in wanted):
                continue  # removed since the index was synced, or outside the filter
            m = Match(e, t, d, variant, video_hits.get((i, eid)) if t == "vpdq" else None)
            if (i, eid) not in best or d < best[(i, eid)].distance:
                best[(i, eid)] = m
        for c in second_stage(self.index, self.entries, featured, set(best), wanted,
                              directory):
            best[(c.item, c.entry.id)] = Match(c.entry, "pdq", c.distance, SECOND_STAGE,
                                               inliers=c.confirmation.inliers)
        for t, rows in opaque.items():
            values = sorted({v for _, v in rows})
            by_value: dict[str, list[StoredEntry]] = {}
            for e in self.entries.find(t, values, sorted(wanted) if wanted else None,
                                     directory):
                by_value.setdefault(e.value, []).append(e)
            for i, v in rows:
                for e in by_value.get(v, []):
                    best[(i, e.id)] = Match(e, t, 0)
        for (i, _), m in best.items():
            outcomes[i].matches.append(m)
        for o in outcomes:
            o.matches.sort(key=lambda m: (m.distance, m.signal_type != "sha256", m.entry.bank,
                                          m.entry.id))
        return outcomes

    @staticmethod
    def _feature_query(i: int, q: Query, min_quality: int, outcome: Outcome,
                       ) -> FeatureQuery | None:
        """The second stage's query for a PDQ query with features that is not flat: its
        features, and the codes its candidates are searched by (its own, its trimmed
        content's, its turned-back centres')."""
        if q.features is None or q.quality is None:
            return None
        if q.quality < max(min_quality, MIN_VARIANT_QUALITY):
            outcome.skipped.append(f"features not used: quality {q.quality} < "
                                   f"{max(min_quality, MIN_VARIANT_QUALITY)}")
            return None
        try:
            feats = unpack(q.features)
        except FeatureFormatError as exc:
            outcome.skipped.append(f"features not used: {exc}")
            return None
        floor = max(min_quality, MIN_VARIANT_QUALITY)
        codes = (q.value, *(hx for name, hx, quality in q.derived
                            if (name == "trimmed" or name in TURN_NAMES) and quality >= floor))
        return FeatureQuery(i, codes, feats)
