"""Files and folders on disk: walked in a stable order, opened without ever blocking.

FIFOs, sockets and devices are never opened (reading a FIFO blocks forever, a device such
as ``/dev/zero`` never ends): they become ``special-file`` items. Symbolic links to files
are followed (flag ``symlink``), links to folders are not (no loops, no walking out of
the evidence). Walking is iterative, so a tree of any depth is safe.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from typing import IO

from vigil.signals.evidence.errors import (
    BrokenLinkError,
    NotFoundError,
    SourceError,
    SpecialFileError,
    SymlinkLoopError,
    TooDeepError,
    UnreadableSourceError,
)
from vigil.signals.evidence.expand import expand
from vigil.signals.evidence.items import Item, Limits
from vigil.signals.evidence.names import FLAG_EMBEDDED, FLAG_SYMLINK, escape
from vigil.signals.evidence.sniffing import embedded_zip, sniff_stream


def open_regular(raw: bytes, path: str) -> IO[bytes]:
    """Open a regular file for reading without ever blocking on a FIFO or device."""
    try:
        st = os.stat(raw)
    except OSError as exc:
        raise os_error(exc, path) from None
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise UnreadableSourceError(path, "is a folder")
        raise SpecialFileError(path, f"{kind_of_mode(st.st_mode)}; not opened")
    try:
        fd = os.open(raw, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise os_error(exc, path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the stat
            raise SpecialFileError(path, "not a regular file; not read")
        return os.fdopen(fd, "rb")
    except OSError as exc:
        os.close(fd)
        raise os_error(exc, path) from None
    except BaseException:
        os.close(fd)
        raise


def kind_of_mode(mode: int) -> str:
    """What a file that is not regular is, in words for an error message."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def os_error(exc: OSError, path: str) -> SourceError:
    """An OS error reading ``path`` as a typed source error."""
    if exc.errno == errno.ELOOP:
        return SymlinkLoopError(path, "symbolic link loop")
    if exc.errno == errno.ENOENT:
        return NotFoundError(path, "no such file or folder")
    return UnreadableSourceError(path, exc.strerror or str(exc))


def archive_kind(fh: IO[bytes], size: int) -> tuple[str | None, bool]:
    """(archive kind or None, whether it is a zip hidden after other content) of a file on
    disk. The tail is checked only when the head announces no archive."""
    kind, _ = sniff_stream(fh)
    if kind is not None:
        return kind, False
    if embedded_zip(fh, size):
        return "zip", True
    return None, False


def disk_file(raw: bytes, limits: Limits, expand_archives: bool,
              extra_flags: Iterable[str] = ()) -> Iterator[Item]:
    """One file on disk as an item, followed by its members when it is an archive."""
    path, flags = escape(raw)
    flags |= set(extra_flags)
    try:
        fh = open_regular(raw, path)
    except SourceError as exc:
        yield Item(path, error=exc, flags=tuple(sorted(flags)))
        return
    with fh:
        try:
            st = os.fstat(fh.fileno())
            kind, embedded = archive_kind(fh, st.st_size)
        except OSError as exc:
            yield Item(path, error=os_error(exc, path), flags=tuple(sorted(flags)))
            return
        if embedded:
            flags.add(FLAG_EMBEDDED)
        yield Item(path, st.st_size, st.st_mtime, None, 0, None, kind, tuple(sorted(flags)))
        if kind is not None and expand_archives:
            for item, _ in expand(path, kind, fh, st.st_size, 0, limits, None):
                yield item


def walk(root: bytes, limits: Limits, expand_archives: bool) -> Iterator[Item]:
    """Every file under a folder in sorted (byte) order; iterative, so any depth is safe."""

    def listing(folder: bytes) -> list[os.DirEntry[bytes]] | SourceError:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            return os_error(exc, escape(folder)[0])

    top = listing(root)
    if isinstance(top, SourceError):
        yield Item(top.path, error=top)
        return
    stack: list[tuple[Iterator[os.DirEntry[bytes]], int]] = [(iter(top), 0)]
    while stack:
        it, depth = stack[-1]
        entry = next(it, None)
        if entry is None:
            stack.pop()
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > limits.max_folder_depth:
                    p = escape(entry.path)[0]
                    yield Item(p, error=TooDeepError(
                        p, f"folder more than {limits.max_folder_depth} levels deep; "
                           "not listed"))
                    continue
                sub = listing(entry.path)
                if isinstance(sub, SourceError):
                    yield Item(sub.path, error=sub)
                else:
                    stack.append((iter(sub), depth + 1))
            elif entry.is_symlink():
                yield from disk_symlink(entry.path, limits, expand_archives)
            elif entry.is_file(follow_symlinks=False):
                yield from disk_file(entry.path, limits, expand_archives)
            else:
                p = escape(entry.path)[0]
                mode = entry.stat(follow_symlinks=False).st_mode
                yield Item(p, error=SpecialFileError(p, f"{kind_of_mode(mode)}; not opened"))
        except OSError as exc:
            p = escape(entry.path)[0]
            yield Item(p, error=os_error(exc, p))


def disk_symlink(raw: bytes, limits: Limits, expand_archives: bool) -> Iterator[Item]:
    """A link found while walking: files are followed, folders are not (no loops)."""
    p, flags = escape(raw)
    try:
        st = os.stat(raw)
    except OSError as exc:
        err: SourceError = os_error(exc, p)
        if isinstance(err, NotFoundError):
            err = BrokenLinkError(p, "broken symbolic link")
        yield Item(p, error=err, flags=tuple(sorted(flags | {FLAG_SYMLINK})))
        return
    if stat.S_ISDIR(st.st_mode):
        return  # linked folders are not followed: no loops, no walking out of the evidence
    yield from disk_file(raw, limits, expand_archives, [FLAG_SYMLINK])


def distinct_inputs(inputs: Iterable[str | os.PathLike[str] | bytes]) -> list[bytes]:
    """Inputs in the given order, without those already covered by another input."""
    raws = [os.fsencode(p) for p in inputs]
    real = [os.path.realpath(r) for r in raws]
    folders = {r for r, raw in zip(real, raws, strict=True) if os.path.isdir(raw)}
    out, seen = [], set()
    for raw, r in zip(raws, real, strict=True):
        if r in seen:
            continue
        parent, inside = r, False
        while True:
            up = os.path.dirname(parent)
            if up == parent:
                break
            parent = up
            if parent in folders:
                inside = True
                break
        if inside:
            continue
        seen.add(r)
        out.append(raw)
    return out
