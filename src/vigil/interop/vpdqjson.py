"""vPDQ as python-threatexchange writes it: a JSON list of ``"pdq_hex,quality,seconds"``.

pytx's vPDQ signal (and HMA's) is that text, one string per sampled frame in frame order;
Vigil keeps vpdq's ``frame,quality,pdq_hex,seconds`` lines. Both hold the same frames, so
a video banked in Vigil can be handed to pytx and looked up from HMA-style requests.

Limits, checked before and while parsing: at most ``MAX_CHARS`` characters and
``MAX_FRAMES`` frames (a day of video at one frame per second).
"""

from __future__ import annotations

import io
import json

from vigil.signals.vpdq import VpdqFormatError, VpdqFrame, read_vpdq

MAX_FRAMES = 86_400
MAX_CHARS = MAX_FRAMES * 100


def to_pytx(frames: list[VpdqFrame]) -> str:
    """The frames as pytx's vPDQ signal string (seconds with three decimals)."""
    return json.dumps([f"{f.pdq},{f.quality},{f.seconds:.3f}" for f in frames])


def from_pytx(text: str) -> list[VpdqFrame]:
    """Frames from pytx's vPDQ signal string; ValueError says what is wrong (never the
    hashes themselves)."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"a vPDQ signal is at most {MAX_CHARS:,} characters")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"a vPDQ signal is a JSON list of strings: {exc.msg} at character "
                         f"{exc.pos}") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("a vPDQ signal is a JSON list of \"pdq_hex,quality,seconds\" strings")
    if not items:
        raise ValueError("a vPDQ signal has at least one frame")
    if len(items) > MAX_FRAMES:
        raise ValueError(f"a vPDQ signal has at most {MAX_FRAMES:,} frames")
    if any(i.count(",") != 2 for i in items):
        bad = next(n for n, i in enumerate(items) if i.count(",") != 2)
        raise ValueError(f"vPDQ frame {bad}: expected \"pdq_hex,quality,seconds\"")
    try:
        return read_vpdq(io.StringIO("\n".join(items)))
    except VpdqFormatError as exc:
        raise ValueError(f"vPDQ {str(exc).replace('line ', 'frame ')}") from None


__all__ = ["MAX_CHARS", "MAX_FRAMES", "from_pytx", "to_pytx"]
