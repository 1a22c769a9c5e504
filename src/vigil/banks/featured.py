"""Banked pictures with local features: what the second stage searches, and how.

A picture banked in a bank with a crop ladder keeps its ORB features
(``vigil.signals.features``) in the PDQ entry's ``extra["pdq_features"]``: a base64 string
of at most ``MAX_TEXT`` (8 KiB) characters. Sensitive like the hash (never printed;
``vigil bank show`` counts them), removed with it, checked at the door like any value
(``check_features_extra``: an ``EntryRecord`` with a malformed or oversized value is
refused, naming the field).

The second stage finds its candidates by PDQ at a wide radius, among a few *anchor* codes
of each entry that has features (``ANCHORS``): its own code, the code of its trimmed
content and of its 10% and 15% centre crops (from ``pdq_derived``), and of its 17.5% and
20% centre crops (kept inside the features, ``vigil.signals.features``). A crop of 15-20%
a side lands near one of the centre crops; a query turned back from a rotation
(``vigil.signals.turns``) near the 10% or 15% one. The anchors live in their own Hamming
index, whose ids pack the entry id and the anchor's number (``anchor_id``), so that index
stays at 6 codes per picture, not the ladder's 35.
"""

from __future__ import annotations

from typing import Any

from vigil.banks.derived import MIN_VARIANT_QUALITY, PackedIds
from vigil.banks.text import FieldError
from vigil.banks.travel import FEATURES_KEY as FEATURES_KEY
from vigil.signals.features import (
    ANCHOR_NAMES,
    MAX_TEXT,
    FeatureFormatError,
    FeatureSet,
    unpack,
)

#: the codes of an entry the second stage's candidates are searched among
ANCHORS: tuple[str, ...] = ("original", "trimmed", "centre-0.1", "centre-0.15",
                            *ANCHOR_NAMES)
#: the anchors read from the stored derived codes (the others: the entry, its features)
_LADDER_ANCHORS = frozenset(ANCHORS[1:4])
#: bits of an anchor id that hold the anchor's number
ANCHOR_BITS = 3


_ANCHOR_IDS = PackedIds(ANCHORS, ANCHOR_BITS)
#: the anchor index's id of one anchor code of one entry
anchor_id = _ANCHOR_IDS.id
#: (entry id, anchor name) of an anchor index id
split_anchor_id = _ANCHOR_IDS.split
#: every anchor id the entries may hold
all_anchor_ids = _ANCHOR_IDS.all


def check_features_extra(signal_type: str, extra: dict[str, Any]) -> None:
    """Refuse (``FieldError`` on ``pdq_features``) a value this node would not write:
    not a PDQ entry's, not a string, longer than 8 KiB, or not a valid feature set."""
    if FEATURES_KEY not in extra:
        return
    if signal_type != "pdq":
        raise FieldError(FEATURES_KEY, f"only a pdq entry has features, not a {signal_type}")
    try:
        unpack(extra[FEATURES_KEY])
    except FeatureFormatError as exc:
        raise FieldError(FEATURES_KEY, str(exc)) from None


def stored_features(extra: dict[str, Any] | None) -> FeatureSet | None:
    """The features an entry's ``extra`` holds, None when it holds none or a value that
    does not read (stored before a stricter rule, or damaged): never trusted."""
    raw = (extra or {}).get(FEATURES_KEY)
    if raw is None:
        return None
    try:
        return unpack(raw)
    except FeatureFormatError:
        return None


def has_features(extra: dict[str, Any] | None) -> bool:
    """Whether an entry's ``extra`` holds a features value (checked at the door; read in
    full only when a candidate is confirmed, so an index build does not decode them all)."""
    raw = (extra or {}).get(FEATURES_KEY)
    return isinstance(raw, str) and 0 < len(raw) <= MAX_TEXT


def anchor_codes(entry_id: int, value: str, quality: int | None,
                 extra: dict[str, Any] | None) -> list[tuple[int, str]]:
    """(anchor id, hex) of an entry's anchors, when it has features that read and is not
    flat: its own code, its anchor windows among the stored derived codes, and the anchor
    codes its features carry."""
    if quality is not None and quality < MIN_VARIANT_QUALITY:
        return []
    feats = stored_features(extra)
    if feats is None:
        return []
    out = [(anchor_id(entry_id, "original"), value)]
    out += [(anchor_id(entry_id, n), hx) for n, hx in zip(ANCHOR_NAMES, feats.anchors,
                                                          strict=False)]
    raw = (extra or {}).get("pdq_derived")
    for item in raw if isinstance(raw, list) else []:
        if (isinstance(item, list) and len(item) == 3 and item[0] in _LADDER_ANCHORS
                and isinstance(item[1], str) and len(item[1]) == 64
                and isinstance(item[2], int) and item[2] >= MIN_VARIANT_QUALITY):
            try:
                bytes.fromhex(item[1])
            except ValueError:
                continue
            out.append((anchor_id(entry_id, item[0]), item[1].lower()))
    return out
