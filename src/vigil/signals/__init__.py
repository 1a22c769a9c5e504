"""The signals layer: turning media into hashes (PDQ for images, MD5/SHA-1/SHA-256 for any file).

Knows nothing of banks or agencies. Public entry points:

* ``hash_file(path, HashOptions(...)) -> FileSignals`` — everything about one file.
* ``pdq_of_image`` / ``pdq_reference`` — PDQ of an image in fast or reference mode.
"""

from vigil.signals.digests import Digests, digests_of_bytes, digests_of_stream
from vigil.signals.errors import (
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    SignalError,
    UnreadableFileError,
)
from vigil.signals.files import FileSignals, HashOptions, hash_bytes, hash_file, iter_files
from vigil.signals.pdq import DIHEDRAL_NAMES, PdqHash, PdqResult, pdq_of_image, pdq_reference

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
    "digests_of_bytes",
    "digests_of_stream",
    "hash_bytes",
    "hash_file",
    "iter_files",
    "pdq_of_image",
    "pdq_reference",
]
