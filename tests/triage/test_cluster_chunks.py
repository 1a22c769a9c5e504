"""How ``run_on_ray`` cuts the work into tasks (no cluster needed)."""

from __future__ import annotations

from vigil.signals.runner import Unit
from vigil.triage.cluster import CHUNK, IN_FLIGHT_PER_CPU, _chunks


def _units(n: int) -> list[Unit]:
    return [Unit(f"/e/f{k}.jpg") for k in range(n)]


def test_every_unit_once_in_order_and_tasks_shrink_at_the_end() -> None:
    n = 20 * CHUNK + 17
    chunks = list(_chunks(_units(n), n, lambda: 2))
    numbered = [p for c in chunks for p in c]
    assert numbered == list(enumerate(_units(n)))
    sizes = [len(c) for c in chunks]
    assert sizes[0] == CHUNK
    assert sizes[-1] == 1  # the last tasks are small: no node finishes a long one alone
    assert sizes == sorted(sizes, reverse=True)
    # a size never exceeds what leaves every CPU a few tasks more
    left = n
    for size in sizes:
        assert size <= max(1, left // (2 * IN_FLIGHT_PER_CPU))
        left -= size


def test_unknown_total_keeps_full_tasks_until_it_is_known() -> None:
    known: list[int | None] = [None]
    units = _units(4 * CHUNK)
    it = _chunks(units, lambda: known[0], lambda: 1)
    assert len(next(it)) == CHUNK and len(next(it)) == CHUNK
    known[0] = 2 * IN_FLIGHT_PER_CPU  # the listing ended: few left
    assert len(next(it)) == 2


def test_large_files_make_smaller_tasks() -> None:
    units = [Unit(f"/e/b{k}.jpg", size=1_600_000) for k in range(100)]
    chunks = list(_chunks(units, None, lambda: 2))
    assert [p for c in chunks for p in c] == list(enumerate(units))
    assert max(len(c) for c in chunks) <= 12  # not one task of all 100 on one node
