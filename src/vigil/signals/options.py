"""How to hash: one options type for every command and for the scan's workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vigil.signals import decode
from vigil.signals.evidence import Limits
from vigil.signals.pdq import Mode

#: Files up to this size are read into memory once, then digested and decoded from there;
#: larger ones are digested in chunks and decoded from the file, so memory never follows
#: the size of a file (a 2 GiB disk image costs a few MB, not 2 GiB).
MAX_IN_MEMORY = 64 * 1024 * 1024

#: query-side derived codes: none, the trimmed content, band-less windows, or both
#: (``vigil.signals.crops``); ``features`` is ``all`` and the second stage's local features
#: (``vigil.signals.features``). What each option costs is in docs/crops.md.
VariantOption = Literal["off", "borders", "crops", "all", "features"]
VARIANT_OPTIONS: tuple[str, ...] = ("off", "borders", "crops", "all", "features")
#: the options that search trimmed content, and those that search crops and bands
BORDER_OPTIONS: tuple[str, ...] = ("borders", "all", "features")
CROP_OPTIONS: tuple[str, ...] = ("crops", "all", "features")


@dataclass(frozen=True, slots=True)
class HashOptions:
    """Everything that decides what hashing a file computes; small and picklable.

    ``mode`` and ``dihedral`` decide the PDQ; ``max_pixels`` refuses decompression bombs
    before decoding; videos get vPDQ (``video``) sampled every ``video_interval`` seconds
    within ``video_time_limit``; ``exif`` adds the victim-identification EXIF fields and
    the capture device; ``thumbnails`` adds a small greyscale JPEG; ``limits`` bound what
    is read from archives. ``variants`` adds the query-side derived codes (trimmed content,
    band-less windows; with ``features`` also local features); ``crop_ladder`` the bank
    side's (trimmed content, its ladder of sub-windows and local features), all from the
    same decode (``vigil.signals.crops``, ``vigil.signals.features``).
    """

    mode: Mode = "fast"
    dihedral: bool = False
    max_pixels: int = decode.DEFAULT_MAX_PIXELS
    min_long_side: int = decode.FAST_MIN_LONG_SIDE
    video: bool = True
    video_interval: float = 1.0
    video_time_limit: float = 120.0
    exif: bool = False
    thumbnails: bool = False
    limits: Limits = field(default_factory=Limits)
    max_in_memory: int = MAX_IN_MEMORY
    variants: VariantOption = "off"
    crop_ladder: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("fast", "reference"):
            raise ValueError(f"unknown PDQ mode {self.mode!r}: use 'fast' or 'reference'")
        if self.variants not in VARIANT_OPTIONS:
            raise ValueError(f"unknown variants option {self.variants!r}: use one of "
                             f"{', '.join(VARIANT_OPTIONS)}")
        if self.max_pixels <= 0 or self.video_time_limit <= 0 or self.max_in_memory < 0:
            raise ValueError("max_pixels and video_time_limit must be positive, "
                             "max_in_memory not negative")
