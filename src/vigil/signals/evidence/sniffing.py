"""Is this an archive? Decided by content (magic bytes), never by the name.

* ``sniff_archive(head)``: zip, tar, or tar compressed with gzip, bzip2 or xz, from the
  first bytes. A compressed stream that is not a tar is not an archive here.
* ``embedded_zip(f, size)``: a zip *after* other content — appended to a JPEG
  (``cat photo.jpg stash.zip``) or behind a self-extractor's ``MZ`` stub. Such files open
  as the outer format in every viewer, which is exactly why they hide material; forensic
  tools carve them, and so do we. Found from the zip's end-of-central-directory record
  at the end of the file; ``zipfile`` then opens it with the prefix as an offset.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import tarfile
import zlib
from collections.abc import Callable
from typing import IO, Protocol

_SNIFF = 64 * 1024
_SNIFF_BZ2 = 1024 * 1024  # bzip2 emits nothing before a whole block (up to 900 kB) is in

#: End of central directory: signature, then fixed fields, then a comment of up to 64 KiB.
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_CENTRAL_SIG = b"PK\x01\x02"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
#: How far from the end an end-of-central-directory record can start.
TAIL = _EOCD.size + 0xFFFF


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


_COMPRESSED: tuple[tuple[bytes, str, Callable[[], _Decompressor]], ...] = (
    (b"\x1f\x8b", "tar.gz", lambda: zlib.decompressobj(31)),
    (b"BZh", "tar.bz2", bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", "tar.xz", lzma.LZMADecompressor),
)


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` starts with a valid POSIX/GNU tar header."""
    if len(block) < 512 or block[257:262] != b"ustar":
        return False
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def sniff_archive(head: bytes) -> str | None:
    """The archive format the first bytes announce (zip, tar, tar.gz, ...), or None.

    Needs the first 64 KiB (1 MiB for bzip2) to see the tar header inside a compressed
    stream. A compressed stream that is not a tar is not an archive here.
    """
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if is_tar_header(head):
        return "tar"
    for magic, kind, make in _COMPRESSED:
        if head.startswith(magic):
            try:
                out = make().decompress(head, 512)
            except Exception:  # any decoder complaint: not a (readable) compressed tar
                return None
            return kind if is_tar_header(out) else None
    return None


def sniff_stream(f: IO[bytes]) -> tuple[str | None, bytes]:
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


def embedded_zip(f: IO[bytes], size: int) -> bool:
    """Whether a zip with at least one member ends the seekable file ``f`` of ``size`` bytes.

    Reads at most the last 64 KiB + 22 bytes (where the end record must be) and 4 bytes at
    the central directory it points to, so a random ``PK\\x05\\x06`` in a photo's last
    bytes is not taken for a zip. Leaves ``f`` at an unspecified position.
    """
    if size < _EOCD.size:
        return False
    start = max(0, size - TAIL)
    f.seek(start)
    tail = f.read(size - start)
    pos = tail.rfind(_EOCD_SIG)
    while pos >= 0:
        if _plausible_end(f, tail, pos, start):
            return True
        pos = tail.rfind(_EOCD_SIG, 0, pos)
    return False


def _plausible_end(f: IO[bytes], tail: bytes, pos: int, start: int) -> bool:
    if pos + _EOCD.size > len(tail):
        return False
    _, disk, cd_disk, _, entries, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, pos)
    if pos + _EOCD.size + comment > len(tail) or disk != 0 or cd_disk != 0 or entries == 0:
        return False
    end = start + pos
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        # Zip64: the real figures are in the zip64 record the locator (just before) names.
        return pos >= 20 and tail[pos - 20 : pos - 16] == _ZIP64_LOCATOR_SIG
    central = end - cd_size
    if central < 0 or cd_offset > central:
        return False
    f.seek(central)
    return f.read(4) == _CENTRAL_SIG
