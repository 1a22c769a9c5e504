"""What is matched and what comes back: queries, matches (leads) and outcomes.

Every match is a lead for a human, not a verdict, so a ``Match`` keeps everything that
made it one: the signal type and (dihedral) variant that matched, the integer distance,
the bank and the entry with its labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.banks.entry import check_signal
from vigil.banks.model import StoredEntry
from vigil.index.video import VideoMatch
from vigil.signals import DIHEDRAL_NAMES, FileSignals
from vigil.signals.vpdq import VpdqFrame, vpdq_digest

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
    #: PDQ derived codes (``vigil.signals.crops``) as (window name, hex, quality); which
    #: are searched is the matcher's ``variants`` option (``vigil.matching.variants``)
    derived: tuple[tuple[str, str, int], ...] = ()
    #: PDQ only: the picture's packed local features (``vigil.signals.features``), used by
    #: the second stage (``variants="features"``)
    features: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A hit: which entry, through which signal and variant, at what distance."""

    entry: StoredEntry
    signal_type: str
    distance: int
    #: the dihedral or derived variant: ``original``, ``rotate90``, ``trimmed``, or for a
    #: hit on a banked derived code "query code/banked window" (``original/centre-0.05``)
    variant: str = "original"
    #: for a vPDQ match: both percentages and the matched time ranges in both videos
    video: VideoMatch | None = None
    #: for a second-stage lead (variant ``features``): keypoints that agree on one
    #: transform (``vigil.matching.confirm``)
    inliers: int | None = None


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
        derived = tuple((n, h.hex, h.quality) for n, h in signals.pdq_derived or ())
        out.append(Query("pdq", signals.pdq.hex, signals.pdq.quality, variants,
                         derived=derived, features=signals.pdq_features))
    if signals.vpdq:
        out.append(Query("vpdq", vpdq_digest(signals.vpdq), frames=tuple(signals.vpdq)))
    return out


def parse_query(text: str) -> Query:
    """``type:value`` as the CLI takes a bare hash (``pdq:HEX``, ``md5:HEX``)."""
    if ":" not in text:
        raise ValueError(f"hash {text[:12]!r}… must be written type:value, e.g. pdq:<64 hex>")
    t, v = text.split(":", 1)
    t, v = check_signal(t, v)
    return Query(t, v)
