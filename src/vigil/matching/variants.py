"""Derived-code matching policy: which query code may meet which banked code.

A file's PDQ is searched as it always was (and its dihedral variants with ``dihedral``).
The ``variants`` option adds derived codes (``vigil.signals.crops``):

* ``borders``: the query's trimmed content is searched among banked pictures, and the
  query's own code among banked pictures' trimmed content;
* ``crops``: the query's code is searched among the banked crop ladders (a query that
  lost part of the picture), and the query's band-less windows among banked pictures and
  among the *same* ladder windows (``no-bottom-0.2`` meets ``bottom-0.2``: a caption
  band of up to 20% over the bottom is cut from both sides alike);
* ``all``: both;
* ``features``: ``all``, and the second stage (``vigil.matching.second``): candidates within
  a wide PDQ radius confirmed by local features, for rotations of a few degrees and heavier
  crops.

Derived codes meet only the pairs above, never a window against an arbitrary other
window: every extra pair is one more chance for two different pictures to collide, so
the pairs allowed are the few that a real edit produces. A derived code of a flat picture
(quality below the matcher's minimum, at least 50) is never searched nor banked.

The derived index holds one code per (entry, window); its ids pack both
(``derived_id``), so a hit names the banked window that matched and the lead can say
``variant = "original/centre-0.05"``: the query's code, then the banked window.
"""

from __future__ import annotations

from collections.abc import Iterable

from vigil.banks.derived import (
    DERIVED_WINDOWS,
    MIN_VARIANT_QUALITY,
    derived_id,
    split_derived_id,
)
from vigil.signals.crops import QUERY_WINDOWS
from vigil.signals.options import BORDER_OPTIONS, CROP_OPTIONS, VARIANT_OPTIONS, VariantOption

__all__ = ["DERIVED_WINDOWS", "VARIANT_OPTIONS", "VariantOption", "derived_id",
           "pair_allowed", "query_codes", "split_derived_id", "variant_option"]

_QUERY_WINDOWS = frozenset(w.name for w in QUERY_WINDOWS)


def variant_option(text: str) -> VariantOption:
    """A ``--variants`` value checked and typed (``ValueError`` naming the choices)."""
    for option in ("off", "borders", "crops", "all", "features"):
        if text == option:
            return option
    raise ValueError(f"variants must be one of {', '.join(VARIANT_OPTIONS)}, not {text!r}")


def query_codes(derived: Iterable[tuple[str, str, int]], option: VariantOption,
                min_quality: int) -> list[tuple[str, str]]:
    """The query's derived codes the option searches, flat ones left out: (name, hex)."""
    floor = max(min_quality, MIN_VARIANT_QUALITY)
    out = []
    for name, hx, q in derived:
        if q < floor:
            continue
        if (name == "trimmed" and option in BORDER_OPTIONS) or (
                name in _QUERY_WINDOWS and option in CROP_OPTIONS):
            out.append((name, hx))
    return out


def pair_allowed(query_variant: str, bank_window: str, option: VariantOption) -> bool:
    """Whether a query code (``original``, ``trimmed``, ``no-bottom-0.2``...) may match a
    banked derived code (``trimmed``, ``centre-0.05``...) under ``option``."""
    if option == "off":
        return False
    borders = option in BORDER_OPTIONS
    crops = option in CROP_OPTIONS
    if query_variant == "original":
        return (bank_window == "trimmed" and borders) or (bank_window != "trimmed" and crops)
    if query_variant == "trimmed":
        return borders and (bank_window == "trimmed" or crops)
    if query_variant in _QUERY_WINDOWS:
        return crops and bank_window == query_variant.removeprefix("no-")
    return False
