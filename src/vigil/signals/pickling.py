"""Pickling frozen slotted dataclasses as plain tuples, for what crosses to and from workers.

Why: for a frozen dataclass with slots, ``dataclasses`` supplies ``__getstate__`` and
``__setstate__`` that look the class's fields up again on every call. A scan's parent
unpickles four such objects per file its workers send back (the result's digests, PDQ,
image details, the runner's envelope), and that lookup made unpickling cost about 10 µs
per file (7 µs with this), on a core the workers need. ``plain_state`` gives the class a
state that is simply its field values in order, the field names computed once. (A mutable
slotted class keeps Python's own state, a dict of its slots set in C: faster than this.)
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def plain_state(cls: type[T]) -> type[T]:
    """Class decorator (placed above ``@dataclass(frozen=True, slots=True)``): pickle
    instances as the tuple of their field values. ``copy``, equality and hashing are
    unchanged; a pickle holds exactly the values it held before."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def __getstate__(self: Any) -> tuple[Any, ...]:
        return tuple([getattr(self, n) for n in names])

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        for n, v in zip(names, state, strict=True):
            object.__setattr__(self, n, v)

    setattr(cls, "__getstate__", __getstate__)  # noqa: B010 (mypy refuses method assignment)
    setattr(cls, "__setstate__", __setstate__)  # noqa: B010
    return cls


__all__ = ["plain_state"]
