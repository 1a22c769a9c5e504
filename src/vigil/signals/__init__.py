"""The signals layer: turning media into hashes (PDQ for images, vPDQ for videos,
MD5/SHA-1/SHA-256 for any file). Knows nothing of banks or agencies.

Public entry points (one pipeline for every command):

* ``hash_item(virtual_path, HashOptions(...)) -> FileSignals`` — everything about one file
  on disk or inside archives; ``hash_bytes(data, name, options)`` for content in memory;
  ``hash_file(os_path, options)`` as a convenience.
* ``vigil.signals.evidence`` — the evidence walker: folders, files, nested archives.
* ``vigil.signals.runner`` — many files in worker processes that may die.
* ``pdq_of_image`` / ``pdq_reference`` — PDQ of an image in fast or reference mode.
"""

from vigil.signals.digests import Digests, digests_of_bytes, digests_of_stream
from vigil.signals.errors import (
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    SignalError,
    UnreadableFileError,
    WorkerDiedError,
)
from vigil.signals.options import HashOptions
from vigil.signals.pdq import DIHEDRAL_NAMES, PdqHash, PdqResult, pdq_of_image, pdq_reference
from vigil.signals.pipeline import hash_bytes, hash_file, hash_item
from vigil.signals.result import FileSignals

__all__ = [
    "DIHEDRAL_NAMES",
    "CorruptImageError",
    "Digests",
    "EmptyFileError",
    "FileSignals",
    "HashOptions",
    "ImageTooLargeError",
    "PdqHash",
    "PdqResult",
    "SignalError",
    "UnreadableFileError",
    "WorkerDiedError",
    "digests_of_bytes",
    "digests_of_stream",
    "hash_bytes",
    "hash_file",
    "hash_item",
    "pdq_of_image",
    "pdq_reference",
]
