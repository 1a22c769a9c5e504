"""The second stage's check: do two pictures' local features show the same scene?

A candidate found within a wide PDQ radius is only a lead when the query's ORB keypoints
(``vigil.signals.features``) match the banked picture's *and* the matched pairs agree on
one geometric transform. Two different pictures share a few look-alike corners by chance,
but not a dozen that all move together under one rotation, scale and shift:

1. **descriptor matching**: each query descriptor's nearest and second-nearest banked
   descriptor (Hamming distance over 256 bits); kept when the nearest is close
   (``MAX_DESCRIPTOR_DISTANCE``) and clearly nearer than the second (Lowe's ratio test,
   ``RATIO``), then one-to-one (a banked keypoint serves one query keypoint);
2. **geometry**: a similarity transform (rotation, uniform scale, shift) fitted by
   RANSAC on pairs of matches, deterministic (hypotheses drawn with a fixed seed), then
   refitted by least squares on its inliers;
3. **plausibility**: enough inliers (``MIN_INLIERS``, at distinct query positions), a
   scale and a rotation that an edit makes (``SCALE_RANGE``, ``MAX_ROTATION``).

Points are complex numbers here: a similarity is ``w = a * z + b`` with ``a`` carrying
the scale (``|a|``) and the rotation (``arg a``), so two matches determine it.

``descriptor_distances`` is the vectorised path; ``descriptor_distances_reference`` the
plain loop it must equal (tests compare them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.signals.features import FeatureSet

#: a descriptor match must be within this many of 256 bits
MAX_DESCRIPTOR_DISTANCE = 64
#: ... and nearer than this share of the second-nearest (Lowe's ratio test)
RATIO = 0.8
#: an inlier lands within this many working pixels of where the transform puts it
TOLERANCE = 4.0
#: RANSAC hypotheses (pairs of matches) tried, at most
HYPOTHESES = 400
#: the scales (query size / banked size) an edit plausibly makes: crops of up to ~60% of
#: a side enlarge the rest, a border or a larger canvas shrinks it
SCALE_RANGE = (0.4, 3.0)
#: rotations beyond this (degrees) are not what the second stage is for (quarter turns
#: and mirrors are the dihedral variants' job)
MAX_ROTATION = 30.0
#: a confirmation needs this many inliers at distinct query positions
MIN_INLIERS = 12


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A confirmed candidate: how many keypoints agree, and the transform they agree on."""

    inliers: int
    #: query size / banked size
    scale: float
    #: degrees, counter-clockwise in image coordinates
    rotation: float


def _words(desc: NDArray[np.uint8]) -> NDArray[np.uint64]:
    return np.ascontiguousarray(desc, dtype=np.uint8).view(np.uint64)


def descriptor_distances(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Hamming distances between every row of ``a`` and every row of ``b`` (n x 32 bytes
    each): XOR and popcount on 64-bit words, all pairs at once."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.int32)
    x = np.bitwise_xor(_words(a)[:, None, :], _words(b)[None, :, :])
    out: NDArray[np.int32] = np.bitwise_count(x).sum(axis=2, dtype=np.int32)
    return out


def descriptor_distances_reference(a: NDArray[np.uint8], b: NDArray[np.uint8],
                                   ) -> NDArray[np.int32]:
    """``descriptor_distances`` as the plain double loop over Python integers."""
    out = np.zeros((len(a), len(b)), np.int32)
    ints_b = [int.from_bytes(bytes(row), "big") for row in b]
    for i, row in enumerate(a):
        x = int.from_bytes(bytes(row), "big")
        for j, y in enumerate(ints_b):
            out[i, j] = (x ^ y).bit_count()
    return out


def ratio_matches(dist: NDArray[np.int32]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(query rows, banked rows) of the matches that pass the ratio test, one-to-one."""
    n, m = dist.shape
    if n == 0 or m == 0:
        empty = np.zeros(0, np.intp)
        return empty, empty
    nearest = np.argmin(dist, axis=1)
    d1 = dist[np.arange(n), nearest]
    # the second-nearest (a lone banked descriptor has none: 256, the farthest possible)
    d2 = np.partition(dist, 1, axis=1)[:, 1] if m > 1 else np.full(n, 256, np.int32)
    keep = (d1 <= MAX_DESCRIPTOR_DISTANCE) & (d1 < RATIO * d2)
    q = np.flatnonzero(keep)
    b = nearest[q]
    order = np.lexsort((q, d1[q]))  # best first, so the best claim on a banked point wins
    q, b = q[order], b[order]
    _, first = np.unique(b, return_index=True)
    first.sort()
    return q[first], b[first]


def _count(a: NDArray[np.complex128], b: NDArray[np.complex128], z: NDArray[np.complex128],
           w: NDArray[np.complex128]) -> NDArray[np.int64]:
    """Inliers of each hypothesis ``w = a z + b`` (a, b: one per hypothesis)."""
    res = np.abs(a[:, None] * z[None, :] + b[:, None] - w[None, :])
    out: NDArray[np.int64] = (res <= TOLERANCE).sum(axis=1, dtype=np.int64)
    return out


def _plausible(a: NDArray[np.complex128]) -> NDArray[np.bool_]:
    scale = np.abs(a)
    angle = np.degrees(np.abs(np.angle(a)))
    return (scale >= SCALE_RANGE[0]) & (scale <= SCALE_RANGE[1]) & (angle <= MAX_ROTATION)


def fit_similarity(z: NDArray[np.complex128], w: NDArray[np.complex128],
                   ) -> tuple[complex, complex, NDArray[np.bool_]] | None:
    """The plausible similarity ``w = a z + b`` most matches agree on, and its inliers;
    None when no pair of matches gives one. Deterministic: the same input, the same fit."""
    m = len(z)
    if m < 2:
        return None
    i, j = np.triu_indices(m, 1)
    if len(i) > HYPOTHESES:
        pick = np.random.default_rng(0).choice(len(i), HYPOTHESES, replace=False)
        i, j = i[pick], j[pick]
    dz = z[j] - z[i]
    ok = np.abs(dz) > 1.0  # two matches at one place fix no transform
    i, j, dz = i[ok], j[ok], dz[ok]
    if len(i) == 0:
        return None
    a = (w[j] - w[i]) / dz
    b = w[i] - a * z[i]
    good = _plausible(a)
    if not good.any():
        return None
    a, b = a[good], b[good]
    best = int(np.argmax(_count(a, b, z, w)))
    inl = np.abs(a[best] * z + b[best] - w) <= TOLERANCE
    # least squares on the inliers: a = sum(conj(z') w') / sum(|z'|^2) about the means
    zi, wi = z[inl], w[inl]
    zc, wc = zi - zi.mean(), wi - wi.mean()
    denom = float(np.sum(np.abs(zc) ** 2))
    if denom > 0:
        a_fit = complex(np.sum(np.conj(zc) * wc) / denom)
        b_fit = complex(wi.mean() - a_fit * zi.mean())
        refit = np.abs(a_fit * z + b_fit - w) <= TOLERANCE
        if refit.sum() >= inl.sum() and _plausible(np.array([a_fit]))[0]:
            return a_fit, b_fit, refit
    return complex(a[best]), complex(b[best]), inl


def _complex(points: NDArray[np.float32]) -> NDArray[np.complex128]:
    p = points.astype(np.float64)
    return p[:, 0] + 1j * p[:, 1]


def confirm(query: FeatureSet, banked: FeatureSet) -> Confirmation | None:
    """A ``Confirmation`` when the query's keypoints match the banked picture's under one
    plausible similarity with at least ``MIN_INLIERS`` inliers; None otherwise."""
    if len(query) < MIN_INLIERS or len(banked) < MIN_INLIERS:
        return None
    qi, bi = ratio_matches(descriptor_distances(query.descriptors, banked.descriptors))
    if len(qi) < MIN_INLIERS:
        return None
    w, z = _complex(query.points[qi]), _complex(banked.points[bi])
    fit = fit_similarity(z, w)
    if fit is None:
        return None
    a, _, inl = fit
    # keypoints found twice (at two pyramid levels) count once
    distinct = len({(round(p.real), round(p.imag)) for p in w[inl]})
    if distinct < MIN_INLIERS:
        return None
    return Confirmation(distinct, abs(a), math.degrees(math.atan2(a.imag, a.real)))
