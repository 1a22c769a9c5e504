"""Typed failures of turning one file into signals.

A scan over a seized device meets every kind of broken file. Each failure is a typed
exception that names the file and the cause, so callers can record it as an error row
and carry on instead of stopping the whole job.
"""

from __future__ import annotations

from pathlib import Path


class SignalError(Exception):
    """Base class: a file could not be turned into (some of) its signals."""

    #: short machine-readable reason, stable across releases (used in reports and JSON)
    code = "signal-error"

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")

    def __reduce__(self) -> tuple[type[SignalError], tuple[str, str]]:
        # Exception pickles its args (the formatted message), not (path, cause): rebuild
        # from the two fields so an error survives the trip back from a worker process.
        return (type(self), (self.path, self.cause))


class UnreadableFileError(SignalError):
    """The file could not be opened or read (permissions, I/O error, vanished)."""

    code = "unreadable"


class EmptyFileError(SignalError):
    """The file has zero bytes: nothing to hash but the empty digest."""

    code = "empty-file"


class CorruptImageError(SignalError):
    """The content says image, but decoding failed (truncated, corrupt, unsupported codec)."""

    code = "corrupt-image"


class ImageTooLargeError(SignalError):
    """The declared pixel count exceeds the limit: refused before decoding (bomb guard)."""

    code = "image-too-large"


class WorkerDiedError(SignalError):
    """The worker process hashing this file died twice while on it (killed, out of memory,
    a crash in a decoder): the file is recorded without signals and the run goes on."""

    code = "worker-died"
