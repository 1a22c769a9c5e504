"""Match policy: which signals are looked up where, and how hits become leads.

* ``Matcher`` (``matcher``) over two seams (``protocols``): an ``EntrySource`` and a
  ``SignalIndex``; the CLI and the server each bring their own implementations.
* ``Query``, ``Match``, ``Outcome`` (``query``): what goes in and what comes out.
* ``video_detail`` / ``describe_video`` (``describe``): a video match for machines and people.
"""

from vigil.matching.describe import describe_video, video_detail
from vigil.matching.matcher import Matcher
from vigil.matching.protocols import EXACT_TYPES, EntrySource, SignalIndex
from vigil.matching.query import (
    DEFAULT_MIN_QUALITY,
    DEFAULT_THRESHOLD,
    Match,
    Outcome,
    Query,
    parse_query,
    queries_of,
)

__all__ = [
    "DEFAULT_MIN_QUALITY",
    "DEFAULT_THRESHOLD",
    "EXACT_TYPES",
    "EntrySource",
    "Match",
    "Matcher",
    "Outcome",
    "Query",
    "SignalIndex",
    "describe_video",
    "parse_query",
    "queries_of",
    "video_detail",
]
