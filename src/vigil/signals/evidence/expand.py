"""Expansion of one archive, nested archives included, without recursion.

Nested archives are read into memory (bounded by ``Limits.max_nested_archive_size``)
because zip needs random access, and pushed on an explicit stack, so hostile nesting can
cost neither the call stack nor more than ``Limits.max_archive_depth`` levels.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from typing import IO

from vigil.signals.evidence.budget import read_all
from vigil.signals.evidence.errors import (
    TooDeepError,
    TooLargeError,
    UnreadableSourceError,
    as_source_error,
)
from vigil.signals.evidence.items import Item, Limits, Member
from vigil.signals.evidence.names import SEP
from vigil.signals.evidence.sniffing import sniff_stream
from vigil.signals.evidence.tars import tar_members
from vigil.signals.evidence.zips import zip_members

Members = Generator[Member, None, None]


def members(archive: str, kind: str, fh: IO[bytes], stored_size: int,
            limits: Limits) -> Members:
    """The members of one archive (not recursing), ending with an archive-level error
    member if any. Never raises."""
    try:
        fh.seek(0)
    except (OSError, ValueError) as exc:
        yield Member("", error=UnreadableSourceError(archive, str(exc)))
        return
    if kind == "zip":
        yield from zip_members(archive, fh, stored_size, limits)
    else:
        yield from tar_members(archive, kind, fh, stored_size, limits)


def expand(archive: str, kind: str, fh: IO[bytes], stored_size: int, depth: int,
           limits: Limits, want: Callable[[str], bool] | None
           ) -> Iterator[tuple[Item, bytes | None]]:
    """Every item under the archive at ``archive`` (itself at ``depth``), depth first.

    Data is returned for readable items whose path ``want`` accepts (None: no data, a
    listing); nested archives are always read (to open them). Never raises: problems are
    error items.
    """
    stack: list[tuple[Members, str, int]] = []

    def push(path: str, k: str, f: IO[bytes], size: int, d: int) -> Item | None:
        if d + 1 > limits.max_archive_depth:
            return Item(path + SEP, None, None, path, d + 1, TooDeepError(
                path, f"archive nested {d} deep; members beyond depth "
                      f"{limits.max_archive_depth} not listed"))
        stack.append((members(path, k, f, size, limits), path, d + 1))
        return None

    first = push(archive, kind, fh, stored_size, depth)
    if first is not None:
        yield first, None
        return
    try:
        while stack:
            gen, container, d = stack[-1]
            try:
                member = next(gen, None)
            except Exception as exc:  # defensive: a reader failing in a way not foreseen
                stack.pop()
                yield Item(container + SEP, None, None, container, d,
                           as_source_error(exc, container)), None
                continue
            if member is None:
                stack.pop()
                continue
            path = container + SEP + member.name
            if member.error is not None or member.open is None:
                yield Item(path, member.size, member.mtime, container, d, member.error,
                           flags=member.flags, original=member.original), None
                continue
            try:
                with member.open() as f:
                    sub, head = sniff_stream(f)
                    data: bytes | None = None
                    wanted = want is not None and want(path)
                    if wanted:
                        data = read_all(f, limits.max_member_size, path, head)
                    elif sub is not None:
                        with suppress(TooLargeError):  # too big to open: reported below
                            data = read_all(f, limits.max_nested_archive_size, path, head)
            except Exception as exc:
                yield Item(path, member.size, member.mtime, container, d,
                           as_source_error(exc, path), flags=member.flags,
                           original=member.original), None
                continue
            item = Item(path, member.size, member.mtime, container, d, None, sub,
                        member.flags, member.original)
            yield item, (data if wanted else None)
            if sub is None:
                continue
            if data is None or len(data) > limits.max_nested_archive_size:
                yield Item(path + SEP, None, None, path, d + 1, TooLargeError(
                    path, f"nested archive of {member.size} bytes is over the in-memory "
                          f"limit of {limits.max_nested_archive_size}; scan it separately")
                           ), None
                continue
            err = push(path, sub, io.BytesIO(data), len(data), d)
            if err is not None:
                yield err, None
    finally:
        for gen, _, _ in stack:
            gen.close()
