"""Hashing many files in worker processes that may die: one runner for every command.

``vigil scan``, ``vigil hash -j``, ``vigil match`` and ``vigil bank add`` hand their work
here as units — a file, or the members of one outermost archive (read in one pass: a
compressed tar has no random access) — and get results back in batches, so the parent
does little per file.

Why not ``multiprocessing.Pool``: when a pool worker is killed (``kill -9``, the kernel's
OOM killer, a crash in a decoder), the pool waits forever for the task it held. Here each
worker has its own pipe, the parent watches every worker's process sentinel, and knows
which work each one holds. When a worker dies:

* the work it held that had not come back is retried once, in *careful* mode: one file
  per task, and for an archive a "begin" message before each member, so a second death
  names the exact file in flight;
* a file in flight at two deaths is recorded as an error, ``worker-died``, and the run
  goes on with a new worker. Every other file's result is what an undisturbed run gives.

Workers are started from a fork server that has imported the hashing code and loaded its
compiled kernels once (``vigil.signals.preload``: fast to start, and no fork of a parent
that runs threads such as a progress bar). ``vigil.signals.forkstart.start_early`` starts
that server in the background, so a caller can do its own preparation (imports, a scan's
listing) meanwhile. Workers ignore Ctrl-C (the parent stops them) and exit when the
parent's end of their pipe closes, so ``kill -9`` of the parent leaves no worker behind.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Protocol, cast

from vigil.signals.errors import UnreadableFileError, WorkerDiedError
from vigil.signals.evidence import SEP, Item, iter_archive_contents
from vigil.signals.forkstart import context
from vigil.signals.options import HashOptions
from vigil.signals.pickling import plain_state
from vigil.signals.pipeline import hash_bytes, hash_item
from vigil.signals.result import FileSignals


class _Where(Protocol):
    """Two integers in memory shared with a worker: (part, ordinal) of the file it began."""

    def __getitem__(self, i: int, /) -> int: ...

    def __setitem__(self, i: int, value: int, /) -> None: ...

#: Largest number of plain files handed to a worker at once (one message each way).
MAX_CHUNK = 32
#: What hashing a file costs beside its bytes, counted in bytes: how tasks are balanced.
#: On the benchmark seizure a 38 KB photo took 1.7 ms and a 1.6 MB 12 MP photo 33 ms: about
#: 0.9 ms plus 20 ns per byte, a fixed part worth ~45 KB; rounded up, which errs towards
#: smaller tasks of large files.
FILE_COST_BYTES = 64 << 10
#: A worker sends what it has at least this often (seconds), and every this many results.
FLUSH_SECONDS = 0.5
FLUSH_RESULTS = 64
#: Ordinal of an error about an archive as a whole when its worker died before listing it.
LAST = 1 << 62
#: How many units there are (None: unknown), or a function giving how many are left.
Total = int | Callable[[], int | None] | None


@plain_state
@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work: a file, or members of one outermost archive (``archive=True``).

    ``members`` names the members wanted (virtual paths); None means every item under the
    archive, archive-level errors included. ``size`` is the bytes to read as listed (0:
    unknown), used only to balance tasks (``cut``): a task of a hundred 12 MP photos
    takes twenty times as long as one of a hundred thumbnails.
    """

    path: str
    archive: bool = False
    members: frozenset[str] | None = None
    size: int = field(default=0, compare=False)


@plain_state
@dataclass(frozen=True, slots=True)
class Hashed:
    """One result: of which unit, where in it (0 for a file; archive order for members)."""

    unit: int
    ordinal: int
    result: FileSignals


@dataclass(slots=True)
class Batch:
    """What came back at once: results, and the units now complete."""

    results: list[Hashed] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


class RunnerError(RuntimeError):
    """The work cannot go on: worker processes die before they hash anything."""


# --------------------------------------------------------------------------- the work


def _member(item: Item, data: bytes | None, options: HashOptions) -> FileSignals:
    if item.error is not None:
        return FileSignals(path=item.path, error=item.error, flags=item.flags)
    if data is None:  # pragma: no cover - the walker gives data for every readable member
        return FileSignals(path=item.path, flags=item.flags,
                           error=UnreadableFileError(item.path, "member could not be read"))
    result = hash_bytes(data, item.path, options)
    result.flags = item.flags
    return result


def work(uid: int, unit: Unit, options: HashOptions, skip: frozenset[str] = frozenset(),
         fail: frozenset[int] = frozenset(),
         begin: Callable[[int], None] | None = None) -> Iterator[Hashed]:
    """The results of one unit, in order.

    ``begin(ordinal)`` is called before each file is read (so a death can be pinned on
    it: for an archive, reading a member is part of the risk); paths in ``skip`` (already
    reported) are passed over without being read; ordinals in ``fail`` (in flight at two
    deaths) are reported as ``worker-died`` without being read again.
    """
    if not unit.archive:
        if begin is not None:
            begin(0)
        yield Hashed(uid, 0, hash_item(unit.path, options))
        return
    ordinal = 0

    def wanted(path: str) -> bool:
        return (path not in skip and ordinal not in fail
                and (unit.members is None or path in unit.members))

    if begin is not None:
        begin(0)
    for item, data in iter_archive_contents(unit.path, options.limits, wanted):
        if item.path not in skip and (unit.members is None or item.path in unit.members):
            if ordinal in fail:
                yield Hashed(uid, ordinal, _died(item.path))
            else:
                yield Hashed(uid, ordinal, _member(item, data, options))
        ordinal += 1
        if begin is not None:
            begin(ordinal)  # reading the next item starts now


def _died(path: str) -> FileSignals:
    return FileSignals(path=path, error=WorkerDiedError(
        path, "the worker process hashing it died twice (killed, out of memory, or a crash "
              "in a decoder); not hashed"))


# --------------------------------------------------------------------------- messages


@plain_state
@dataclass(frozen=True, slots=True)
class _Part:
    """A unit as handed to a worker: what was already reported, what to fail."""

    uid: int
    unit: Unit
    skip: frozenset[str] = frozenset()
    fail: frozenset[int] = frozenset()


@plain_state
@dataclass(frozen=True, slots=True)
class _Task:
    id: int
    parts: tuple[_Part, ...]


@plain_state
@dataclass(frozen=True, slots=True)
class _Results:
    task: int
    results: list[Hashed]
    finished: list[int]
    task_done: bool


def _worker(conn: Connection, where: _Where,
            options: HashOptions) -> None:
    """A worker process: tasks in, results out, until the parent closes the pipe.

    Before each file it writes (part, ordinal) into ``where``, memory shared with the
    parent, which reads it only if this process dies: no message per file.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):
                return
            if not isinstance(task, _Task):
                return
            _run_task(conn, where, task, options)
    except (EOFError, OSError):
        return  # the parent is gone


def _run_task(conn: Connection, where: _Where, task: _Task,
              options: HashOptions) -> None:
    out: list[Hashed] = []
    finished: list[int] = []
    last = time.monotonic()
    for k, part in enumerate(task.parts):
        def begin(ordinal: int, k: int = k) -> None:
            where[0], where[1] = k, ordinal

        for hashed in work(part.uid, part.unit, options, part.skip, part.fail, begin):
            out.append(hashed)
            if not part.unit.archive:
                finished.append(part.uid)  # a file's one result completes it
            if len(out) >= FLUSH_RESULTS or time.monotonic() - last >= FLUSH_SECONDS:
                conn.send(_Results(task.id, out, finished, False))
                out, finished, last = [], [], time.monotonic()
        if part.unit.archive:
            finished.append(part.uid)
    conn.send(_Results(task.id, out, finished, True))


# --------------------------------------------------------------------------- the parent


def cut(units: Iterator[Unit], count: int, archive_ends: bool = False) -> list[Unit]:
    """The next task's units: ``count`` of them, or fewer once they weigh as much as
    ``count`` files of 64 KB (each weighs its size plus ``FILE_COST_BYTES``), so a task of
    large files is no longer than one of small ones. The unit that reaches the weight (or,
    with ``archive_ends``, an archive) is the last taken: a unit is never split."""
    budget = count * 2 * FILE_COST_BYTES
    out: list[Unit] = []
    for unit in units:
        out.append(unit)
        budget -= unit.size + FILE_COST_BYTES
        if len(out) >= count or budget <= 0 or (archive_ends and unit.archive):
            break
    return out


def chunk_size(total: Total, cap: int, slots: int) -> int:
    """Units per task: ``cap`` while what is left (``total``: a count, or a function giving
    it; None while unknown) still gives each of ``slots`` several tasks, fewer towards the
    end so no worker is left finishing a long task while the others idle."""
    n = total() if callable(total) else total
    return cap if n is None else max(1, min(cap, n // slots))


@dataclass(slots=True)
class _Slot:
    process: BaseProcess
    conn: Connection
    where: _Where
    task: _Task | None = None


class _Pool:
    """Worker processes, the work each holds, and what to do when one dies."""

    def __init__(self, units: Iterable[Unit], options: HashOptions, jobs: int,
                 total: Total = None) -> None:
        self.units = iter(units)
        #: units not yet planned (None: unknown, chunks stay at their largest), or how to
        #: ask the units' source
        self.left = total
        self.options = options
        self.jobs = jobs
        self.queue: deque[_Task] = deque()
        self.slots: list[_Slot] = []
        # Both only for units of tasks in flight: dropped when a task completes, so the
        # parent holds nothing per finished file.
        self.reported: dict[int, set[str]] = {}
        self.done: set[int] = set()
        self.deaths: dict[tuple[int, int], int] = {}
        #: deaths in a row of workers that had not begun their task
        self.barren = 0
        self.next_task = 0
        self.next_uid = 0
        self.ctx = context()

    def _task(self, parts: Iterable[_Part]) -> _Task:
        self.next_task += 1
        return _Task(self.next_task, tuple(parts))

    def _plan(self) -> bool:
        """The next task from the units, planned only when the queue runs dry, so units
        are read lazily: plain files in chunks (``cut``: fewer when they are large, and
        smaller towards the end, to keep every worker busy), an archive on its own. False
        when no units are left."""
        if self.queue:
            return True
        parts: list[_Part] = []
        for unit in cut(self.units, chunk_size(self.left, MAX_CHUNK, self.jobs * 4), True):
            part = _Part(self.next_uid, unit)
            self.next_uid += 1
            if isinstance(self.left, int):
                self.left -= 1
            if unit.archive:
                self.queue.append(self._task([part]))
            else:
                parts.append(part)
        if parts:
            self.queue.appendleft(self._task(parts))
        return bool(self.queue)

    def _start(self) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        where = cast(_Where, self.ctx.Array("q", 2, lock=False))
        process = self.ctx.Process(target=_worker, args=(child, where, self.options),
                                   daemon=True, name="vigil-hash-worker")
        process.start()
        child.close()  # the worker's end lives in the worker only: its death closes it
        return _Slot(process, parent, where)

    def run(self) -> Iterator[Batch]:
        try:
            while self._plan() or any(s.task is not None for s in self.slots):
                self._assign()
                busy = [s for s in self.slots if s.task is not None]
                ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy]))
                for slot in busy:
                    if slot.conn in ready or slot.process.sentinel in ready:
                        yield from self._serve(slot)
        finally:
            self._stop()

    def _assign(self) -> None:
        self.slots = [s for s in self.slots if s.task is not None or s.process.is_alive()]
        idle = [s for s in self.slots if s.task is None]
        while (self.queue or self._plan()) and (idle or len(self.slots) < self.jobs):
            if idle:
                slot = idle.pop()
            else:
                slot = self._start()
                self.slots.append(slot)
            task = self.queue.popleft()
            slot.where[0], slot.where[1] = -1, -1
            try:
                slot.conn.send(task)
            except OSError:  # it died while idle: nothing of this task was begun
                self.queue.appendleft(task)
                self.slots.remove(slot)
                slot.conn.close()
                continue
            slot.task = task

    def _serve(self, slot: _Slot) -> Iterator[Batch]:
        """Everything the worker sent; then, if it died, what its death means."""
        dead = False
        try:
            while slot.conn.poll():
                yield self._receive(slot, slot.conn.recv())
        except (EOFError, OSError):
            dead = True
        if dead or not slot.process.is_alive():
            yield self._died(slot)

    def _receive(self, slot: _Slot, msg: object) -> Batch:
        if not isinstance(msg, _Results):  # pragma: no cover - our own protocol
            return Batch()
        for h in msg.results:
            self.reported.setdefault(h.unit, set()).add(h.result.path)
        if msg.results:
            self.barren = 0
        self.done.update(msg.finished)
        if msg.task_done:
            if slot.task is not None:
                for p in slot.task.parts:
                    self.done.discard(p.uid)
                    self.reported.pop(p.uid, None)
            slot.task = None
        return Batch(list(msg.results), list(msg.finished))

    def _died(self, slot: _Slot) -> Batch:
        """Retry what the dead worker held; the file in flight at a second death fails."""
        slot.process.join(timeout=5)
        slot.conn.close()
        self.slots.remove(slot)
        task, k, ordinal = slot.task, int(slot.where[0]), int(slot.where[1])
        out = Batch()
        if task is None:
            return out
        left = [p for p in task.parts if p.uid not in self.done]
        if not left:
            return out
        if not 0 <= k < len(task.parts) or task.parts[k].uid in self.done:
            # It died before beginning anything: not a file's doing. Retry as it was,
            # unless workers keep dying at start (a broken installation, no memory).
            self.barren += 1
            if self.barren > 2 * self.jobs + 2:
                raise RunnerError("worker processes keep dying before they hash anything; "
                                  "see the messages above")
            self.queue.appendleft(self._task(
                _Part(p.uid, p.unit, frozenset(self.reported.get(p.uid, ())), p.fail)
                for p in left))
            return out
        culprit = task.parts[k]
        key = (culprit.uid, ordinal)
        deaths = self.deaths[key] = self.deaths.get(key, 0) + 1
        retry: list[_Part] = []
        for part in left:
            seen = frozenset(self.reported.get(part.uid, ()))
            if part is not culprit or deaths < 2:
                retry.append(_Part(part.uid, part.unit, seen, part.fail))
            elif not part.unit.archive:
                out.results.append(Hashed(part.uid, 0, _died(part.unit.path)))
                out.finished.append(part.uid)
                self.done.add(part.uid)
            elif deaths == 2:
                retry.append(_Part(part.uid, part.unit, seen, part.fail | {ordinal}))
            else:  # dies even without reading the member: the archive itself kills workers
                wanted = part.unit.members or {part.unit.path + SEP}
                out.results += [Hashed(part.uid, LAST, _died(p)) for p in sorted(wanted - seen)]
                out.finished.append(part.uid)
                self.done.add(part.uid)
        plain = [p for p in retry if not p.unit.archive]
        if plain:
            self.queue.appendleft(self._task(plain))
        for part in retry:
            if part.unit.archive:
                self.queue.appendleft(self._task([part]))
        return out

    def _stop(self) -> None:
        for slot in self.slots:
            slot.conn.close()  # an idle worker sees the pipe close and exits
        for slot in self.slots:
            slot.process.join(timeout=0.5 if slot.task is None else 0)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=5)
        self.slots = []


def run(units: Iterable[Unit], options: HashOptions, jobs: int = 1,
        total: Total = None) -> Iterator[Batch]:
    """Hash every unit, ``jobs`` worker processes at a time; batches as they complete.

    ``units`` is read lazily, as workers need work, so a caller may stream them from a
    database; ``total`` (how many there are, when known; or a function giving how many
    are left to read, None while unknown) sizes the chunks so every worker stays busy to
    the end. Unit indexes in the batches count from 0 in ``units`` order.
    With ``jobs <= 1`` the work runs in this process, in order, and a crash is this
    process's. Otherwise results of different units come back in any order
    (``in_order`` restores input order).
    """
    if jobs <= 1:
        for uid, unit in enumerate(units):
            batch = Batch()
            for hashed in work(uid, unit, options):
                batch.results.append(hashed)
                if len(batch.results) >= FLUSH_RESULTS:
                    yield batch
                    batch = Batch()
            batch.finished.append(uid)
            yield batch
        return
    yield from _Pool(units, options, jobs, total).run()


def in_order(batches: Iterable[Batch]) -> Iterator[tuple[int, FileSignals]]:
    """(unit index, result) in unit order and, within an archive, in archive order."""
    waiting: dict[int, list[Hashed]] = {}
    finished: set[int] = set()
    nxt = 0
    for batch in batches:
        for h in batch.results:
            waiting.setdefault(h.unit, []).append(h)
        finished.update(batch.finished)
        while nxt in finished:
            for h in sorted(waiting.pop(nxt, []), key=lambda h: h.ordinal):
                yield nxt, h.result
            nxt += 1
