"""The signals layer: turning media into hashes (PDQ for images, vPDQ for videos,
MD5/SHA-1/SHA-256 for any file). Knows nothing of banks or agencies.

Public entry points (one pipeline for every command):

* ``hash_item(virtual_path, HashOptions(...)) -> FileSignals`` — everything about one file
  on disk or inside archives; ``hash_bytes(data, name, options)`` for content in memory;
  ``hash_file(os_path, options)`` as a convenience.
* ``vigil.signals.evidence`` — the evidence walker: folders, files, nested archives.
* ``vigil.signals.runner`` — many files in worker processes that may die.
* ``pdq_of_image`` / ``pdq_reference`` — PDQ of an image in fast or reference mode.

Importing this package loads nothing heavy: each name above is loaded on first use
(``__getattr__``). Why: ``vigil scan`` starts its workers' fork server
(``vigil.signals.forkstart``) before it imports the hashing stack, so the two load side by
side, and a submodule import would otherwise load Numba, Pillow and PyAV first (0.3 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: each public name and the module that defines it
_WHERE = {
    "Digests": "digests", "digests_of_bytes": "digests", "digests_of_stream": "digests",
    "CorruptImageError": "errors", "EmptyFileError": "errors", "ImageTooLargeError": "errors",
    "SignalError": "errors", "UnreadableFileError": "errors", "WorkerDiedError": "errors",
    "HashOptions": "options", "DIHEDRAL_NAMES": "pdq", "PdqHash": "pdq", "PdqResult": "pdq",
    "pdq_of_image": "pdq", "pdq_reference": "pdq", "hash_bytes": "pipeline",
    "hash_file": "pipeline", "hash_item": "pipeline", "FileSignals": "result",
}


def __getattr__(name: str) -> Any:
    """A public name, loaded from its module on first use (then kept here)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


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
