"""Exact signals (MD5, SHA-1, SHA-256) computed together in one read of a file.

Agencies' hash sets are keyed by different digests (Project VIC by MD5 and SHA-1,
NCMEC by MD5, newer lists by SHA-256), so every file gets all three. Reading a
multi-gigabyte video three times would triple the I/O; one pass feeds all three.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import IO

from vigil.signals.pickling import plain_state

CHUNK_SIZE = 1 << 20


@plain_state
@dataclass(frozen=True, slots=True)
class Digests:
    """The exact signals of one byte string, as lowercase hex."""

    md5: str
    sha1: str
    sha256: str
    size: int


class _Digester:
    """Feeds the same bytes to all three hash functions."""

    def __init__(self) -> None:
        self._h = (hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False),
                   hashlib.sha256())
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        for h in self._h:
            h.update(data)
        self.size += len(data)

    def result(self) -> Digests:
        md5, sha1, sha256 = (h.hexdigest() for h in self._h)
        return Digests(md5=md5, sha1=sha1, sha256=sha256, size=self.size)


def digests_of_bytes(data: bytes | memoryview) -> Digests:
    """All three digests of bytes already in memory."""
    d = _Digester()
    d.update(data)
    return d.result()


def digests_of_stream(stream: IO[bytes], chunk_size: int = CHUNK_SIZE) -> Digests:
    """All three digests of a stream, read once in chunks so memory stays flat."""
    d = _Digester()
    while chunk := stream.read(chunk_size):
        d.update(chunk)
    return d.result()
