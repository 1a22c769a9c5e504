"""Where the audit chain's head probably is, shared by a host's processes, and their lock.

Why: chaining a record needs the MAC of the one before it, so an append used to read the
head row (a round trip, holding its lock) before it could send the rows (a second round
trip). On PostgreSQL that first round trip was about half the database's CPU for an
append. Each process of a node's host appends in turn under one file lock, and whoever
commits last leaves the head here, so the next appender usually knows it already and
sends its rows with a *conditional* head update in one statement. The hint is only a
guess: the database checks it (``WHERE last_id = … AND last_hash = …``), and when
anything else moved the head (a CLI command, another host) the append finds out and
takes the two-trip path. Nothing in it is secret: ids and MACs are in the log itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

_FORMAT = struct.Struct("<Q64s")  # last id, last MAC (hex)


class HeadHint:
    """The last (id, MAC) this host's appenders committed, and the lock they append under.

    With ``folder`` the hint and the lock are a file shared by every process of the host;
    without, they live in this process only.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        # flock does not exclude this process's threads; re-entrant for the holding thread
        self._thread_lock = threading.RLock()
        self._depth = 0  # how deep the holding thread is in ``locked`` (flock at depth 1)
        self._fd: int | None = None
        self._local: tuple[int, str] | None = None

    def _file(self) -> int:
        if self._fd is None:
            assert self.folder is not None
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.folder / "head.hint", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                               0o600)
        return self._fd

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the host-wide append lock (the hint is read and written under it).
        Re-entrant in one thread: the group committer holds it around a whole flush."""
        with self._thread_lock:
            if self.folder is None or self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)

    def get(self) -> tuple[int, str] | None:
        """The hinted head, or None when there is none yet (call under ``locked``)."""
        if self.folder is None:
            return self._local
        raw = os.pread(self._file(), _FORMAT.size, 0)
        if len(raw) != _FORMAT.size:
            return None
        last_id, mac = _FORMAT.unpack(raw)
        return (int(last_id), mac.decode("ascii")) if last_id else None

    def set(self, last_id: int, mac: str) -> None:
        """Leave the head just committed (call under ``locked``)."""
        if self.folder is None:
            self._local = (last_id, mac)
            return
        os.pwrite(self._file(), _FORMAT.pack(last_id, mac.encode("ascii")), 0)
