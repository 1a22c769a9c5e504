"""Evidence as items: files in folders, single files and archive members, never extracted.

Why this module exists: what an examiner extracts from seized devices is a mix of folders,
loose files and archives (zip, tar, tar.gz/bz2/xz, nested in one another), much of it
damaged and some of it hostile. A scan must hash *every* file, including the ones inside
archives, without writing their content to disk (no stray copies of abuse material, no
path traversal, no disk filling up) and without letting one bad file stop the scan.

Public API:

* ``iter_items(inputs, limits)`` enumerates everything as :class:`Item` objects in a
  deterministic order. It never raises for bad evidence: problems become items whose
  ``error`` says what and where, and the enumeration goes on.
* ``read_item(virtual_path, limits)`` returns the bytes of one item. It needs nothing but
  the virtual path, so scan workers in other processes (or on other machines that see the
  same paths) can read what the enumerating process listed.
* ``iter_archive_contents(virtual_path, limits)`` streams every item under one archive
  together with its bytes in one pass, for archives without random access (tar.gz).
* ``disk_path(virtual_path)`` turns the virtual path of a plain file back into an OS path.

Virtual paths
-------------

A plain file's virtual path is its path as given or walked (``evidence/DCIM/a.jpg``). A
member of an archive is written ``ARCHIVE!/MEMBER``, recursively::

    evidence/backup.tar.gz!/phone/chats.zip!/media/IMG_0001.jpg

Names are printable and unique, and the virtual path can be resolved on its own:

* bytes that are not valid UTF-8 are written ``\\xNN``; control characters and invisible
  format characters (e.g. right-to-left override, which hides ``gpj.exe``) are written
  ``\\xNN`` / ``\\uNNNN``; a literal backslash in a plain file's path is written ``\\\\``;
  a ``!`` that ends a folder name (and would read as ``!/``) is written ``\\x21``. So a
  path with nothing unusual is unchanged, and ``disk_path`` inverts the escaping exactly.
* Member names are *sanitised*, never used on the file system: ``/`` and ``\\`` both
  separate folders (Windows tools write backslashes), ``.`` and empty parts are dropped,
  ``..`` parts are dropped, an absolute name (``/etc/passwd``, ``C:\\x``) is made relative.
  The item keeps the stored name in ``Item.original`` and says what happened in
  ``Item.flags`` (``path-traversal``, ``absolute-name``, ``backslash-name``, ...). Such a
  member is still hashed: its content is evidence like any other.
* Two members that end up with the same name (duplicates are legal in zip and tar) are
  told apart by a suffix: ``a.jpg``, ``a.jpg~2``, ``a.jpg~3`` (flag ``duplicate-name``).
  Numbering follows the archive's own member order, so every process computes the same.
* A problem with an archive as a whole (corrupt, bomb, too deep, too many members) is an
  error item with the archive's path followed by ``!/`` and nothing else:
  ``evidence/broken.zip!/``. The archive file itself is still an ordinary item (it gets
  exact hashes like any file); members read before the damage are still yielded.

Archives are recognised by content (magic bytes), never by extension: a zip renamed
``.jpg`` is expanded. Formats: zip (also DOCX, XLSX, EPUB, APK... which are zips: images
embedded in documents are found), POSIX/GNU/pax tar, and tar compressed with gzip, bzip2
or xz. A compressed file that is not a tar is an ordinary file.

Costs
-----

``iter_items`` reads the first bytes of every file (to sniff archives), the member table of
each zip (random access: cheap), and the headers of each tar. Nested archives are read
into memory (bounded by ``Limits.max_nested_archive_size``) because zip needs random
access. Compressed tars have no random access: listing one decompresses it completely, and
each ``read_item`` of one of its members decompresses it again up to that member (quadratic
over the archive). Hand such an archive to one worker and use ``iter_archive_contents``
(one pass), and enumerate with ``iter_items(..., expand_archives=False)`` so the listing
itself does not decompress it.

Errors
------

Every problem is a :class:`SourceError` (a ``vigil.signals.errors.SignalError``) with a
stable ``code``: ``unreadable``, ``broken-link``, ``symlink-loop``, ``special-file``,
``too-deep``, ``too-large``, ``too-many-members``, ``archive-bomb``, ``corrupt-archive``,
``encrypted``, ``link-member``, ``unsupported``, ``not-found``.
"""

from __future__ import annotations

import bz2
import calendar
import errno
import gzip
import io
import lzma
import os
import re
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from typing import IO, Any

from vigil.signals.errors import SignalError, UnreadableFileError

#: Separates an archive's virtual path from the name of one of its members.
SEP = "!/"

_CHUNK = 1 << 20
_SNIFF = 64 * 1024
_SNIFF_BZ2 = 1024 * 1024  # bzip2 emits nothing before a whole block (up to 900 kB) is in

# Flags: observations about an item that do not stop it from being read and hashed.
FLAG_TRAVERSAL = "path-traversal"      # member name had ".." parts (dropped)
FLAG_ABSOLUTE = "absolute-name"        # member name was absolute (made relative)
FLAG_BACKSLASH = "backslash-name"      # member name used "\" (read as a separator)
FLAG_NOT_UTF8 = "not-utf8-name"        # name bytes are not UTF-8 (shown as \xNN)
FLAG_ESCAPED = "escaped-name"          # control/invisible characters shown as escapes
FLAG_DUPLICATE = "duplicate-name"      # another member had the same name (suffix ~N)
FLAG_SYMLINK = "symlink"               # a file on disk reached through a symbolic link


# --------------------------------------------------------------------------------------
# Errors


class SourceError(SignalError):
    """Base of the enumeration errors; compares by value so item lists can be compared."""

    code = "source-error"

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other) and self.path == other.path  # type: ignore[attr-defined]
                and self.cause == other.cause)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.path, self.cause))

    def __reduce__(self) -> tuple[Any, ...]:
        # SignalError's args hold the formatted message, not (path, cause): pickle by hand
        # so errors survive the trip from a worker process.
        return (type(self), (self.path, self.cause))


class UnreadableSourceError(SourceError, UnreadableFileError):
    """A file or folder could not be opened or listed (permissions, I/O error)."""

    code = "unreadable"


class NotFoundError(UnreadableSourceError):
    """The path (or the member named in a virtual path) does not exist."""

    code = "not-found"


class BrokenLinkError(UnreadableSourceError):
    """A symbolic link whose target does not exist."""

    code = "broken-link"


class SymlinkLoopError(UnreadableSourceError):
    """Symbolic links that point at each other: there is no file to read."""

    code = "symlink-loop"


class SpecialFileError(SourceError):
    """A FIFO, device or socket (on disk or in a tar): never opened, reading could block."""

    code = "special-file"


class TooDeepError(SourceError):
    """Folders or archives nested deeper than the limit; the deeper part is not listed."""

    code = "too-deep"


class TooLargeError(SourceError):
    """A member (or an archive's total output) exceeds the size limit."""

    code = "too-large"


class TooManyMembersError(SourceError):
    """An archive lists more members than the limit; the rest are not listed."""

    code = "too-many-members"


class ArchiveBombError(SourceError):
    """Decompressed output out of proportion to the compressed size (a decompression bomb)."""

    code = "archive-bomb"


class CorruptArchiveError(SourceError):
    """The archive (or one member) is truncated or damaged."""

    code = "corrupt-archive"


class EncryptedMemberError(SourceError):
    """An encrypted zip member: its content cannot be read without the password."""

    code = "encrypted"


class LinkMemberError(SourceError):
    """A symbolic or hard link inside a tar: it has no content of its own; never followed."""

    code = "link-member"


class UnsupportedMemberError(SourceError):
    """A member stored with a method the standard library cannot decompress."""

    code = "unsupported"


# --------------------------------------------------------------------------------------
# Public types


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

    #: unique, printable virtual path (see the module docstring)
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
    #: observations that do not prevent reading (FLAG_* constants)
    flags: tuple[str, ...] = ()
    #: the member name as stored (escaped) when sanitising changed it
    original: str | None = None


# --------------------------------------------------------------------------------------
# Virtual path text


_ESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(\\))")


def _escape(raw: bytes) -> tuple[str, set[str]]:
    """Printable, reversible text for raw name bytes, and the flags it earned."""
    text = raw.decode("utf-8", "surrogateescape")
    out: list[str] = []
    flags: set[str] = set()
    for i, ch in enumerate(text):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # a byte that is not part of valid UTF-8
            out.append(f"\\x{o - 0xDC00:02x}")
            flags.add(FLAG_NOT_UTF8)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
            flags.add(FLAG_ESCAPED)
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "!" and text[i + 1 : i + 2] == "/":
            out.append("\\x21")
        elif o >= 0x80 and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
            flags.add(FLAG_ESCAPED)
        else:
            out.append(ch)
    return "".join(out), flags


def _unescape(text: str) -> bytes:
    """The raw bytes ``_escape`` rendered as ``text``."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE_RE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "surrogateescape")
        byte, u4, u8, _ = m.groups()
        if byte is not None:
            out.append(int(byte, 16))
        elif u4 is not None or u8 is not None:
            out += chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
        else:
            out += b"\\"
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def _render_disk(raw: bytes) -> tuple[str, set[str]]:
    return _escape(raw)


_SPLIT_RE = re.compile(rb"[/\\]")
_DRIVE_RE = re.compile(rb"^[A-Za-z]:$")


class _Namer:
    """Sanitised, unique member names in archive order (the same in every process)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def name(self, raw: bytes) -> tuple[str, tuple[str, ...], str | None]:
        flags: set[str] = set()
        if b"\\" in raw:
            flags.add(FLAG_BACKSLASH)
        parts = _SPLIT_RE.split(raw)
        if raw[:1] in (b"/", b"\\"):
            flags.add(FLAG_ABSOLUTE)
        elif parts and _DRIVE_RE.match(parts[0]):
            flags.add(FLAG_ABSOLUTE)
            parts = parts[1:]
        comps: list[str] = []
        for p in parts:
            if p in (b"", b"."):
                continue
            if p == b"..":
                flags.add(FLAG_TRAVERSAL)
                continue
            text, f = _escape(p)
            flags |= f
            comps.append(text)
        name = "/".join(comps) or "_"
        name = name.replace("!/", "\\x21/")  # a folder named "x!" must not read as "x!/"
        stored, _ = _escape(raw)
        original = stored if stored != name else None
        if name in self._seen:
            flags.add(FLAG_DUPLICATE)
            n = 2
            while f"{name}~{n}" in self._seen:
                n += 1
            name = f"{name}~{n}"
        self._seen.add(name)
        return name, tuple(sorted(flags)), original


def disk_path(virtual_path: str) -> str:
    """The OS path (``os.fsdecode`` form) of a plain file's virtual path."""
    if SEP in virtual_path:
        raise ValueError(f"{virtual_path!r} names an archive member, not a file on disk")
    return os.fsdecode(_unescape(virtual_path))


# --------------------------------------------------------------------------------------
# Content sniffing


def _is_tar_header(block: bytes) -> bool:
    if len(block) < 512 or block[257:262] != b"ustar":
        return False
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


_COMPRESSED: tuple[tuple[bytes, str, Callable[[], Any]], ...] = (
    (b"\x1f\x8b", "tar.gz", lambda: zlib.decompressobj(31)),
    (b"BZh", "tar.bz2", bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", "tar.xz", lzma.LZMADecompressor),
)


def sniff_archive(head: bytes) -> str | None:
    """The archive format the first bytes announce (zip, tar, tar.gz, ...), or None.

    Needs the first 64 KiB (1 MiB for bzip2) to see the tar header inside a compressed
    stream. A compressed stream that is not a tar is not an archive here.
    """
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if _is_tar_header(head):
        return "tar"
    for magic, kind, make in _COMPRESSED:
        if head.startswith(magic):
            try:
                out = make().decompress(head, 512)
            except Exception:  # any decoder complaint: not a (readable) compressed tar
                return None
            return kind if _is_tar_header(out) else None
    return None


def _sniff_stream(f: IO[bytes]) -> tuple[str | None, bytes]:
    """(archive kind or None, the bytes read to decide).

    Reads 512 bytes of most files (the listing touches every file of a seizure: keep it
    cheap) and up to 64 KiB (1 MiB for bzip2) of compressed streams.
    """
    head = f.read(512)  # enough for zip and tar; only compressed streams need more
    if head.startswith(tuple(magic for magic, _, _ in _COMPRESSED)):
        want = _SNIFF_BZ2 if head.startswith(b"BZh") else _SNIFF
        while len(head) < want and (more := f.read(want - len(head))):
            head += more
    return sniff_archive(head), head


# --------------------------------------------------------------------------------------
# Reading with limits


def _read_all(f: IO[bytes], limit: int, path: str, head: bytes = b"") -> bytes:
    """Everything left in ``f`` after ``head``; TooLargeError past ``limit`` bytes."""
    chunks = [head]
    n = len(head)
    if n > limit:
        raise TooLargeError(path, f"larger than the limit of {limit} bytes")
    while True:
        b = f.read(min(_CHUNK, limit + 1 - n))
        if not b:
            break
        n += len(b)
        chunks.append(b)
        if n > limit:
            raise TooLargeError(path, f"larger than the limit of {limit} bytes")
    return b"".join(chunks)


def _as_source_error(exc: BaseException, path: str) -> SourceError:
    if isinstance(exc, SourceError):
        return exc
    return CorruptArchiveError(path, f"cannot read: {type(exc).__name__}: {exc}")


class _Budget:
    """How much one archive may decompress to, by expansion and by ratio."""

    def __init__(self, archive: str, stored_size: int, limits: Limits) -> None:
        self.archive = archive
        self.by_total = stored_size + limits.max_archive_expansion
        self.by_ratio = max(limits.ratio_min_bytes, limits.max_ratio * max(stored_size, 1))
        self.stored = stored_size
        self.max_ratio = limits.max_ratio
        self.used = 0

    def check(self, more: int) -> SourceError | None:
        """The error if ``more`` bytes would overrun the budget, else None."""
        after = self.used + more
        if after <= min(self.by_ratio, self.by_total):
            return None
        if self.by_ratio <= self.by_total:
            return ArchiveBombError(
                self.archive, f"decompresses to over {self.by_ratio:.0f} bytes from "
                f"{self.stored} stored (ratio over {self.max_ratio:g}:1); rest not read")
        return TooLargeError(
            self.archive, f"decompresses to over {self.by_total} bytes, more than "
            f"{self.by_total - self.stored} beyond its own size; rest not read")

    def charge(self, n: int) -> None:
        err = self.check(n)
        self.used += n
        if err is not None:
            raise err


class _CountingReader(io.RawIOBase):
    """Counts a decompressed stream against a budget, raising once it is overrun."""

    def __init__(self, inner: IO[bytes], budget: _Budget) -> None:
        self._inner = inner
        self.budget = budget

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        data = self._inner.read(n if n is not None and n >= 0 else _CHUNK)
        self.budget.charge(len(data))
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


# --------------------------------------------------------------------------------------
# Archive members


@dataclass(slots=True)
class _Entry:
    """One member as listed; ``open`` is valid only until the next entry is requested.

    ``name == ""`` marks a problem with the archive as a whole (the last entry).
    """

    name: str
    size: int | None = None
    mtime: float | None = None
    flags: tuple[str, ...] = ()
    original: str | None = None
    error: SourceError | None = None
    open: Callable[[], IO[bytes]] | None = None


def _entries(archive: str, kind: str, fh: IO[bytes], stored_size: int,
             limits: Limits) -> Iterator[_Entry]:
    """The members of one archive (not recursing), ending with an archive-level error if
    any. Never raises."""
    try:
        fh.seek(0)
    except (OSError, ValueError) as exc:
        yield _Entry("", error=UnreadableSourceError(archive, str(exc)))
        return
    if kind == "zip":
        yield from _zip_entries(archive, fh, stored_size, limits)
    else:
        yield from _tar_entries(archive, kind, fh, stored_size, limits)


_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _zip_raw_name(info: zipfile.ZipInfo) -> bytes:
    # orig_filename: ZipInfo.filename is cut at a NUL and rewritten; we want what is stored.
    if info.flag_bits & 0x800:
        return info.orig_filename.encode("utf-8", "surrogateescape")
    try:
        return info.orig_filename.encode("cp437")
    except UnicodeEncodeError:  # pragma: no cover - zipfile decoded it as cp437
        return info.orig_filename.encode("utf-8", "surrogateescape")


def _zip_mtime(date_time: tuple[int, ...]) -> float | None:
    try:
        return float(calendar.timegm((*date_time[:6], 0, 0, 0)))
    except (ValueError, OverflowError, TypeError):
        return None


def _zip_entries(archive: str, fh: IO[bytes], stored_size: int,
                 limits: Limits) -> Iterator[_Entry]:
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as exc:  # BadZipFile, OSError, UnicodeDecodeError, struct.error, ...
        yield _Entry("", error=CorruptArchiveError(
            archive, f"cannot read the zip directory (truncated or damaged): {exc}"))
        return
    budget = _Budget(archive, stored_size, limits)
    namer = _Namer()
    with zf:
        for count, info in enumerate(zf.infolist(), 1):
            if count > limits.max_members:
                yield _Entry("", error=TooManyMembersError(
                    archive, f"more than {limits.max_members} members; rest not listed"))
                return
            raw = _zip_raw_name(info)
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
                    yield _Entry("", error=exc)
                    return
            opener = None if error else _zip_opener(zf, info)
            yield _Entry(name, size, _zip_mtime(info.date_time), flags, original, error, opener)


def _zip_opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: zf.open(info)


class _TarFile(tarfile.TarFile):
    """TarFile that notices damaged header blocks instead of silently stopping.

    With ``ignore_zeros`` tarfile skips unreadable header blocks and resynchronises on the
    next good header (members after the damage are recovered); it reports each skipped
    block only through ``_dbg``, which we count.
    """

    zero_blocks = 0
    bad_blocks = 0

    def _dbg(self, level: int, msg: str) -> None:
        if msg.endswith("end of file header"):
            self.zero_blocks += 1
        elif level == 2:
            self.bad_blocks += 1


_DECOMPRESSORS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "tar.gz": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "tar.bz2": lambda f: bz2.BZ2File(f, "rb"),
    "tar.xz": lambda f: lzma.LZMAFile(f, "rb"),  # noqa: SIM115 - closed by its owner
}


def _tar_entries(archive: str, kind: str, fh: IO[bytes], stored_size: int,
                 limits: Limits) -> Iterator[_Entry]:
    budget = _Budget(archive, stored_size, limits)
    stream: _CountingReader | None = None
    try:
        if kind == "tar":
            tf = _TarFile.open(fileobj=fh, mode="r:", ignore_zeros=True,
                               encoding="utf-8", errors="surrogateescape")
        else:
            stream = _CountingReader(_DECOMPRESSORS[kind](fh), budget)
            tf = _TarFile.open(fileobj=stream, mode="r|", ignore_zeros=True,  # type: ignore[arg-type]
                               encoding="utf-8", errors="surrogateescape")
    except Exception as exc:
        yield _Entry("", error=exc if isinstance(exc, SourceError)
                     else CorruptArchiveError(archive, f"cannot read the tar: {exc}"))
        return
    assert isinstance(tf, _TarFile)
    namer = _Namer()
    count = 0
    with tf:
        while True:
            try:
                info = tf.next()
            except SourceError as exc:
                yield _Entry("", error=exc)
                return
            except Exception as exc:
                yield _Entry("", error=CorruptArchiveError(
                    archive, f"damaged after {count} members: {type(exc).__name__}: {exc}"))
                return
            if info is None:
                break
            tf.members.clear()  # tarfile keeps every header otherwise (1M members: GBs)
            count += 1
            if count > limits.max_members:
                yield _Entry("", error=TooManyMembersError(
                    archive, f"more than {limits.max_members} members; rest not listed"))
                return
            if info.isdir():
                continue
            name, flags, original = namer.name(info.name.encode("utf-8", "surrogateescape"))
            path = archive + SEP + name
            size = info.size
            error: SourceError | None = None
            if info.issym() or info.islnk():
                what = "symbolic" if info.issym() else "hard"
                target, _ = _escape(info.linkname.encode("utf-8", "surrogateescape"))
                error = LinkMemberError(path, f"{what} link to {target!r}; not followed")
            elif info.ischr() or info.isblk() or info.isfifo():
                error = SpecialFileError(path, "device or FIFO entry in a tar; no content")
            elif size > limits.max_member_size:
                error = TooLargeError(path, f"declares {size} bytes, over the limit of "
                                            f"{limits.max_member_size}")
            elif stream is None:
                try:
                    budget.charge(size)
                except SourceError as exc:
                    yield _Entry("", error=exc)
                    return
            else:
                # Streaming: the bytes are counted as they are decompressed; refuse now a
                # member that would overrun, before decompressing it.
                over = budget.check(size)
                if over is not None:
                    yield _Entry("", error=over)
                    return
            opener = None if error else _tar_opener(tf, info)
            yield _Entry(name, size, float(info.mtime), flags, original, error, opener)
        if tf.bad_blocks:
            yield _Entry("", error=CorruptArchiveError(
                archive, f"{tf.bad_blocks} damaged header block(s) skipped; members listed "
                         "were recovered around the damage"))
        elif tf.zero_blocks == 0 and count:
            yield _Entry("", error=CorruptArchiveError(
                archive, "ends without the end-of-archive marker (truncated?)"))


def _tar_opener(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_() -> IO[bytes]:
        f = tf.extractfile(info)
        if f is None:  # pragma: no cover - only for links/dirs, filtered above
            raise CorruptArchiveError(info.name, "no content")
        return f
    return open_


# --------------------------------------------------------------------------------------
# Expansion of one archive, recursively, without recursion


def _expand(archive: str, kind: str, fh: IO[bytes], stored_size: int, depth: int,
            limits: Limits, want_data: bool) -> Iterator[tuple[Item, bytes | None]]:
    """Every item under the archive at ``archive`` (itself at ``depth``), depth first.

    Nested archives are pushed on an explicit stack (no recursion). Data is returned for
    readable items when ``want_data``; nested archives are always read (to open them).
    """
    stack: list[tuple[Iterator[_Entry], str, int]] = []

    def push(path: str, k: str, f: IO[bytes], size: int, d: int) -> Item | None:
        if d + 1 > limits.max_archive_depth:
            return Item(path + SEP, None, None, path, d + 1, TooDeepError(
                path, f"archive nested {d} deep; members beyond depth "
                      f"{limits.max_archive_depth} not listed"))
        stack.append((_entries(path, k, f, size, limits), path, d + 1))
        return None

    first = push(archive, kind, fh, stored_size, depth)
    if first is not None:
        yield first, None
        return
    try:
        while stack:
            gen, container, d = stack[-1]
            try:
                entry = next(gen, None)
            except Exception as exc:  # defensive: a reader failing in a way not foreseen
                stack.pop()
                yield Item(container + SEP, None, None, container, d,
                           _as_source_error(exc, container)), None
                continue
            if entry is None:
                stack.pop()
                continue
            path = container + SEP + entry.name
            if entry.error is not None or entry.open is None:
                yield Item(path, entry.size, entry.mtime, container, d, entry.error,
                           flags=entry.flags, original=entry.original), None
                continue
            try:
                with entry.open() as f:
                    sub, head = _sniff_stream(f)
                    data: bytes | None = None
                    if want_data:
                        data = _read_all(f, limits.max_member_size, path, head)
                    elif sub is not None:
                        with suppress(TooLargeError):  # too big to open: reported below
                            data = _read_all(f, limits.max_nested_archive_size, path, head)
            except Exception as exc:
                yield Item(path, entry.size, entry.mtime, container, d,
                           _as_source_error(exc, path), flags=entry.flags,
                           original=entry.original), None
                continue
            item = Item(path, entry.size, entry.mtime, container, d, None, sub, entry.flags,
                        entry.original)
            yield item, (data if want_data else None)
            if sub is None:
                continue
            if data is None or len(data) > limits.max_nested_archive_size:
                yield Item(path + SEP, None, None, path, d + 1, TooLargeError(
                    path, f"nested archive of {entry.size} bytes is over the in-memory limit "
                          f"of {limits.max_nested_archive_size}; scan it separately")), None
                continue
            err = push(path, sub, io.BytesIO(data), len(data), d)
            if err is not None:
                yield err, None
    finally:
        for gen, _, _ in stack:
            gen.close()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Disk


def _open_regular(raw: bytes, path: str) -> IO[bytes]:
    """Open a regular file for reading without ever blocking on a FIFO or device."""
    try:
        st = os.stat(raw)
    except OSError as exc:
        raise _os_error(exc, path) from None
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise UnreadableSourceError(path, "is a folder")
        raise SpecialFileError(path, f"{_kind_of_mode(st.st_mode)}; not opened")
    try:
        fd = os.open(raw, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise _os_error(exc, path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the stat
            raise SpecialFileError(path, "not a regular file; not read")
        return os.fdopen(fd, "rb")
    except OSError as exc:
        os.close(fd)
        raise _os_error(exc, path) from None
    except BaseException:
        os.close(fd)
        raise


def _kind_of_mode(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _os_error(exc: OSError, path: str) -> SourceError:
    if exc.errno == errno.ELOOP:
        return SymlinkLoopError(path, "symbolic link loop")
    if exc.errno == errno.ENOENT:
        return NotFoundError(path, "no such file or folder")
    return UnreadableSourceError(path, exc.strerror or str(exc))


def _disk_file(raw: bytes, limits: Limits, expand: bool,
               extra_flags: Iterable[str] = ()) -> Iterator[Item]:
    path, flags = _render_disk(raw)
    flags |= set(extra_flags)
    fl = tuple(sorted(flags))
    try:
        fh = _open_regular(raw, path)
    except SourceError as exc:
        yield Item(path, error=exc, flags=fl)
        return
    with fh:
        try:
            st = os.fstat(fh.fileno())
            kind, _ = _sniff_stream(fh)
        except OSError as exc:
            yield Item(path, error=_os_error(exc, path), flags=fl)
            return
        yield Item(path, st.st_size, st.st_mtime, None, 0, None, kind, fl)
        if kind is not None and expand:
            for item, _ in _expand(path, kind, fh, st.st_size, 0, limits, False):
                yield item


def _walk(root: bytes, limits: Limits, expand: bool) -> Iterator[Item]:
    """Every file under a folder in sorted (byte) order; iterative, so any depth is safe."""

    def listing(folder: bytes) -> list[os.DirEntry[bytes]] | SourceError:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            return _os_error(exc, _render_disk(folder)[0])

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
                    p = _render_disk(entry.path)[0]
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
                yield from _disk_symlink(entry.path, limits, expand)
            elif entry.is_file(follow_symlinks=False):
                yield from _disk_file(entry.path, limits, expand)
            else:
                p = _render_disk(entry.path)[0]
                mode = entry.stat(follow_symlinks=False).st_mode
                yield Item(p, error=SpecialFileError(p, f"{_kind_of_mode(mode)}; not opened"))
        except OSError as exc:
            p = _render_disk(entry.path)[0]
            yield Item(p, error=_os_error(exc, p))


def _disk_symlink(raw: bytes, limits: Limits, expand: bool) -> Iterator[Item]:
    """A link found while walking: files are followed, folders are not (no loops)."""
    p, flags = _render_disk(raw)
    try:
        st = os.stat(raw)
    except OSError as exc:
        err: SourceError = _os_error(exc, p)
        if isinstance(err, NotFoundError):
            err = BrokenLinkError(p, "broken symbolic link")
        yield Item(p, error=err, flags=tuple(sorted(flags | {FLAG_SYMLINK})))
        return
    if stat.S_ISDIR(st.st_mode):
        return  # linked folders are not followed: no loops, no walking out of the evidence
    yield from _disk_file(raw, limits, expand, [FLAG_SYMLINK])


def _distinct_inputs(inputs: Iterable[str | os.PathLike[str] | bytes]) -> list[bytes]:
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


# --------------------------------------------------------------------------------------
# Public functions


def iter_items(inputs: Iterable[str | os.PathLike[str]], limits: Limits = Limits(), *,
               expand_archives: bool = True) -> Iterator[Item]:
    """Every file of the evidence, archive members included, as items. Never raises.

    Order: inputs in the order given (an input inside another input folder is skipped:
    it would be listed twice); inside a folder, entries sorted by name bytes, depth first;
    an archive is followed by its members, depth first. The same evidence gives the same
    list in every run. Symbolic links to files are followed (flag ``symlink``), links to
    folders are not. With ``expand_archives=False`` archives are listed (``kind`` set) but
    not opened: the caller hands each to ``iter_archive_contents``.
    """
    for raw in _distinct_inputs(inputs):
        path, _ = _render_disk(raw)
        try:
            st = os.stat(raw)
        except OSError as exc:
            err = _os_error(exc, path)
            if isinstance(err, NotFoundError) and os.path.islink(raw):
                err = BrokenLinkError(path, "broken symbolic link")
            yield Item(path, error=err)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(raw, limits, expand_archives)
        else:
            yield from _disk_file(raw, limits, expand_archives)


def _resolve(virtual_path: str, limits: Limits,
             want_kind: bool) -> tuple[IO[bytes], int, str, int]:
    """Open the innermost archive or file named by a virtual path.

    Returns (stream at 0, stored size, archive kind or "" when not an archive or not
    ``want_kind``, depth) for the item itself; raises SourceError.
    """
    parts = virtual_path.split(SEP)
    if any(not p for p in parts[1:]):
        raise UnreadableSourceError(virtual_path, "names an archive as a whole, not a file")
    raw = _unescape(parts[0])
    fh: IO[bytes] = _open_regular(raw, parts[0])
    try:
        container = parts[0]
        size = os.fstat(fh.fileno()).st_size
        for depth, name in enumerate(parts[1:], 1):
            kind, _ = _sniff_stream(fh)
            if kind is None:
                raise NotFoundError(virtual_path, f"{container} is not an archive")
            if depth > limits.max_archive_depth:
                raise TooDeepError(virtual_path, f"nested deeper than "
                                                 f"{limits.max_archive_depth} archives")
            path = container + SEP + name
            data = None
            with closing(_entries(container, kind, fh, size, limits)) as entries:
                for entry in entries:
                    if entry.name == "" and entry.error is not None:
                        raise entry.error
                    if entry.name != name:
                        continue
                    if entry.error is not None or entry.open is None:
                        raise entry.error or NotFoundError(path, "no content")
                    try:
                        with entry.open() as f:
                            data = _read_all(f, limits.max_member_size, path)
                    except Exception as exc:
                        raise _as_source_error(exc, path) from None
                    break
            if data is None:
                raise NotFoundError(path, f"no member {name!r} in {container}")
            fh.close()
            fh, size, container = io.BytesIO(data), len(data), path
        if want_kind:
            kind, _ = _sniff_stream(fh)
            fh.seek(0)
        return fh, size, (kind or "") if want_kind else "", len(parts) - 1
    except BaseException:
        fh.close()
        raise


def read_item(virtual_path: str, limits: Limits = Limits()) -> bytes:
    """The content of one item, from disk or from inside its archives (in memory only).

    Works in any process: the virtual path is all it needs. Raises a ``SignalError``
    subclass (never anything else) when the item cannot be read. Archive members are
    bounded by ``limits.max_member_size``; plain files are read whole.
    """
    try:
        fh, _, _, _ = _resolve(virtual_path, limits, False)
        with fh:
            if isinstance(fh, io.BytesIO):
                return fh.getvalue()
            return fh.read()
    except SignalError:
        raise
    except OSError as exc:
        raise _os_error(exc, virtual_path) from None
    except Exception as exc:  # pragma: no cover - defensive: the contract is typed errors
        raise UnreadableSourceError(virtual_path, f"{type(exc).__name__}: {exc}") from None


def iter_archive_contents(virtual_path: str, limits: Limits = Limits()
                          ) -> Iterator[tuple[Item, bytes | None]]:
    """Every item under one archive with its bytes (None for error items), in one pass.

    Yields the same items, in the same order, as ``iter_items`` lists under that archive
    (not the archive itself). Use it for compressed tars, where ``read_item`` per member
    would decompress the archive again for each member. Never raises: a problem opening
    the archive is one error item ``virtual_path + "!/"``.
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
        yield from _expand(virtual_path, kind, fh, size, depth, limits, True)


__all__ = [
    "FLAG_ABSOLUTE",
    "FLAG_BACKSLASH",
    "FLAG_DUPLICATE",
    "FLAG_ESCAPED",
    "FLAG_NOT_UTF8",
    "FLAG_SYMLINK",
    "FLAG_TRAVERSAL",
    "SEP",
    "ArchiveBombError",
    "BrokenLinkError",
    "CorruptArchiveError",
    "EncryptedMemberError",
    "Item",
    "Limits",
    "LinkMemberError",
    "NotFoundError",
    "SourceError",
    "SpecialFileError",
    "SymlinkLoopError",
    "TooDeepError",
    "TooLargeError",
    "TooManyMembersError",
    "UnreadableSourceError",
    "UnsupportedMemberError",
    "disk_path",
    "iter_archive_contents",
    "iter_items",
    "read_item",
    "sniff_archive",
]
