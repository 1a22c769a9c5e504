"""The two seams the matcher depends on: where entries come from, and how signals are searched.

Why protocols and not base classes: the CLI reads the store directly (``EntryReader``,
``BankIndexes``), while a server reads through its caches and under its index lock
(``vigil.api.runtime``). Both sides implement these small interfaces on their own; the
type checker holds each to the same shape, and one contract test
(``tests/matching/test_contract.py``) runs the same assertions against every
implementation, so a method one side forgot fails before it reaches a user. They are
runtime-checkable too, for that test's ``isinstance`` (which sees only that the methods
exist; their signatures are the type checker's to hold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from vigil.banks.model import StoredEntry
from vigil.index import DIGEST_SIZES, SearchResult
from vigil.index.arrays import Codes
from vigil.index.video import VideoMatch
from vigil.signals.vpdq import VpdqFrame

#: the exact-digest signal types and their sizes in bytes (every other non-PDQ, non-video
#: type is opaque: matched by exact value in the store)
EXACT_TYPES: Mapping[str, int] = DIGEST_SIZES

#: bank id -> (bank name, owning agency)
BankDirectory = Mapping[int, tuple[str, str]]


@runtime_checkable
class EntrySource(Protocol):
    """Entries of the store, by id and by value, and the names of its banks."""

    def names(self) -> set[str]:
        """Every bank's name."""
        ...

    def by_ids(self, ids: Iterable[int], banks: BankDirectory | None = None,
               ) -> dict[int, StoredEntry]:
        """Entries by id, removed ones included (the caller decides what a removal means).

        ``banks``: bank id -> (name, agency) when the caller holds it, so the source need
        not read it again."""
        ...

    def find(self, signal_type: str, values: list[str], bank_names: list[str] | None = None,
             banks: BankDirectory | None = None) -> list[StoredEntry]:
        """Live entries whose value is exactly one of ``values``."""
        ...


@runtime_checkable
class SignalIndex(Protocol):
    """Search over every bank's live signals; hits are entry ids."""

    def search_pdq(self, codes: Codes, radius: int) -> SearchResult:
        """Every PDQ code within ``radius`` bits of each query code (n x 32 bytes)."""
        ...

    def search_pdq_derived(self, codes: Codes, radius: int) -> SearchResult:
        """Every banked derived PDQ code (``vigil.matching.variants``) within ``radius``
        bits of each query code; hit ids are derived ids (entry id and window)."""
        ...

    def search_pdq_featured(self, codes: Codes, radius: int) -> SearchResult:
        """Every anchor code of a banked picture with local features
        (``vigil.banks.featured``) within ``radius`` bits of each query code; hit ids are
        anchor ids (entry id and anchor)."""
        ...

    def lookup(self, signal_type: str, values: list[str]) -> SearchResult:
        """Exact digests (``EXACT_TYPES``) by value."""
        ...

    def search_videos(self, queries: Sequence[Sequence[VpdqFrame]]) -> list[list[VideoMatch]]:
        """Banked videos that match each query video's frames (vPDQ semantics)."""
        ...
