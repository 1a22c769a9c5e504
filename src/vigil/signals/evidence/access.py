"""The walker's public functions: list the evidence, and read one item by virtual path."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from typing import IO

from vigil.signals.errors import SignalError
from vigil.signals.evidence.budget import read_all
from vigil.signals.evidence.disk import (
    archive_kind,
    disk_file,
    distinct_inputs,
    open_regular,
    os_error,
    walk,
)
from vigil.signals.evidence.errors import (
    BrokenLinkError,
    NotFoundError,
    TooDeepError,
    UnreadableSourceError,
    as_source_error,
)
from vigil.signals.evidence.expand import expand, members
from vigil.signals.evidence.items import Item, Limits
from vigil.signals.evidence.names import SEP, escape, unescape
from vigil.signals.evidence.sniffing import sniff_stream

_DEFAULT = Limits()


def iter_items(inputs: Iterable[str | os.PathLike[str]], limits: Limits = _DEFAULT, *,
               expand_archives: bool = True) -> Iterator[Item]:
    """Every file of the evidence, archive members included, as items. Never raises.

    Order: inputs in the order given (an input inside another input folder is skipped:
    it would be listed twice); inside a folder, entries sorted by name bytes, depth first;
    an archive is followed by its members, depth first. The same evidence gives the same
    list in every run. Symbolic links to files are followed (flag ``symlink``), links to
    folders are not. With ``expand_archives=False`` archives are listed (``kind`` set) but
    not opened: the caller hands each to ``iter_archive_contents``.
    """
    for raw in distinct_inputs(inputs):
        path, _ = escape(raw)
        try:
            st = os.stat(raw)
        except OSError as exc:
            err = os_error(exc, path)
            if isinstance(err, NotFoundError) and os.path.islink(raw):
                err = BrokenLinkError(path, "broken symbolic link")
            yield Item(path, error=err)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from walk(raw, limits, expand_archives)
        else:
            yield from disk_file(raw, limits, expand_archives)


def _resolve(virtual_path: str, limits: Limits,
             want_kind: bool) -> tuple[IO[bytes], int, str, int]:
    """Open the innermost archive or file named by a virtual path.

    Returns (stream at 0, stored size, archive kind or "" when not an archive or not
    ``want_kind``, depth) for the item itself; raises SourceError. Hidden (embedded) zips
    are looked for in files on disk only, as the listing does.
    """
    parts = virtual_path.split(SEP)
    if any(not p for p in parts[1:]):
        raise UnreadableSourceError(virtual_path, "names an archive as a whole, not a file")
    fh: IO[bytes] = open_regular(unescape(parts[0]), parts[0])
    try:
        container = parts[0]
        size = os.fstat(fh.fileno()).st_size
        for depth, name in enumerate(parts[1:], 1):
            kind = archive_kind(fh, size)[0] if depth == 1 else sniff_stream(fh)[0]
            if kind is None:
                raise NotFoundError(virtual_path, f"{container} is not an archive")
            if depth > limits.max_archive_depth:
                raise TooDeepError(virtual_path, f"nested deeper than "
                                                 f"{limits.max_archive_depth} archives")
            data = _member_data(container, name, kind, fh, size, limits)
            fh.close()
            fh, size, container = io.BytesIO(data), len(data), container + SEP + name
        kind = ""
        if want_kind:
            found = archive_kind(fh, size)[0] if len(parts) == 1 else sniff_stream(fh)[0]
            kind = found or ""
        fh.seek(0)
        return fh, size, kind, len(parts) - 1
    except BaseException:
        fh.close()
        raise


def _member_data(container: str, name: str, kind: str, fh: IO[bytes], size: int,
                 limits: Limits) -> bytes:
    path = container + SEP + name
    with closing(members(container, kind, fh, size, limits)) as listed:
        for member in listed:
            if member.name == "" and member.error is not None:
                raise member.error
            if member.name != name:
                continue
            if member.error is not None or member.open is None:
                raise member.error or NotFoundError(path, "no content")
            try:
                with member.open() as f:
                    return read_all(f, limits.max_member_size, path)
            except Exception as exc:
                raise as_source_error(exc, path) from None
    raise NotFoundError(path, f"no member {name!r} in {container}")


def open_item(virtual_path: str, limits: Limits = _DEFAULT) -> tuple[IO[bytes], int]:
    """A stream of one item's content at its start, and its size; the caller closes it.

    A file on disk is opened as it is (so a large file can be read in chunks; a FIFO or a
    device is refused, never opened); an archive member is read into memory, bounded by
    ``limits.max_member_size``. Raises a ``SignalError`` subclass, never anything else.
    """
    try:
        fh, size, _, _ = _resolve(virtual_path, limits, False)
    except SignalError:
        raise
    except OSError as exc:
        raise os_error(exc, virtual_path) from None
    except Exception as exc:  # pragma: no cover - defensive: the contract is typed errors
        raise UnreadableSourceError(virtual_path, f"{type(exc).__name__}: {exc}") from None
    return fh, size


def read_item(virtual_path: str, limits: Limits = _DEFAULT) -> bytes:
    """The content of one item, from disk or from inside its archives (in memory only).

    Works in any process: the virtual path is all it needs. Raises a ``SignalError``
    subclass (never anything else) when the item cannot be read. Archive members are
    bounded by ``limits.max_member_size``; plain files are read whole (hashing streams
    them instead: ``open_item``).
    """
    fh, _ = open_item(virtual_path, limits)
    with fh:
        if isinstance(fh, io.BytesIO):
            return fh.getvalue()
        try:
            return fh.read()
        except OSError as exc:
            raise os_error(exc, virtual_path) from None


def iter_archive_contents(virtual_path: str, limits: Limits = _DEFAULT,
                          wanted: Callable[[str], bool] | None = None
                          ) -> Iterator[tuple[Item, bytes | None]]:
    """Every item under one archive with its bytes (None for error items), in one pass.

    Yields the same items, in the same order, as ``iter_items`` lists under that archive
    (not the archive itself). Use it for compressed tars, where ``read_item`` per member
    would decompress the archive again for each member. Only members whose path
    ``wanted`` accepts (default: all) are read into memory; the others come with None.
    Never raises: a problem opening the archive is one error item ``virtual_path + "!/"``.
    """
    depth = virtual_path.count(SEP)
    try:
        fh, size, kind, depth = _resolve(virtual_path, limits, True)
    except Exception as exc:
        err = exc if isinstance(exc, SignalError) else UnreadableSourceError(
            virtual_path, f"{type(exc).__name__}: {exc}")
        yield Item(virtual_path + SEP, None, None, virtual_path, depth + 1, err), None
        return
    with fh:
        if not kind:
            yield Item(virtual_path + SEP, None, None, virtual_path, depth + 1,
                       NotFoundError(virtual_path, "not an archive")), None
            return
        yield from expand(virtual_path, kind, fh, size, depth, limits,
                          wanted or (lambda _: True))
