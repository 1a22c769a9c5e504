"""Grouping the unknown: near-duplicates and shared devices form ranked candidate series."""

from __future__ import annotations

import numpy as np

from vigil.index import hex_from_codes
from vigil.triage.grouping import Unknown, group_unknown


def _near(code: str, bits: int, rng: np.random.Generator) -> str:
    v = int(code, 16)
    for b in rng.choice(256, bits, replace=False):
        v ^= 1 << int(b)
    return f"{v:064x}"


def test_near_duplicates_group_and_rank_by_size_and_device() -> None:
    rng = np.random.default_rng(3)
    seeds = hex_from_codes(rng.integers(0, 256, (6, 32), dtype=np.uint8))
    items: list[Unknown] = []

    def add(name: str, pdq: str | None, device: str | None = None, q: int = 100) -> None:
        exif = {"datetime_original": f"2026-01-0{len(items) % 9 + 1}T10:00:00"} if device else {}
        items.append(Unknown(name, pdq, q, device, exif, "JPEG"))

    for k in range(4):  # a burst of 4 near-duplicates, no device
        add(f"a{k}", _near(seeds[0], 5 * k, rng))
    for k in range(3):  # 3 near-duplicates from one camera with a serial
        add(f"b{k}", _near(seeds[1], 4 * k, rng), "cam|x1|SN1")
    add("c0", seeds[2], "cam|x1|SN9")  # two unrelated pictures, same serial camera
    add("c1", seeds[3], "cam|x1|SN9")
    add("d0", seeds[4])  # a loner: not a group
    add("e0", seeds[5], q=10)  # flat picture: PDQ not used
    add("e1", _near(seeds[5], 2, rng), q=10)
    add("f0", None, "phone|p|")  # no serial: device alone does not group
    add("f1", None, "phone|p|")

    groups = group_unknown(items, threshold=31, min_quality=50)
    by_members = {frozenset(s for s, _ in g.members): g for g in groups}
    assert set(by_members) == {frozenset({"a0", "a1", "a2", "a3"}), frozenset({"b0", "b1", "b2"}),
                               frozenset({"c0", "c1"})}
    ranks = [sorted(s for s, _ in g.members)[0][0] for g in groups]
    # a shared camera counts like 3 more members: b (3 + 3) > c (2 + 3) > a (4)
    assert ranks == ["b", "c", "a"]
    b = by_members[frozenset({"b0", "b1", "b2"})]
    assert b.device == "cam|x1|SN1" and b.summary["devices"] == {"cam|x1|SN1": 3}
    assert b.summary["capture_first"] <= b.summary["capture_last"]
    a = by_members[frozenset({"a0", "a1", "a2", "a3"})]
    assert a.device is None and sorted(d for _, d in a.members) == [0, 5, 10, 15]


def test_no_items_no_groups() -> None:
    assert group_unknown([]) == []


def test_member_distances_equal_the_pairwise_reference() -> None:
    """``describe`` measures every member against the first in one array operation; each
    distance is what ``hamming`` gives for that pair, and -1 where either has no PDQ."""
    from vigil.index import hamming
    from vigil.triage.grouping import describe

    rng = np.random.default_rng(11)
    first = hex_from_codes(rng.integers(0, 256, (1, 32), dtype=np.uint8))[0]
    codes: list[str | None] = [first, _near(first, 7, rng), None, _near(first, 40, rng),
                               first.upper(), _near(first, 1, rng)]
    items = [Unknown(f"s{k}", c, 100, None, {}, "JPEG") for k, c in enumerate(codes)]
    _, row = describe(items)
    want = [hamming(first, c) if c else -1 for c in codes]
    assert [d for _, d in row.members] == want == [0, 7, -1, 40, 0, 1]
    _, none_first = describe([Unknown("v", None, 0, None, {}, "MP4"), *items])
    assert [d for _, d in none_first.members] == [-1] * (len(items) + 1)
