"""Packed index ids: an entry id and a code's name in one int64, both read back."""

from __future__ import annotations

import pytest

from vigil.banks.derived import DERIVED_WINDOWS, PackedIds, all_derived_ids, derived_id
from vigil.banks.featured import ANCHORS, all_anchor_ids, anchor_id, split_anchor_id


def test_ids_round_trip_and_all_covers_every_name() -> None:
    for names, make, every in ((ANCHORS, anchor_id, all_anchor_ids),
                               (DERIVED_WINDOWS, derived_id, all_derived_ids)):
        ids = [make(e, n) for e in (0, 7, 2**40) for n in names]
        assert len(set(ids)) == len(ids)
        assert sorted(ids) == sorted(every([0, 7, 2**40]))
    assert split_anchor_id(anchor_id(12345, ANCHORS[-1])) == (12345, ANCHORS[-1])


def test_names_must_fit_their_bits() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        PackedIds(("a", "b", "c"), 1)
