"""Spread over fresh processes: what the benchmarks share to report min / median / max.

A figure measured once, in a process that did other work before, does not reproduce: the
C allocator's state, the Python heap, which Numba dispatchers are loaded and what the
machine's other jobs do all move it (the reference PDQ rate on corpus photos moved 2.5x
with the allocator's state alone). So each run of a measurement happens in a new
interpreter (``multiprocessing``'s spawn context: nothing inherited but the environment
and the arguments), the runs happen one after the other, never in parallel, and a figure
is reported as the minimum, median and maximum over the runs. The 1-minute load average
is recorded before and after every run, so a reader can see what else the machine did.

Usage, in a benchmark module (the measured function must be a module-level function, so
the fresh process can import it by name; arguments and results must pickle)::

    def one_run(set_name: str) -> dict[str, float]: ...

    runs = Runs()
    for _ in range(args.repeat):
        rows.append(runs.call(one_run, "bsds500"))   # a fresh process per call
    print(spread_cell([r["ref/s"] for r in rows]))  # "111 / 118 / 280"
    print(runs.load_line())
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_REPEAT = 3


def add_repeat_argument(ap: argparse.ArgumentParser, default: int = DEFAULT_REPEAT) -> None:
    """The ``--repeat N`` option every benchmark that uses this module takes."""
    ap.add_argument(
        "--repeat", type=int, default=default, metavar="N",
        help=f"runs of each measurement, each in a fresh process (default {default}; "
             "figures are min / median / max over them)",
    )


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages (a 2-core machine is full at 2.0)."""
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def in_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a new interpreter (spawn), its result returned; exceptions re-raised."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


@dataclass
class Runs:
    """Runs measurements one at a time in fresh processes and keeps the load averages."""

    started: tuple[float, float, float] = field(default_factory=load_average)
    per_run: list[tuple[float, float]] = field(default_factory=list)  # 1-min before, after
    seconds: float = 0.0

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a fresh process (spawn), with the load average around it."""
        return self.record(lambda: in_fresh_process(fn, *args))

    def record(self, run: Callable[[], T]) -> T:
        """Any run that already starts its own fresh process (e.g. ``subprocess.run``)."""
        before = load_average()[0]
        t = time.perf_counter()
        out = run()
        self.seconds += time.perf_counter() - t
        self.per_run.append((before, load_average()[0]))
        return out

    def load_line(self) -> str:
        """One line for under a table: the load average at start and end, and over the runs."""
        end = load_average()
        seen = [x for pair in self.per_run for x in pair]
        n = len(self.per_run)
        runs = f"; 1-min over {_plural(n, 'run')} {min(seen):.2f}–{max(seen):.2f}" if seen else ""
        return (
            f"load average (1/5/15 min) at start {_three(self.started)}, at end {_three(end)}"
            f"{runs}; {self.seconds:.0f} s in the runs"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _three(x: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in x)


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of a figure over runs."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no runs")
        return cls(tuple(float(v) for v in values))

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def cell(self, fmt: str = "{:,.1f}", suffix: str = "") -> str:
        """``min / median / max`` (one value if every run gave the same formatted figure)."""
        parts = [fmt.format(v) + suffix for v in (self.min, self.median, self.max)]
        return parts[0] if len(set(parts)) == 1 else " / ".join(parts)


def spread_cell(values: Sequence[float], fmt: str = "{:,.1f}", suffix: str = "") -> str:
    """Shorthand for ``Spread.of(values).cell(fmt, suffix)``."""
    return Spread.of(values).cell(fmt, suffix)


def verdict(values: Sequence[float], target: float, higher_is_better: bool = True) -> str:
    """Whether every run met a target: judged on the worst run, not the median."""
    s = Spread.of(values)
    worst = s.min if higher_is_better else s.max
    ok = worst >= target if higher_is_better else worst <= target
    if ok:
        return "met (every run)"
    best = s.max if higher_is_better else s.min
    some = best >= target if higher_is_better else best <= target
    return "missed in some runs" if some else "missed"


SPREAD_NOTE = (
    "cells: min / median / max over the runs (one value when all runs agree); "
    "each run in a fresh process"
)
