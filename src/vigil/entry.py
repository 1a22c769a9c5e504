"""Entries as the domain sees them: a signal plus labels, independent of storage and format.

Readers of interchange formats produce ``EntryRecord``s, writers consume them, and the
bank layer stores them. Keeping one shape in the middle means every format converts once
(to or from this), never format-to-format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from vigil.schemes import check_category

VictimStatus = Literal["unknown", "unidentified", "identified"]
VICTIM_STATUSES: tuple[str, ...] = ("unknown", "unidentified", "identified")
Op = Literal["add", "remove"]

#: Signal types Vigil computes or matches, with the exact length of their hex value.
HEX_LENGTHS: dict[str, int] = {"pdq": 64, "md5": 32, "sha1": 40, "sha256": 64,
                               # a video's frame-hash list, named by the SHA-256 of its text
                               "vpdq": 64}
#: Signal types carried through as opaque data (never computed, matched only exactly).
OPAQUE_TYPES = ("photodna",)
_HEX = re.compile(r"^[0-9a-f]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_signal(signal_type: str, value: str) -> tuple[str, str]:
    """Normalise and validate a signal; raise ValueError naming the problem.

    Known types must be lowercase hex of the right length (uppercase is accepted and
    lowered). Other type names (e.g. PhotoDNA, a partner's proprietary hash) are kept as
    opaque strings so they survive a round trip; they can only match exactly.
    """
    t = signal_type.strip().lower()
    v = value.strip()
    if t in HEX_LENGTHS:
        v = v.lower()
        if len(v) != HEX_LENGTHS[t]:
            raise ValueError(f"{t} value must be {HEX_LENGTHS[t]} hex characters, got {len(v)}")
        if not _HEX.match(v):
            raise ValueError(f"{t} value must be hexadecimal (0-9, a-f)")
        return t, v
    if not _NAME.match(t):
        raise ValueError(f"invalid signal type name {signal_type!r}")
    if not v:
        raise ValueError(f"empty {t} value")
    return t, v


@dataclass(frozen=True, slots=True)
class Labels:
    """What an agency says about a signal. ``category`` is (scheme, value) or None."""

    category: tuple[str, str] | None = None
    series: str | None = None
    victim_status: VictimStatus = "unknown"
    tags: tuple[str, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        if self.category is not None:
            object.__setattr__(self, "category", check_category(*self.category))
        if self.victim_status not in VICTIM_STATUSES:
            raise ValueError(f"victim_status must be one of {', '.join(VICTIM_STATUSES)}, "
                             f"got {self.victim_status!r}")
        object.__setattr__(self, "tags", tuple(sorted({t.strip() for t in self.tags if t.strip()})))


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One record of an interchange file: add a signal with labels, or remove it (tombstone).

    ``source_id`` is the record's id in its source (VICS MediaID, NCMEC id, StopNCII hash
    id) so a later delta from the same source can address it. ``extra`` carries fields we
    do not interpret (media size, MIME type, file names) so that export can give them back.
    """

    signal_type: str
    value: str
    labels: Labels = field(default_factory=Labels)
    quality: int | None = None
    op: Op = "add"
    source_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t, v = check_signal(self.signal_type, self.value)
        object.__setattr__(self, "signal_type", t)
        object.__setattr__(self, "value", v)
        if self.quality is not None and not 0 <= self.quality <= 100:
            raise ValueError(f"quality must be 0..100, got {self.quality}")
        if self.op not in ("add", "remove"):
            raise ValueError(f"op must be add or remove, got {self.op!r}")
