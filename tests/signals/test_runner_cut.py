"""How work is cut into tasks: by count, and by weight when files are large."""

from __future__ import annotations

from vigil.signals.options import HashOptions
from vigil.signals.runner import FILE_COST_BYTES, MAX_CHUNK, Unit, _Pool, cut

MB = 1 << 20


def _weight(units: list[Unit]) -> int:
    return sum(u.size + FILE_COST_BYTES for u in units)


def test_small_files_fill_the_count_and_large_ones_stop_at_the_weight() -> None:
    small = [Unit(f"/e/s{k}.jpg", size=30_000) for k in range(300)]
    assert len(cut(iter(small), 128)) == 128
    big = [Unit(f"/e/b{k}.jpg", size=int(1.6 * MB)) for k in range(300)]
    task = cut(iter(big), 128)
    budget = 128 * 2 * FILE_COST_BYTES
    assert 1 < len(task) < 20  # a 12 MP photo costs about twenty small ones
    assert _weight(task[:-1]) < budget <= _weight(task)  # the last unit reaches the weight


def test_every_unit_once_in_order_through_a_mixed_listing() -> None:
    sizes = [30_000] * 50 + [5 * MB] * 7 + [0] * 40 + [200 * MB] + [10_000] * 30
    units = [Unit(f"/e/f{k}", size=s) for k, s in enumerate(sizes)]
    it = iter(units)
    tasks = []
    while task := cut(it, 32):
        tasks.append(task)
    assert [u for t in tasks for u in t] == units
    assert [u.path for u in tasks[0]] == [f"/e/f{k}" for k in range(32)]
    assert any(t[-1].size == 200 * MB for t in tasks)  # a huge file ends its task
    assert all(_weight(t[:-1]) < 32 * 2 * FILE_COST_BYTES for t in tasks)


def test_an_archive_ends_a_task_when_asked() -> None:
    units = [Unit("/e/a.jpg"), Unit("/e/b.zip", archive=True), Unit("/e/c.jpg")]
    assert cut(iter(units), 10, archive_ends=True) == units[:2]
    assert cut(iter(units), 10) == units


def test_the_local_pool_plans_fewer_large_files_per_task() -> None:
    units = [Unit(f"/e/s{k}.jpg", size=30_000) for k in range(MAX_CHUNK)]
    units += [Unit(f"/e/b{k}.jpg", size=2 * MB) for k in range(MAX_CHUNK)]
    pool = _Pool(units, HashOptions(), jobs=2)
    sizes = []
    while pool._plan():
        sizes.append(len(pool.queue.popleft().parts))
    assert sizes[0] == MAX_CHUNK
    assert sum(sizes) == 2 * MAX_CHUNK and max(sizes[1:]) <= 3


def test_size_is_a_hint_not_part_of_a_units_identity() -> None:
    assert Unit("/e/a.jpg", size=5) == Unit("/e/a.jpg")
