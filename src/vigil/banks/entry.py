"""Entries as the domain sees them: a signal plus labels, independent of storage and format.

Readers of interchange formats produce ``EntryRecord``s, writers consume them, and the
bank layer stores them. Keeping one shape in the middle means every format converts once
(to or from this), never format-to-format.

Building a ``Labels`` or an ``EntryRecord`` is the door: every label, source id and
signal is checked against the rules of ``vigil.banks.text`` there, whoever supplies it
(a format reader, the API, the CLI, a peer's feed), and refused with a
:class:`~vigil.banks.text.FieldError` naming the field. What is read back from the store
passed that door when it was written; ``stored_labels`` and ``stored_record`` rebuild it
without checking again, so a rule made stricter later never makes a bank unreadable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from vigil.banks.text import (
    NOTE_MAX,
    OPAQUE_VALUE_MAX,
    SERIES_MAX,
    SOURCE_ID_MAX,
    TAGS_MAX,
    FieldError,
    free_text,
    label,
    tag,
)
from vigil.banks.travel import DERIVED_KEYS, FEATURES_KEY, check_derived
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
#: an opaque type's name: it becomes an XML element name in NCMEC XML, hence the letter first
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")


def check_signal(signal_type: str, value: str) -> tuple[str, str]:
    """Normalise and validate a signal; raise ValueError naming the problem.

    Known types must be lowercase hex of the right length (uppercase is accepted and
    lowered). Other type names (e.g. PhotoDNA, a partner's proprietary hash) are kept as
    opaque strings so they survive a round trip; they can only match exactly. An opaque
    type's name is a lowercase letter, then up to 31 of a-z, 0-9, ``_ . -``; its value
    is label text (``vigil.banks.text``) of at most 1024 characters.
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
    if not _NAME.fullmatch(t):
        raise ValueError(f"invalid signal type name {signal_type!r}: a lowercase letter, then "
                         "up to 31 of a-z, 0-9, _ . -")
    if not v:
        raise ValueError(f"empty {t} value")
    try:
        return t, label(v, "value", OPAQUE_VALUE_MAX)
    except FieldError as exc:
        raise ValueError(f"{t} value: {exc.reason}") from None



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
            raise FieldError("victim_status", f"must be one of {', '.join(VICTIM_STATUSES)}, "
                             f"got {self.victim_status!r}")
        # (each first tries the common case, one line of plain ASCII, without a call: this
        # runs for every record an import reads)
        s = self.series
        if s is not None and not (type(s) is str and s.isascii() and s.isprintable()
                                  and 0 < len(s) <= SERIES_MAX and s[0] != " " != s[-1]):
            # an empty series or note is none
            object.__setattr__(self, "series", label(s, "series", SERIES_MAX)
                               if _text(s) else None)
        s = self.note
        if s is not None and not (type(s) is str and s.isascii() and s.isprintable()
                                  and 0 < len(s) <= NOTE_MAX and s[0] != " " != s[-1]):
            object.__setattr__(self, "note", free_text(s, "note") or None)
        tags = self.tags
        if tags:
            if len(tags) > TAGS_MAX:
                raise FieldError("tags", f"at most {TAGS_MAX} tags, not {len(tags)}")
            object.__setattr__(self, "tags", tuple(sorted({tag(t) for t in tags if _text(t)})))
        elif type(tags) is not tuple:
            object.__setattr__(self, "tags", ())


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One record of an interchange file: add a signal with labels, or remove it (tombstone).

    ``source_id`` is the record's id in its source (VICS MediaID, NCMEC id, StopNCII hash
    id) so a later delta from the same source can address it. ``extra`` carries fields we
    do not interpret (media size, MIME type, file names) so that export can give them back,
    and a picture's derived data (``vigil.banks.travel``), which is checked here.
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
        if FEATURES_KEY in self.extra:
            # imported here: reading a feature set needs the hashing stack, which a
            # one-off `vigil peer sync` never loads (tests/exchange/test_cli_lazy.py)
            from vigil.banks.featured import check_features_extra

            check_features_extra(self.signal_type, self.extra)
        if self.source_id is not None:
            object.__setattr__(self, "source_id",
                               label(self.source_id, "source_id", SOURCE_ID_MAX)
                               if _text(self.source_id) else None)
        extra = self.extra
        if extra and any(k in extra for k in DERIVED_KEYS):
            # derived data (codes of a picture's windows, its features) is sensitive and
            # indexed: checked here, whoever supplies it (a feed, an import)
            if t != "pdq":
                raise ValueError(f"{t} entry: only a pdq entry carries derived data "
                                 f"({', '.join(DERIVED_KEYS)})")
            object.__setattr__(self, "extra", {**extra, **check_derived(
                {k: extra[k] for k in DERIVED_KEYS if k in extra})})


def _text(value: object) -> bool:
    """Whether ``value`` holds anything but white space (non-text is left to the check)."""
    return type(value) is not str or (bool(value) and not value.isspace())


def stored_labels(category: tuple[str, str] | None, series: str | None,
                  victim_status: VictimStatus, tags: tuple[str, ...],
                  note: str | None) -> Labels:
    """Labels as the store holds them, rebuilt without the door's checks (see the module
    docstring): they were checked when written, perhaps by rules since made stricter."""
    lab = object.__new__(Labels)
    for k, v in (("category", category), ("series", series), ("victim_status", victim_status),
                 ("tags", tags), ("note", note)):
        object.__setattr__(lab, k, v)
    return lab


def stored_record(signal_type: str, value: str, labels: Labels, quality: int | None, op: Op,
                  source_id: str | None, extra: dict[str, Any]) -> EntryRecord:
    """An ``EntryRecord`` of a stored entry, rebuilt without the door's checks."""
    rec = object.__new__(EntryRecord)
    for k, v in (("signal_type", signal_type), ("value", value), ("labels", labels),
                 ("quality", quality), ("op", op), ("source_id", source_id),
                 ("extra", extra)):
        object.__setattr__(rec, k, v)
    return rec
