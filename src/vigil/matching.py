"""Match policy: which signals are looked up where, and how hits become leads.

Every match is a lead for a human, not a verdict, so a ``Match`` keeps everything that
made it one: the signal type and (dihedral) variant that matched, the integer distance,
the bank and the entry with its labels. Policy in one place:

* exact signals (MD5, SHA-1, SHA-256) are looked up in the exact indexes; opaque types
  (e.g. PhotoDNA carried from VICS) by exact value in the store;
* PDQ is searched within ``threshold`` bits (default 31, the PDQ authors' recommendation);
  with ``dihedral`` the 7 rotated/mirrored variants are searched too;
* PDQ queries below ``min_quality`` (default 50) are not searched: hashes of flat images
  collide with each other, and the caller is told (``Outcome.skipped``);
* videos (vPDQ) match by the share of frames within 31 bits, as Meta's vpdq does (frames
  below quality 50 ignored; a match needs 80% of the query's frames), through the video
  index; the ``Match`` carries both percentages and the matched time ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from vigil.banks import Banks, StoredEntry
from vigil.entry import check_signal
from vigil.index import codes_from_hex
from vigil.indexes import EXACT_SIZES, BankIndexes
from vigil.signals import DIHEDRAL_NAMES, FileSignals
from vigil.signals.vpdq import VpdqFrame, vpdq_digest
from vigil.videomatch import VideoMatch

DEFAULT_THRESHOLD = 31
DEFAULT_MIN_QUALITY = 50


@dataclass(frozen=True, slots=True)
class Query:
    """One signal to match; PDQ may carry its quality and its dihedral variants."""

    signal_type: str
    value: str
    quality: int | None = None
    #: extra PDQ variants to search, as (variant name, hex)
    variants: tuple[tuple[str, str], ...] = ()
    #: a video's vPDQ frames (for ``vpdq`` queries; the value is their digest)
    frames: tuple[VpdqFrame, ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """A hit: which entry, through which signal and variant, at what distance."""

    entry: StoredEntry
    signal_type: str
    distance: int
    variant: str = "original"
    #: for a vPDQ match: both percentages and the matched time ranges in both videos
    video: VideoMatch | None = None


@dataclass(slots=True)
class Outcome:
    """All matches for one item (a file or a bare hash), best first, and what was skipped."""

    matches: list[Match] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def leads(self) -> list[tuple[Match, list[str]]]:
        """Matches grouped per bank record (entries sharing a source id, e.g. one file's
        MD5, SHA-1, SHA-256 and PDQ): the best match of each, with every signal type
        that matched it."""
        groups: dict[tuple[str, str], tuple[Match, list[str]]] = {}
        for m in self.matches:
            key = (m.entry.bank, m.entry.source_id or f"entry:{m.entry.id}")
            if key not in groups:
                groups[key] = (m, [m.signal_type])
            elif m.signal_type not in groups[key][1]:
                groups[key][1].append(m.signal_type)
        return list(groups.values())


def queries_of(signals: FileSignals, dihedral: bool = False) -> list[Query]:
    """The queries a hashed file gives: its digests and its PDQ (with variants if asked)."""
    out: list[Query] = []
    if signals.digests is not None:
        d = signals.digests
        out += [Query("md5", d.md5), Query("sha1", d.sha1), Query("sha256", d.sha256)]
    if signals.pdq is not None:
        variants: tuple[tuple[str, str], ...] = ()
        if dihedral and signals.pdq_dihedral:
            variants = tuple((n, h.hex) for n, h in zip(DIHEDRAL_NAMES[1:],
                                                         signals.pdq_dihedral[1:], strict=True))
        out.append(Query("pdq", signals.pdq.hex, signals.pdq.quality, variants))
    if signals.vpdq:
        out.append(Query("vpdq", vpdq_digest(signals.vpdq), frames=tuple(signals.vpdq)))
    return out


def video_detail(vm: VideoMatch) -> dict[str, object]:
    """A video match as plain data: both percentages and the matched time ranges."""
    s = vm.score
    return {"query_pct": round(s.query_pct, 1), "compared_pct": round(s.compared_pct, 1),
            "query_frames": f"{s.query_matched}/{s.query_frames}",
            "compared_frames": f"{s.compared_matched}/{s.compared_frames}",
            "query_ranges": [[round(a, 3), round(b, 3)] for a, b in vm.query_ranges],
            "compared_ranges": [[round(a, 3), round(b, 3)] for a, b in vm.compared_ranges]}


def describe_video(vm: VideoMatch) -> str:
    """One line for people: "92% of this video, 100% of the bank video, 0:00-0:12 ~ 0:03-0:15"."""
    def span(r: list[tuple[float, float]]) -> str:
        return ", ".join(f"{a // 60:.0f}:{a % 60:04.1f}-{b // 60:.0f}:{b % 60:04.1f}"
                         for a, b in r[:3]) + (" …" if len(r) > 3 else "")
    s = vm.score
    return (f"{s.query_pct:.0f}% of this video, {s.compared_pct:.0f}% of the bank video; "
            f"{span(vm.query_ranges)} ~ {span(vm.compared_ranges)}")


def parse_query(text: str) -> Query:
    """``type:value`` as the CLI takes a bare hash (``pdq:HEX``, ``md5:HEX``)."""
    if ":" not in text:
        raise ValueError(f"hash {text[:12]!r}… must be written type:value, e.g. pdq:<64 hex>")
    t, v = text.split(":", 1)
    t, v = check_signal(t, v)
    return Query(t, v)


class Matcher:
    """Matches queries against the banks through the indexes, then resolves entries."""

    def __init__(self, banks: Banks, indexes: BankIndexes,
                 bank_directory: Callable[[], Mapping[int, tuple[str, str]]] | None = None,
                 ) -> None:
        self.banks = banks
        self.indexes = indexes
        #: bank id -> (name, agency) held by a server (read from the store when None)
        self.bank_directory = bank_directory

    def match(self, items: list[list[Query]], *, threshold: int = DEFAULT_THRESHOLD,
              bank_names: Iterable[str] | None = None, min_quality: int = DEFAULT_MIN_QUALITY,
              ) -> list[Outcome]:
        """Match a batch of items (each a list of queries); one ``Outcome`` per item.

        Batches are the fast path: all PDQ codes of all items go to the index at once.
        """
        if not 0 <= threshold <= 64:
            raise ValueError(f"threshold must be between 0 and 64 bits, got {threshold}")
        wanted = set(bank_names) if bank_names is not None else None
        if wanted is not None:
            known = self.banks.names()
            missing = sorted(wanted - known)
            if missing:
                raise ValueError(f"no bank named {', '.join(map(repr, missing))}")
        outcomes = [Outcome() for _ in items]
        hits: list[tuple[int, int, str, int, str]] = []  # item, entry id, type, dist, variant
        pdq_rows: list[tuple[int, str, str]] = []  # item, variant, hex
        exact: dict[str, list[tuple[int, str]]] = {}
        videos: list[tuple[int, tuple[VpdqFrame, ...]]] = []
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
                elif q.signal_type == "vpdq":
                    if q.frames:
                        videos.append((i, q.frames))
                    else:  # a bare digest: the same frame list, exactly
                        opaque.setdefault("vpdq", []).append((i, q.value))
                elif q.signal_type in EXACT_SIZES:
                    exact.setdefault(q.signal_type, []).append((i, q.value))
                else:
                    opaque.setdefault(q.signal_type, []).append((i, q.value))
        if pdq_rows:
            res = self.indexes.search_pdq(codes_from_hex([h for _, _, h in pdq_rows]), threshold)
            for k, (i, variant, _) in enumerate(pdq_rows):
                hits += [(i, eid, "pdq", d, variant) for eid, d in res.matches(k)]
        for t, rows in exact.items():
            res = self.indexes.lookup(t, [v for _, v in rows])
            for k, (i, _) in enumerate(rows):
                hits += [(i, eid, t, 0, "original") for eid, _ in res.matches(k)]
        video_hits: dict[tuple[int, int], VideoMatch] = {}
        if videos:
            found = self.indexes.video().search_many([f for _, f in videos])
            for (i, _), matches in zip(videos, found, strict=True):
                for vm in matches:
                    video_hits[(i, vm.video_id)] = vm
                    hits.append((i, vm.video_id, "vpdq", 0, "original"))
        directory = self.bank_directory() if self.bank_directory else None
        entries = self.banks.by_ids((h[1] for h in hits), directory) if hits else {}
        best: dict[tuple[int, int], Match] = {}
        for i, eid, t, d, variant in hits:
            e = entries.get(eid)
            if e is None or e.removed or (wanted is not None and e.bank not in wanted):
                continue  # removed since the index was synced, or outside the filter
            m = Match(e, t, d, variant, video_hits.get((i, eid)) if t == "vpdq" else None)
            if (i, eid) not in best or d < best[(i, eid)].distance:
                best[(i, eid)] = m
        for t, rows in opaque.items():
            values = sorted({v for _, v in rows})
            by_value: dict[str, list[StoredEntry]] = {}
            for e in self.banks.find(t, values, sorted(wanted) if wanted else None,
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
