"""What a Vigil category says to tools that only know "positive", "seed" and "negative".

python-threatexchange attaches *opinions* to fetched signals: positive class (the signal
is what the collaboration is about), investigation seed (worth a look, not a verdict) and
negative class (known not to be). Vigil grades with categories in named schemes
(``vigil.schemes``), so each (scheme, value) maps to one of the three here, explicitly:

* positive: child abuse material in any scheme — ``us:1``, ``uk:A``/``B``/``C``, every
  ``ncmec`` class, ``interpol:yes``;
* negative: what a grader marked as not pertinent — ``us:4`` (comparison) and ``us:5``
  (non-pertinent);
* investigation seed: everything else — no category, ``us:0`` (uncategorised), ``us:2``
  (exploitive, age difficult), ``us:3`` (CGI / animation, illegal in some
  jurisdictions), ``interpol:no`` (below the international baseline, may still be
  illegal locally).

HMA ignores opinions when it matches, so a reader for HMA drops negative entries itself
(``vigil.interop.pytx`` does): a relabel to a negative category removes the signal there.
"""

from __future__ import annotations

from typing import Literal

Opinion = Literal["positive", "seed", "negative"]

POSITIVE: frozenset[tuple[str, str]] = frozenset({
    ("us", "1"), ("uk", "A"), ("uk", "B"), ("uk", "C"), ("ncmec", "A1"), ("ncmec", "A2"),
    ("ncmec", "B1"), ("ncmec", "B2"), ("interpol", "yes")})
NEGATIVE: frozenset[tuple[str, str]] = frozenset({("us", "4"), ("us", "5")})


def opinion_of(category: tuple[str, str] | None) -> Opinion:
    """The opinion a category gives (see the module doc); no category is a seed."""
    if category is None:
        return "seed"
    if category in POSITIVE:
        return "positive"
    if category in NEGATIVE:
        return "negative"
    return "seed"


__all__ = ["NEGATIVE", "POSITIVE", "Opinion", "opinion_of"]
