"""Real packed feature sets (``pdq_features``) of generated pictures, for tests that need
an entry with features: an entry's features are checked when the entry is made."""

from __future__ import annotations

from functools import cache

import numpy as np

from vigil.demo.synthetic import synthetic_image
from vigil.signals.features import packed_features


@cache
def feature_set(seed: int) -> str:
    """The packed features of generated picture ``seed`` (400 × 300)."""
    packed = packed_features(np.asarray(synthetic_image(seed, (400, 300))))
    assert packed is not None, f"picture {seed} has no features"
    return packed
