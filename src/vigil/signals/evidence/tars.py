"""Members of a tar (POSIX, GNU, pax), plain or compressed with gzip, bzip2 or xz.

Compressed tars have no random access: they are read as one stream, each decompressed
byte charged to the archive's budget, and tarfile's member list is cleared as we go
(it would otherwise keep every header: gigabytes for a million members).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
from collections.abc import Callable, Iterator
from typing import IO, cast

from vigil.signals.evidence.budget import Budget, CountingReader
from vigil.signals.evidence.errors import (
    CorruptArchiveError,
    LinkMemberError,
    SourceError,
    SpecialFileError,
    TooLargeError,
    TooManyMembersError,
)
from vigil.signals.evidence.items import Limits, Member
from vigil.signals.evidence.names import SEP, Namer, escape


class _TarFile(tarfile.TarFile):
    """TarFile that notices damaged header blocks instead of silently stopping.

    With ``ignore_zeros`` tarfile skips unreadable header blocks and resynchronises on the
    next good header (members after the damage are recovered); it reports each skipped
    block only through ``_dbg``, which we count.
    """

    zero_blocks = 0
    bad_blocks = 0
    members: list[tarfile.TarInfo]  # set by TarFile.__init__; typeshed does not declare it

    def _dbg(self, level: int, msg: str) -> None:
        if msg.endswith("end of file header"):
            self.zero_blocks += 1
        elif level == 2:
            self.bad_blocks += 1


def _decompressed(kind: str, f: IO[bytes]) -> IO[bytes]:
    """The decompressed stream of a compressed tar; closed by its owner."""
    if kind == "tar.gz":
        return cast(IO[bytes], gzip.GzipFile(fileobj=f, mode="rb"))
    if kind == "tar.bz2":
        return bz2.BZ2File(f, "rb")
    return lzma.LZMAFile(f, "rb")


def _open(kind: str, fh: IO[bytes], budget: Budget) -> tuple[_TarFile, bool]:
    """The tar reader and whether it streams (compressed: no random access)."""
    if kind == "tar":
        tf = _TarFile.open(fileobj=fh, mode="r:", ignore_zeros=True,
                           encoding="utf-8", errors="surrogateescape")
        streamed = False
    else:
        stream = CountingReader(_decompressed(kind, fh), budget)
        tf = _TarFile.open(fileobj=cast(IO[bytes], stream), mode="r|", ignore_zeros=True,
                           encoding="utf-8", errors="surrogateescape")
        streamed = True
    if not isinstance(tf, _TarFile):  # pragma: no cover - open() is a classmethod of ours
        raise CorruptArchiveError("", "tar reader of an unexpected type")
    return tf, streamed


def tar_members(archive: str, kind: str, fh: IO[bytes], stored_size: int,
                limits: Limits) -> Iterator[Member]:
    """The members of the tar in ``fh`` (not recursing), ending with an archive-level error
    member if any. Never raises."""
    budget = Budget(archive, stored_size, limits)
    try:
        tf, streamed = _open(kind, fh, budget)
    except Exception as exc:
        yield Member("", error=exc if isinstance(exc, SourceError)
                     else CorruptArchiveError(archive, f"cannot read the tar: {exc}"))
        return
    namer = Namer()
    count = 0
    with tf:
        while True:
            try:
                info = tf.next()
            except SourceError as exc:
                yield Member("", error=exc)
                return
            except Exception as exc:
                yield Member("", error=CorruptArchiveError(
                    archive, f"damaged after {count} members: {type(exc).__name__}: {exc}"))
                return
            if info is None:
                break
            tf.members.clear()  # tarfile keeps every header otherwise (1M members: GBs)
            count += 1
            if count > limits.max_members:
                yield Member("", error=TooManyMembersError(
                    archive, f"more than {limits.max_members} members; rest not listed"))
                return
            if info.isdir():
                continue
            member = _member(archive, tf, info, namer, limits)
            if member.error is None and member.open is not None:
                # A plain tar is charged by declared sizes; a streamed one counts the bytes
                # as they are decompressed, so only refuse now a member that would overrun.
                over = budget.check(info.size) if streamed else _charge(budget, info.size)
                if over is not None:
                    yield Member("", error=over)
                    return
            yield member
        if tf.bad_blocks:
            yield Member("", error=CorruptArchiveError(
                archive, f"{tf.bad_blocks} damaged header block(s) skipped; members listed "
                         "were recovered around the damage"))
        elif tf.zero_blocks == 0 and count:
            yield Member("", error=CorruptArchiveError(
                archive, "ends without the end-of-archive marker (truncated?)"))


def _charge(budget: Budget, n: int) -> SourceError | None:
    try:
        budget.charge(n)
    except SourceError as exc:
        return exc
    return None


def _member(archive: str, tf: tarfile.TarFile, info: tarfile.TarInfo, namer: Namer,
            limits: Limits) -> Member:
    name, flags, original = namer.name(info.name.encode("utf-8", "surrogateescape"))
    path = archive + SEP + name
    error: SourceError | None = None
    if info.issym() or info.islnk():
        what = "symbolic" if info.issym() else "hard"
        target, _ = escape(info.linkname.encode("utf-8", "surrogateescape"))
        error = LinkMemberError(path, f"{what} link to {target!r}; not followed")
    elif info.ischr() or info.isblk() or info.isfifo():
        error = SpecialFileError(path, "device or FIFO entry in a tar; no content")
    elif info.size > limits.max_member_size:
        error = TooLargeError(path, f"declares {info.size} bytes, over the limit of "
                                    f"{limits.max_member_size}")
    opener = None if error else _opener(tf, info)
    return Member(name, info.size, float(info.mtime), flags, original, error, opener)


def _opener(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_() -> IO[bytes]:
        f = tf.extractfile(info)
        if f is None:  # pragma: no cover - only for links/dirs, filtered above
            raise CorruptArchiveError(info.name, "no content")
        return f
    return open_
