"""A hit on a self-submitted (unverified) entry never opens a takedown notice: the
schedule's match keeps only verified entries, however the bank is named (a peer's
mirror of a self-submission bank carries the same tags)."""

from __future__ import annotations

from vigil.banks import Labels, StoredEntry
from vigil.matching import Match
from vigil.takedown.schedule import _verified


def _match(entry_id: int, bank: str, tags: tuple[str, ...]) -> Match:
    e = StoredEntry(entry_id, bank, "SG-SPF", "pdq", "0" * 64, 90, Labels(tags=tags),
                    "SG-SPF", None, None, entry_id, False, {})
    return Match(e, "pdq", 3)


def test_unverified_entries_are_leads_not_notices() -> None:
    known = _match(1, "sg-known", ())
    own = _match(2, "self-submitted", ("self-submitted", "unverified"))
    mirrored = _match(3, "SG-SPF.self-submitted", ("concern:under-18", "unverified"))
    assert _verified([known, own, mirrored]) == [known]
    assert _verified([own, mirrored]) == []
