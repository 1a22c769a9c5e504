"""Why an item of evidence cannot be listed or read: one typed error per cause.

Each error has a stable ``code`` (reports and JSON carry it) and compares by value, so
two listings of the same evidence compare equal item by item. They pickle through
``SignalError.__reduce__``, so errors survive the trip back from a worker process.
"""

from __future__ import annotations

from vigil.signals.errors import SignalError, UnreadableFileError


class SourceError(SignalError):
    """Base of the enumeration errors; compares by value so item lists can be compared."""

    code = "source-error"

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other) and isinstance(other, SourceError)
                and self.path == other.path and self.cause == other.cause)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.path, self.cause))


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


def as_source_error(exc: BaseException, path: str) -> SourceError:
    """``exc`` as it happened reading ``path``: typed errors unchanged, anything else (a
    reader failing on a damaged archive) as ``corrupt-archive``."""
    if isinstance(exc, SourceError):
        return exc
    return CorruptArchiveError(path, f"cannot read: {type(exc).__name__}: {exc}")
