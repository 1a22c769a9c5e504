"""Members of a zip (also DOCX, XLSX, EPUB, APK… which are zips), with their limits checked
from the central directory before anything is decompressed."""

from __future__ import annotations

import calendar
import zipfile
from collections.abc import Callable, Iterator
from typing import IO

from vigil.signals.evidence.budget import Budget
from vigil.signals.evidence.errors import (
    ArchiveBombError,
    CorruptArchiveError,
    EncryptedMemberError,
    SourceError,
    TooLargeError,
    TooManyMembersError,
    UnsupportedMemberError,
)
from vigil.signals.evidence.items import Limits, Member
from vigil.signals.evidence.names import SEP, Namer

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    # orig_filename: ZipInfo.filename is cut at a NUL and rewritten; we want what is stored.
    if info.flag_bits & 0x800:
        return info.orig_filename.encode("utf-8", "surrogateescape")
    try:
        return info.orig_filename.encode("cp437")
    except UnicodeEncodeError:  # pragma: no cover - zipfile decoded it as cp437
        return info.orig_filename.encode("utf-8", "surrogateescape")


def _mtime(date_time: tuple[int, ...]) -> float | None:
    try:
        return float(calendar.timegm((*date_time[:6], 0, 0, 0)))
    except (ValueError, OverflowError, TypeError):
        return None


def zip_members(archive: str, fh: IO[bytes], stored_size: int,
                limits: Limits) -> Iterator[Member]:
    """The members of the zip in ``fh`` (not recursing), ending with an archive-level error
    member if any. Never raises. A zip after other content (a carved, embedded zip) opens
    the same way: ``zipfile`` takes the prefix as an offset."""
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as exc:  # BadZipFile, OSError, UnicodeDecodeError, struct.error, ...
        yield Member("", error=CorruptArchiveError(
            archive, f"cannot read the zip directory (truncated or damaged): {exc}"))
        return
    budget = Budget(archive, stored_size, limits)
    namer = Namer()
    with zf:
        for count, info in enumerate(zf.infolist(), 1):
            if count > limits.max_members:
                yield Member("", error=TooManyMembersError(
                    archive, f"more than {limits.max_members} members; rest not listed"))
                return
            raw = _raw_name(info)
            if raw.endswith((b"/", b"\\")) and info.file_size == 0:
                continue  # a folder entry
            name, flags, original = namer.name(raw)
            path = archive + SEP + name
            size = info.file_size
            error: SourceError | None = None
            if info.flag_bits & 0x1:
                error = EncryptedMemberError(path, "encrypted zip member (password needed)")
            elif info.compress_type not in _ZIP_METHODS:
                error = UnsupportedMemberError(
                    path, f"zip compression method {info.compress_type} not supported")
            elif size > limits.max_member_size:
                error = TooLargeError(path, f"declares {size} bytes, over the limit of "
                                            f"{limits.max_member_size}")
            elif (size > limits.ratio_min_bytes
                  and size > limits.max_ratio * max(info.compress_size, 1)):
                error = ArchiveBombError(
                    path, f"declares {size} bytes from {info.compress_size} compressed "
                          f"(ratio over {limits.max_ratio:g}:1)")
            else:
                try:
                    budget.charge(size)
                except SourceError as exc:
                    yield Member("", error=exc)
                    return
            opener = None if error else _opener(zf, info)
            yield Member(name, size, _mtime(info.date_time), flags, original, error, opener)


def _opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: zf.open(info)
