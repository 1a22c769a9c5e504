"""Reading with limits: bounded reads into memory and a decompression budget per archive.

Decompression bombs are stopped while they decompress, never after: every byte a
compressed stream yields is charged to its archive's budget (by ratio and by total
expansion), and reading stops at the first byte over.
"""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING

from vigil.signals.evidence.errors import ArchiveBombError, SourceError, TooLargeError
from vigil.signals.evidence.items import Limits

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20


def read_all(f: IO[bytes], limit: int, path: str, head: bytes = b"") -> bytes:
    """Everything left in ``f`` after ``head``; TooLargeError past ``limit`` bytes."""
    chunks = [head]
    n = len(head)
    if n > limit:
        raise TooLargeError(path, f"larger than the limit of {limit} bytes")
    while True:
        b = f.read(min(CHUNK, limit + 1 - n))
        if not b:
            break
        n += len(b)
        chunks.append(b)
        if n > limit:
            raise TooLargeError(path, f"larger than the limit of {limit} bytes")
    return b"".join(chunks)


class Budget:
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
        """Count ``n`` more bytes; raise the budget's error once it is overrun."""
        err = self.check(n)
        self.used += n
        if err is not None:
            raise err


class CountingReader(io.RawIOBase):
    """Counts a decompressed stream against a budget, raising once it is overrun."""

    def __init__(self, inner: IO[bytes], budget: Budget) -> None:
        self._inner = inner
        self.budget = budget

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data = self._inner.read(n if n is not None and n >= 0 else CHUNK)
        self.budget.charge(len(data))
        return data

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)
