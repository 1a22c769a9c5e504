"""What the walker yields (``Item``), the limits it enforces (``Limits``), and one archive
member as a reader lists it (``Member``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from vigil.signals.errors import SignalError
from vigil.signals.evidence.errors import SourceError


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits for reading evidence. Violations become error items, never crashes.

    The defaults suit real seizures (forensic exports of 100+ GB are normal) while
    stopping decompression bombs early. Sizes are in bytes.
    """

    #: largest single member read into memory
    max_member_size: int = 1 << 30
    #: how many bytes an archive may decompress to *beyond its own size* (a plain 100 GB
    #: tar is fine; a 1 MB zip yielding 25 GB is not)
    max_archive_expansion: int = 20 << 30
    #: decompressed : compressed ratio above which an archive or member is a bomb ...
    max_ratio: float = 200.0
    #: ... once its output exceeds this (a blank 40 MB BMP legitimately deflates 1000:1)
    ratio_min_bytes: int = 64 << 20
    #: archives inside archives: members deeper than this are not listed
    max_archive_depth: int = 5
    #: members listed per archive
    max_members: int = 1_000_000
    #: folder levels below an input folder
    max_folder_depth: int = 64
    #: a nested archive is read into memory to be opened; larger ones are not expanded
    max_nested_archive_size: int = 512 << 20


@dataclass(frozen=True, slots=True)
class Item:
    """One file of the evidence (on disk or inside an archive), or one problem.

    ``error`` set means the item cannot be read (see its ``code``); otherwise
    ``read_item(item.path)`` returns its content.
    """

    #: unique, printable virtual path (see the package docstring)
    path: str
    #: bytes (declared size for archive members)
    size: int | None = None
    #: modification time, seconds since the epoch (zip times, which carry no zone, as UTC)
    mtime: float | None = None
    #: virtual path of the archive the item came from (None on disk)
    container: str | None = None
    #: how many archives enclose the item (0 on disk)
    depth: int = 0
    error: SignalError | None = None
    #: the archive format when the item itself is an archive: zip, tar, tar.gz, ...
    kind: str | None = None
    #: observations that do not prevent reading (``names.FLAG_*`` constants)
    flags: tuple[str, ...] = ()
    #: the member name as stored (escaped) when sanitising changed it
    original: str | None = None


@dataclass(slots=True)
class Member:
    """One member as an archive reader lists it; ``open`` is valid only until the next
    member is requested.

    ``name == ""`` marks a problem with the archive as a whole (the last member listed).
    """

    name: str
    size: int | None = None
    mtime: float | None = None
    flags: tuple[str, ...] = ()
    original: str | None = None
    error: SourceError | None = None
    open: Callable[[], IO[bytes]] | None = None
