"""HMA's lookup vocabulary over Vigil's matcher: signal type names, queries, answer shapes.

Hasher-Matcher-Actioner (HMA) names signal types as python-threatexchange does and
answers lookups as ``{bank: [{"bank_content_id": int, "distance": str}]}``. This module
turns HMA's (signal_type, signal) into Vigil queries and Vigil's matches into HMA's
shapes; ``vigil.api.routes.hma`` serves them behind Vigil's authentication and audit log.

* ``pdq`` → Vigil ``pdq`` (distance: the Hamming distance, e.g. ``"4"``);
* ``video_md5`` / ``video_sha256`` → Vigil ``md5`` / ``sha256`` (exact: ``"-"``, as
  pytx writes a match without a distance);
* ``vpdq`` and ``vigil_vpdq`` → Vigil ``vpdq`` from pytx's vPDQ text (distance: the
  query's and the banked video's matched percentages, ``"100%[97%]"``, as pytx writes them).

``bank_content_id`` is the Vigil entry's id. Vigil's own names ``md5``, ``sha1`` and
``sha256`` are accepted too (an HMA client never sends them).
"""

from __future__ import annotations

import time

from vigil.banks.entry import check_signal
from vigil.interop.vpdqjson import MAX_CHARS, from_pytx, to_pytx
from vigil.matching import Match, Query
from vigil.signals import FileSignals
from vigil.signals.vpdq import vpdq_digest

#: HMA (pytx) signal type name -> Vigil signal type
SIGNAL_TYPES: dict[str, str] = {"pdq": "pdq", "video_md5": "md5", "video_sha256": "sha256",
                                "vpdq": "vpdq", "vigil_vpdq": "vpdq", "md5": "md5",
                                "sha1": "sha1", "sha256": "sha256"}
#: HMA content types a file upload names, and the signal types each gives
CONTENT_TYPES: dict[str, tuple[str, ...]] = {"photo": ("pdq",),
                                             "video": ("video_md5", "video_sha256", "vpdq")}
#: the signal types ``GET /m/index/status`` reports, by HMA's names
HMA_TYPES = ("pdq", "video_md5", "video_sha256", "vpdq")
NO_DISTANCE = "-"
#: the longest signal a lookup takes (a vPDQ text of a day of video)
MAX_SIGNAL_CHARS = MAX_CHARS


class HmaRequestError(ValueError):
    """A lookup HMA would answer 400: the message names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def query_of(signal_type: str, signal: str) -> Query:
    """The Vigil query for HMA's ``signal_type`` and ``signal``; HmaRequestError if invalid
    (the message never repeats the signal)."""
    vigil_type = SIGNAL_TYPES.get(signal_type.strip().lower())
    if vigil_type is None:
        raise HmaRequestError("signal_type", f"No such SignalType '{signal_type[:40]}'; known: "
                                          f"{', '.join(SIGNAL_TYPES)}")
    if vigil_type == "vpdq":
        try:
            frames = from_pytx(signal)
        except ValueError as exc:
            raise HmaRequestError("signal", f"invalid signal: {exc}") from None
        return Query("vpdq", vpdq_digest(frames), frames=tuple(frames))
    try:
        t, v = check_signal(vigil_type, signal)
    except ValueError as exc:
        raise HmaRequestError("signal", f"invalid signal: {exc}") from None
    return Query(t, v)


def distance_str(m: Match) -> str:
    """A match's distance as HMA writes it (see the module doc)."""
    if m.video is not None:
        s = m.video.score
        return f"{s.query_pct:.0f}%[{s.compared_pct:.0f}%]"
    if m.signal_type == "pdq":
        return str(int(m.distance))
    return NO_DISTANCE


def by_bank(matches: list[Match]) -> dict[str, list[dict[str, object]]]:
    """HMA's lookup answer for one signal: matched entries by bank, best first."""
    out: dict[str, list[dict[str, object]]] = {}
    for m in matches:
        out.setdefault(m.entry.bank, []).append(
            {"bank_content_id": int(m.entry.id), "distance": distance_str(m)})
    return out


def file_signals(r: FileSignals, content_type: str) -> dict[str, str]:
    """What HMA's hasher returns for a file of ``content_type``: signal type -> signal."""
    out: dict[str, str] = {}
    wanted = CONTENT_TYPES[content_type]
    if "pdq" in wanted and r.pdq is not None:
        out["pdq"] = r.pdq.hex
    if r.digests is not None:
        if "video_md5" in wanted:
            out["video_md5"] = r.digests.md5
        if "video_sha256" in wanted:
            out["video_sha256"] = r.digests.sha256
    if "vpdq" in wanted and r.vpdq:
        out["vpdq"] = to_pytx(list(r.vpdq))
    return out


def built_to(lag_seconds: float) -> int:
    """HMA's ``built_to`` (Unix seconds the index is current up to): when the node's index
    last caught up with its store."""
    return int(time.time() - lag_seconds)


__all__ = [
    "CONTENT_TYPES",
    "HMA_TYPES",
    "MAX_SIGNAL_CHARS",
    "NO_DISTANCE",
    "SIGNAL_TYPES",
    "HmaRequestError",
    "built_to",
    "by_bank",
    "distance_str",
    "file_signals",
    "query_of",
]
