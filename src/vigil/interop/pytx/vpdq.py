"""``vigil_vpdq``: Vigil's vPDQ as a python-threatexchange signal type.

pytx's own ``vpdq`` signal type needs Meta's ``vpdq`` C++ library at import time; this one
hashes with Vigil's engine (PyAV, bit-compatible with vpdq: see ``vigil.signals.vpdq``)
and matches with vpdq's rule (frames of quality >= 50 within PDQ distance 31; a match
when >= 80% of the query's unique frames matched), through Vigil's reference scorer. Its
signal string is pytx's vPDQ text (``vigil.interop.vpdqjson``), so the two types read
each other's strings. No ``from __future__ import annotations`` here: pytx's CLI reads
the annotations of the classes it is given at run time.
"""

import pathlib
import typing as t

from threatexchange.content_type.content_base import ContentType
from threatexchange.content_type.video import VideoContent
from threatexchange.signal_type import index, signal_base

from vigil.index.video import DISTANCE, MIN_COMPARED_PCT, MIN_QUERY_PCT, QUALITY, brute_force_score
from vigil.interop.vpdqjson import from_pytx, to_pytx
from vigil.signals.vpdq import hash_video


class VigilVpdqSimilarity(index.SignalSimilarityInfo):
    """Both percentages of a video comparison, shown as pytx shows vPDQ: ``query%[compared%]``."""

    def __init__(self, query_pct: float, compared_pct: float) -> None:
        self.query_pct, self.compared_pct = query_pct, compared_pct

    def pretty_str(self) -> str:
        return f"{self.query_pct:.0f}%[{self.compared_pct:.0f}%]"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, VigilVpdqSimilarity)
                and (self.query_pct, self.compared_pct) == (other.query_pct,
                                                            other.compared_pct))

    def __hash__(self) -> int:
        return hash((self.query_pct, self.compared_pct))


class VigilVpdqSignal(signal_base.SimpleSignalType, signal_base.FileHasher):
    """Video vPDQ, hashed and compared by Vigil (see the module doc)."""

    @classmethod
    def get_name(cls) -> str:
        return "vigil_vpdq"

    @classmethod
    def get_content_types(cls) -> list[type[ContentType]]:
        return [VideoContent]

    @classmethod
    def get_index_cls(cls) -> type[index.SignalTypeIndex[t.Any]]:
        return VigilVpdqIndex

    @classmethod
    def validate_signal_str(cls, signal_str: str) -> str:
        return to_pytx(from_pytx(signal_str))

    @classmethod
    def hash_from_file(cls, file: pathlib.Path) -> str:
        frames = hash_video(file)
        return to_pytx(frames) if frames else ""

    @classmethod
    def compare_hash(cls, hash1: str, hash2: str) -> signal_base.SignalComparisonResult:
        """``hash1`` is the banked video, ``hash2`` the query (pytx's linear index calls it
        so); the percentages are of the query's and the banked video's unique frames."""
        score = brute_force_score(from_pytx(hash2), from_pytx(hash1), distance=DISTANCE,
                                  quality=QUALITY)
        return signal_base.SignalComparisonResult(
            score.is_match(MIN_QUERY_PCT, MIN_COMPARED_PCT),
            VigilVpdqSimilarity(score.query_pct, score.compared_pct))

    @staticmethod
    def get_examples() -> list[str]:
        # two frames of pytx's own PDQ examples (benign sample hashes)
        return ['["f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,100,0.000",'
                ' "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22,100,1.000"]']


class VigilVpdqIndex(signal_base.TrivialLinearSearchHashIndex[t.Any]):
    """Every banked video scored against the query (pytx keeps such indexes small)."""

    _SIGNAL_TYPE = VigilVpdqSignal


__all__ = ["VigilVpdqIndex", "VigilVpdqSignal", "VigilVpdqSimilarity"]
