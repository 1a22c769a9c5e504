"""Keyframes of a video for a reviewer: a few small pictures spread over the whole video,
kept from the frames vPDQ decodes anyway (no second decode).

Why spread and why bounded: a reviewer decides what a video is from a handful of moments
across it (one frame can be an intro, a title or black), and a scan must not hold a
picture of every sampled frame of a two-hour video. ``KeyframeKeeper`` sees the sampled
frames one by one without knowing how many will come, and holds at most ``2 * count``
small pictures: it keeps every ``stride``-th sampled frame and, when it holds too many,
drops every other one and doubles the stride. At the end it shows ``count`` of what it
holds, spread evenly. ``choose`` says the same from the number of sampled frames alone
(the plain reference; tests compare the two).

A keyframe is a convenience, like a thumbnail: a frame whose picture cannot be made is
left out, never the video's error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vigil.signals.pickling import plain_state

#: keyframes kept per video (at most: a short video has fewer sampled frames)
KEYFRAMES = 6


@plain_state
@dataclass(frozen=True, slots=True)
class Keyframe:
    """One kept frame: when it is (nominal seconds, as vPDQ stamps it) and its picture (a
    small greyscale JPEG, ``vigil.signals.thumbnail``)."""

    seconds: float
    jpeg: bytes


def spread(n: int, count: int) -> list[int]:
    """``count`` of the indices ``0..n-1`` spread evenly: the middle of each of ``count``
    equal parts (all of them when there are no more than ``count``)."""
    if n <= count:
        return list(range(n))
    return [(2 * j + 1) * n // (2 * count) for j in range(count)]


def _stride(n: int, hold: int) -> int:
    """The smallest power of two that leaves at most ``hold`` of ``n`` sampled frames."""
    s = 1
    while -(-n // s) > hold:
        s *= 2
    return s


def choose(sampled: int, count: int = KEYFRAMES) -> list[int]:
    """Which sampled frames (by their order among the sampled ones) a video with
    ``sampled`` sampled frames shows: what ``KeyframeKeeper`` ends with, computed plainly."""
    candidates = list(range(0, sampled, _stride(sampled, 2 * count)))
    return [candidates[i] for i in spread(len(candidates), count)]


class KeyframeKeeper:
    """Keeps pictures of a video's sampled frames as they are decoded (see the module).

    ``offer`` is called for sampled frames ``0, 1, 2, ...`` in order (what ``choose``
    assumes; a decoder that skips one makes vPDQ decode the video again anyway, with a
    new keeper); ``make`` is only called for a frame the keeper keeps (making a picture
    costs a little; most frames are not kept).
    """

    def __init__(self, count: int = KEYFRAMES) -> None:
        if count < 1:
            raise ValueError("a keeper keeps at least one keyframe")
        self.count = count
        self.hold = 2 * count
        self.stride = 1
        self.offered = 0
        self._kept: list[tuple[int, float, bytes | None]] = []

    def offer(self, index: int, seconds: float, make: Callable[[], bytes | None]) -> None:
        if index < self.offered:  # never from vPDQ's loops: frames come in order
            return
        self.offered = index + 1
        if index % self.stride:
            return
        self._kept.append((index, seconds, make()))
        if len(self._kept) > self.hold:
            self.stride *= 2
            self._kept = [k for k in self._kept if k[0] % self.stride == 0]

    def chosen(self) -> list[int]:
        """The sampled frames shown, by their order among the sampled ones."""
        return [self._kept[i][0] for i in spread(len(self._kept), self.count)]

    def keyframes(self) -> tuple[Keyframe, ...]:
        """The pictures of the chosen frames, in time order (frames without one left out)."""
        picks = (self._kept[i] for i in spread(len(self._kept), self.count))
        return tuple(Keyframe(seconds, jpeg) for _, seconds, jpeg in picks if jpeg)
