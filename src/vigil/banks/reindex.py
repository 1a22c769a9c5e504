"""Giving the pictures already in a bank a crop ladder, from the pictures themselves.

A bank filled before it had a crop ladder (or from a hash list) holds plain PDQ codes
only, and a code cannot be cropped: the ladder needs the picture. ``attach_ladders``
takes pictures hashed with the ladder (``HashOptions(crop_ladder=True)``), finds the
bank's live PDQ entries whose value is a picture's plain PDQ, and gives each the
picture's derived codes through ``Banks.apply`` (an ``update`` in the change log, so the
indexes and every peer's mirror take them as they take any change). The bank's flag is
set first: the indexes hold derived codes of banks with the flag only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vigil.banks.bank import Banks
from vigil.banks.derived import MIN_VARIANT_QUALITY, bank_codes
from vigil.banks.entry import EntryRecord
from vigil.banks.featured import FEATURES_KEY
from vigil.banks.model import ApplyResult
from vigil.banks.reader import EntryReader
from vigil.banks.travel import travelling, without_derived
from vigil.signals import FileSignals


@dataclass(slots=True)
class ReindexResult:
    """What a re-index did: counts only (never a code)."""

    #: files hashed that are pictures (have a plain PDQ)
    pictures: int = 0
    #: pictures with no derived code worth banking (flat: quality below the floor)
    flat: int = 0
    #: pictures whose plain PDQ is no live entry of the bank
    unmatched: int = 0
    #: what the bank's apply did: ``updated`` entries got a (new) ladder, ``unchanged``
    #: ones had this very ladder already
    applied: ApplyResult = field(default_factory=ApplyResult)


def attach_ladders(banks: Banks, name: str, files: Iterable[FileSignals]) -> ReindexResult:
    """Attach each picture's derived codes (and local features) to the entry of bank
    ``name`` holding its plain PDQ; sets the bank's crop-ladder flag. Refuses a mirror
    (``ReadOnlyBankError``)."""
    out = ReindexResult()
    ladders: dict[str, list[list[object]]] = {}
    laddered: list[str] = []  # the plain PDQ of each picture with a ladder
    features: dict[str, str] = {}
    for r in files:
        if r.pdq is None:
            continue
        out.pictures += 1
        codes = bank_codes((n, h.hex, h.quality) for n, h in r.pdq_derived or ())
        if codes:
            ladders[r.pdq.hex] = [list(c) for c in codes]
            laddered.append(r.pdq.hex)
            # the second stage's features, as ``vigil bank add`` keeps them
            if r.pdq_features is not None and r.pdq.quality >= MIN_VARIANT_QUALITY:
                features[r.pdq.hex] = r.pdq_features
        else:
            out.flat += 1
    banks.set_crop_ladder(name)
    found = EntryReader(banks.engine).find("pdq", sorted(ladders), [name])
    held = {e.value for e in found}
    out.unmatched = sum(v not in held for v in laddered)
    records = [EntryRecord("pdq", e.value, e.labels, e.quality, "add", e.source_id,
                           {**without_derived(e.extra), **(travelling(e.extra) or {}),
                            "pdq_derived": ladders[e.value],
                            **({FEATURES_KEY: features[e.value]} if e.value in features
                               else {})}) for e in found]
    out.applied = banks.apply(name, records, source="vigil bank reindex")
    return out
