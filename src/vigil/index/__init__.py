"""Engine layer: exact Hamming radius search for PDQ codes and exact-digest lookup.

Knows nothing of banks or agencies: it maps caller-chosen int64 ids to codes and answers
"which ids are within r bits of this code?" exactly. ``BruteForceIndex`` is the reference
every optimised path is tested against.
"""

from vigil.index.brute import BruteForceIndex
from vigil.index.codes import codes_from_hex, hamming, hex_from_codes
from vigil.index.exact import DIGEST_SIZES, ExactIndex, digests_from_hex
from vigil.index.mih import HammingIndex
from vigil.index.result import SearchResult

__all__ = [
    "DIGEST_SIZES",
    "BruteForceIndex",
    "ExactIndex",
    "HammingIndex",
    "SearchResult",
    "codes_from_hex",
    "digests_from_hex",
    "hamming",
    "hex_from_codes",
]
