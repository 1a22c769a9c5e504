"""The array types the engine takes and returns, named for what they hold.

Why names and not bare ``np.ndarray``: a signature that says ``Codes`` and ``Ids`` tells
the reader the layout (and the type checker the dtype) that a bare array hides; a PDQ
code passed where a digest or a word view is expected is then visible at review time.
NumPy's types carry the dtype only; the shapes are documented here and checked at run
time by the functions that take them (``check_codes``, ``as_ids``).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

#: ``(N, 32)`` PDQ codes; byte ``i`` of a row is ``bytes.fromhex(hex)[i]``
Codes: TypeAlias = NDArray[np.uint8]
#: ``(N, k)`` exact digests (MD5 k=16, SHA-1 k=20, SHA-256 k=32), bytes as in the hex
Digests: TypeAlias = NDArray[np.uint8]
#: ``(N, 4)`` codes as little-endian 64-bit words: the kernels' zero-copy view of ``Codes``
Words: TypeAlias = NDArray[np.uint64]
#: ``(N,)`` the caller's ids (bank entry ids, video frame keys)
Ids: TypeAlias = NDArray[np.int64]
#: ``(N,)`` Hamming distances in bits
Distances: TypeAlias = NDArray[np.int32]
#: ``(N,)`` row positions or query indexes
Positions: TypeAlias = NDArray[np.int64]
#: ``(N,)`` 1 for a live row, 0 for a removed one (a tombstone)
Alive: TypeAlias = NDArray[np.uint8]
#: ``(N,)`` a yes/no per row
Flags: TypeAlias = NDArray[np.bool_]
