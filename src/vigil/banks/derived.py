"""Derived PDQ codes of banked pictures: which are kept, and how the index names them.

A bank with a crop ladder keeps, with each picture's PDQ entry, the codes of its trimmed
content and of its ladder of sub-windows (``vigil.signals.crops``), in ``extra``
(``pdq_derived``). The indexes hold them in a separate Hamming index whose ids pack the
entry id and the window's number (``derived_id``), so a hit names the window that matched
without a lookup, and the matcher (``vigil.matching.variants``) decides which pairs count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vigil.signals.crops import LADDER

#: the names a banked derived code may carry, by their number in derived ids
DERIVED_WINDOWS: tuple[str, ...] = ("trimmed", *(w.name for w in LADDER))
_KNOWN = frozenset(DERIVED_WINDOWS)
#: bits of a derived id that hold the window's number
WINDOW_BITS = 7
assert len(DERIVED_WINDOWS) < 1 << WINDOW_BITS
#: derived codes flatter than this are never banked nor searched: flat pictures collide
MIN_VARIANT_QUALITY = 50
#: at most this many derived codes are read from one entry's ``extra``
MAX_DERIVED = len(DERIVED_WINDOWS)


class PackedIds:
    """Index ids that pack an entry id with the number of one of its named codes, so one
    Hamming index can hold several codes per entry and a hit names both (the derived
    windows here, the second stage's anchors in ``vigil.banks.featured``)."""

    def __init__(self, names: tuple[str, ...], bits: int) -> None:
        if len(names) > 1 << bits:
            raise ValueError(f"{len(names)} names do not fit in {bits} bits")
        self.names, self.bits = names, bits
        self._number = {n: k for k, n in enumerate(names)}

    def id(self, entry_id: int, name: str) -> int:
        """The index id of code ``name`` of entry ``entry_id``."""
        return entry_id << self.bits | self._number[name]

    def split(self, code_id: int) -> tuple[int, str]:
        """(entry id, code name) of an index id."""
        return code_id >> self.bits, self.names[code_id & ((1 << self.bits) - 1)]

    def all(self, entry_ids: Iterable[int]) -> list[int]:
        """Every index id the entries may hold (to take them out of the index)."""
        return [e << self.bits | k for e in entry_ids for k in range(len(self.names))]


_WINDOW_IDS = PackedIds(DERIVED_WINDOWS, WINDOW_BITS)
#: the derived index's id of one banked window of one entry
derived_id = _WINDOW_IDS.id
#: (entry id, window name) of a derived index id
split_derived_id = _WINDOW_IDS.split
#: every derived id the entries may hold
all_derived_ids = _WINDOW_IDS.all


def bank_codes(derived: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The derived codes worth banking: known windows, not flat."""
    return [(n, h, q) for n, h, q in derived
            if n in _KNOWN and q >= MIN_VARIANT_QUALITY][:MAX_DERIVED]


def stored_codes(entry_id: int, extra: dict[str, Any] | None) -> list[tuple[int, str]]:
    """(derived id, hex) of the codes an entry's ``extra`` holds; anything malformed (a
    peer's feed, an old export) is skipped, never trusted."""
    raw = (extra or {}).get("pdq_derived")
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw[:MAX_DERIVED]:
        if (isinstance(item, list) and len(item) == 3 and item[0] in _KNOWN
                and isinstance(item[1], str) and len(item[1]) == 64
                and isinstance(item[2], int) and item[2] >= MIN_VARIANT_QUALITY):
            try:
                bytes.fromhex(item[1])
            except ValueError:
                continue
            out.append((derived_id(entry_id, item[0]), item[1].lower()))
    return out
