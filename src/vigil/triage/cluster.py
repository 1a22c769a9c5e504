"""The hashing of ``vigil scan`` as Ray tasks, when one machine is not enough.

Why Ray: it is an existing, widely run engine that schedules Python tasks over many
machines, retries a task whose worker or node died, and is started on a cluster with one
command per machine (``ray start``) or by KubeRay. Vigil adds nothing to it but the task.

What travels: a task carries the *paths* of a chunk of units (files, or members of one
archive) and the hashing options; its worker reads the evidence from storage the
cluster shares (the same path on every node) and returns what ``vigil scan -j N``
workers return: signals, EXIF, the small greyscale thumbnail (and a video's keyframes).
Never the file's
bytes. Results land in the same scan.db through the same code, so resume, matching,
grouping, the report and every export are unchanged, and a scan begun locally can be
resumed on Ray and the reverse.

Failures: Ray re-runs a task whose worker or node was lost (``RETRIES``); results are
recorded by path, so a task run twice is recorded once and nothing is counted twice.
A chunk that still fails is split and its units retried one by one; a unit that fails
alone again is recorded as ``worker-died`` (as the local runner does), the scan goes on.

Usage statistics are off (``RAY_USAGE_STATS_ENABLED=0``) unless the operator set them.
``--ray local`` starts a private single-machine Ray whose object spill folder is inside
the scan's own folder, so no evidence-derived object lands in an unprotected ``/tmp``,
with token authentication and a token of its own there. For a cluster, its operator
sets ``ray start --object-spilling-directory`` and token authentication
(``RAY_AUTH_MODE=token``, the same token on every node and here: docs/scale.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from vigil.signals.errors import WorkerDiedError
from vigil.signals.options import HashOptions
from vigil.signals.result import FileSignals
from vigil.signals.runner import Batch, Hashed, Total, Unit, chunk_size, cut, work
from vigil.triage.raylink import SCHEDULING, ClusterError, connect

#: units per task at most: Ray's cost per task (scheduling, the driver's wait and get)
#: is what the scan pays over local workers; on a two-node loopback cluster 16 per task
#: ran at 0.69-0.70x of `-j 2`, 64 at 0.75x, 128 at 0.83x (bench/HISTORY.md). Tasks hold
#: fewer units when the files are large (``cut``) and shrink towards the end (``total``),
#: so no node is left with a long one while others idle.
CHUNK = 128
#: tasks in flight per CPU of the cluster (the next is ready when one finishes)
IN_FLIGHT_PER_CPU = 3
#: how many times Ray re-runs a task whose worker or node died
RETRIES = 3


def _hash_chunk(parts: list[tuple[int, Unit]], options: HashOptions) -> list[Hashed]:
    """One Ray task: the results of a chunk of units, read from shared storage."""
    out: list[Hashed] = []
    for uid, unit in parts:
        out.extend(work(uid, unit, options))
    return out


def _died(uid: int, unit: Unit, why: str) -> list[Hashed]:
    """Error rows for a unit whose task failed even alone: each member wanted, or the
    file (an archive listed whole is reported as the archive)."""
    paths = sorted(unit.members) if unit.archive and unit.members else [unit.path]
    return [Hashed(uid, i, FileSignals(path=p, error=WorkerDiedError(
        p, f"the Ray task hashing it failed {RETRIES + 1} times alone ({why}); not hashed")))
        for i, p in enumerate(paths)]


def _chunks(units: Iterable[Unit], total: Total, cpus: Callable[[], int]
            ) -> Iterator[list[tuple[int, Unit]]]:
    """Numbered units, read as they are needed: CHUNK at a time, fewer when they are large
    (``cut``) or once what is left (``total``: a count, or a function giving it, None while
    unknown) would not give every CPU a few tasks more."""
    it = iter(units)
    left = total
    uid = 0
    while True:
        chunk = cut(it, chunk_size(left, CHUNK, cpus() * IN_FLIGHT_PER_CPU))
        if not chunk:
            return
        if isinstance(left, int):
            left -= len(chunk)
        yield list(enumerate(chunk, uid))
        uid += len(chunk)


def run_on_ray(units: Iterable[Unit], options: HashOptions, address: str,
               spill: Path | None = None, cpus: int | None = None,
               total: Total = None) -> Iterator[Batch]:
    """Hash every unit as Ray tasks; batches as they complete (any order), like
    :func:`vigil.signals.runner.run`. ``units`` is read lazily: only the tasks in flight
    are held, so a caller may stream them from a database; ``total`` sizes the last
    tasks as it does for ``run``."""
    cluster_cpus = 1
    fresh = _chunks(units, total, lambda: cluster_cpus)
    first = next(fresh, None)
    if first is None:
        return
    ray = connect(address, spill, cpus)
    try:
        task = ray.remote(max_retries=RETRIES, num_cpus=1,
                          scheduling_strategy=SCHEDULING)(_hash_chunk)
        todo: deque[list[tuple[int, Unit]]] = deque([first])  # retries go first
        alone: set[int] = set()  # units retried alone (only those that failed)
        cluster_cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        width = cluster_cpus * IN_FLIGHT_PER_CPU
        flying: dict[Any, list[tuple[int, Unit]]] = {}
        while True:
            while len(flying) < width:
                parts = todo.popleft() if todo else next(fresh, None)
                if parts is None:
                    break
                flying[task.remote(parts, options)] = parts
            if not flying:
                break
            done, _ = ray.wait(list(flying), num_returns=1)
            for ref in done:
                parts = flying.pop(ref)
                try:
                    results: list[Hashed] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    why = type(exc).__name__
                    if len(parts) > 1 or parts[0][0] not in alone:
                        alone.update(uid for uid, _ in parts)
                        todo.extendleft([p] for p in reversed(parts))
                        continue
                    uid, unit = parts[0]
                    results = _died(uid, unit, why)
                yield Batch(results, [uid for uid, _ in parts])
    finally:
        ray.shutdown()


__all__ = ["CHUNK", "ClusterError", "connect", "run_on_ray"]
