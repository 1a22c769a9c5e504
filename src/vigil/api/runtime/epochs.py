"""Counters shared by every process of a node on one host (token revocations, new banks)."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar


class EpochFile:
    """Counters shared by every process of a node on one host: a small memory-mapped file.

    A process that changes what others cache (revokes a token, creates a bank) bumps a
    counter after its transaction commits; the others compare it on every use (a read
    from shared memory, no system call) and drop their cache when it moved.
    """

    SLOTS: ClassVar[dict[str, int]] = {"auth": 0, "banks": 1}
    _SIZE = 8 * 8

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < self._SIZE:
                os.ftruncate(fd, self._SIZE)  # zero-filled; racing creators agree
            self._mm = mmap.mmap(fd, self._SIZE, mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self.path = path

    def read(self, name: str) -> int:
        return int(struct.unpack_from("<Q", self._mm, 8 * self.SLOTS[name])[0])

    def reader(self, name: str) -> Callable[[], int]:
        off = 8 * self.SLOTS[name]
        mm, unpack = self._mm, struct.unpack_from
        return lambda: int(unpack("<Q", mm, off)[0])

    def bump(self, name: str) -> None:
        off = 8 * self.SLOTS[name]
        with open(self.path, "rb") as lock:  # serialise bumps of several processes
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = struct.unpack_from("<Q", self._mm, off)[0]
            struct.pack_into("<Q", self._mm, off, (value + 1) & 0xFFFF_FFFF_FFFF_FFFF)

    def close(self) -> None:
        self._mm.close()


def epoch_file(home: Path) -> EpochFile:
    """The node's shared counters under ``VIGIL_HOME/run``; a CLI that revokes a token or
    disables a user can ``epoch_file(home).bump("auth")`` so running workers notice at once."""
    return EpochFile(home / "run" / "cache-epochs")
