"""PDQ from a float32 luma plane, in Numba, bit-exact with Meta's reference.

Why this module exists
----------------------
``pdqhash.compute`` (Meta's C++ reference behind a Cython binding) is what other agencies'
banks were built with, so our hashes must equal its output bit for bit. It is slow for two
reasons that have nothing to do with the algorithm: the binding converts RGB to luma with
NumPy in float64 (several full-size temporaries, about a third of its run time), and its
column box-filter pass walks memory with a stride of one image row, which aliases in the
cache on power-of-two widths (about 3x slower at 1024/2048/4096 px). The scanner also
wants to hash a greyscale plane decoded at reduced size without going through RGB at all.

This module reimplements the same algorithm over a float32 luma plane:

1. luma ``Y = float32(R*0.299 + G*0.587 + B*0.114)`` with the products and the two
   additions done in float64, left to right, exactly as the binding's NumPy expression;
2. a Jarosz tent filter: two rounds of (box filter along each row, then along each
   column), with a window of ``ceil(n / 128)`` samples per axis; each 1-D box is a running
   float32 sum (add the sample entering the window, subtract the one leaving) divided by
   the current window population, with shrunken windows at both ends;
3. decimation to 64x64 by sampling the filtered plane at
   ``int((k + 0.5) * n / 64)`` (computed in double) on each axis; a 64x64 input is used
   as is, without filtering, and an input smaller than 5 px on either side hashes to all
   zeros with quality 0 — both as the reference does;
4. a quality score from quantised vertical and horizontal gradients of the 64x64 plane;
5. a 16x64 float32 DCT-II matrix ``D`` (rows 1..16 of the 64-point basis) and the
   products ``T = D A`` then ``B = T D^T``, each dot product accumulated in float32 in
   index order from 0;
6. bit ``k = 16 i + j`` is set when ``B[i, j]`` exceeds the median, which the reference
   finds with Torben's method; for 256 values that returns exactly the 128th smallest,
   so a partial sort gives the same threshold.

Exactness
---------
Every step above mirrors the reference's float32 operation order per output value: the
running sums of each row and each column are computed in the same sequence of additions
and subtractions, divisions are true float32 divisions (not multiplications by a
reciprocal), and no fused multiply-add is allowed (Numba does not contract ``a*b + c``
unless ``fastmath`` is on, and it is off here). What is reordered is only *which*
independent chains run when: rows are filtered eight at a time in SIMD lanes, columns
all at once along a row, and the second round is evaluated only where decimation will
sample it. None of that changes a single rounding, so the result is bit-identical to
``pdqhash`` (tests compare hashes, qualities and the 64x64/16x16 intermediates on the
reference fixtures, corpus photographs and generated images of awkward sizes).

Verified bit-exact (hash, quality, and the 16x16 float DCT output) on the 12 bridge-mods
reference fixtures, 40 BSDS500 photographs, generated noise/gradient images from 1x1 to
3000x7 and 6x2500 (including 63x65, 64x64, 1024 wide), and hypothesis-drawn sizes; no
input has been found where a single bit differs, so the tests demand exact equality.

Speed (one core, bench/pdq_luma_speed.py, a loaded 2-core EPYC VM): 4000x3000 RGB
``pdqhash.compute`` ~330 ms vs ``pdq_from_rgb`` ~21 ms; 4096x3072 ~690 ms vs ~22 ms;
``pdq_from_luma`` on a 1000x750 plane ~1 ms.

Hex convention: ``code`` is the 256-bit hash as 32 bytes, most significant first, so
``code.tobytes().hex()`` is the usual PDQ hex (``pdqhash``'s bit vector read MSB first).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = [
    "DIHEDRAL_ORDER",
    "luma_from_rgb",
    "pdq_dihedral_from_luma",
    "pdq_from_luma",
    "pdq_from_rgb",
]

#: Order of the eight codes returned by :func:`pdq_dihedral_from_luma`, the same as
#: ``pdqhash.compute_dihedral``.
DIHEDRAL_ORDER: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipX",
    "flipY",
    "flipPlus1",
    "flipMinus1",
)

_MIN_HASHABLE_DIM = 5  # the reference refuses (zero hash, quality 0) below this
_LANES = 32  # rows filtered together in SIMD lanes (a multiple of 8)


def _dct_matrix() -> NDArray[np.float32]:
    """Rows 1..16 of the 64-point DCT-II basis, rounded to float32 as the reference does.

    The reference scales by ``sqrt(2/64)`` held in a *float* and multiplies it (promoted
    back to double) by a double cosine whose argument is evaluated left to right as
    ``((pi / 2 / 64) * (i + 1)) * (2 j + 1)``; the product is then rounded to float.
    Reproducing that exact sequence matters: rounding the scale only once gives a
    different matrix in the last bit for some entries.
    """
    scale = float(np.float32(math.sqrt(2.0 / 64.0)))
    base = math.pi / 2.0 / 64.0
    d = np.empty((16, 64), dtype=np.float32)
    for i in range(16):
        for j in range(64):
            d[i, j] = np.float32(scale * math.cos(base * (i + 1) * (2 * j + 1)))
    return d


_DCT = _dct_matrix()


# --------------------------------------------------------------------------- luma


@njit(cache=True, nogil=True)
def _luma_kernel(rgb: np.ndarray, out: np.ndarray) -> None:
    """Luma of ``n`` interleaved RGB pixels (flat uint8, 3n) into flat float32 ``out``.

    Flat indexing lets LLVM vectorise the stride-3 loads; the arithmetic is per pixel
    float64 ``(R*0.299 + G*0.587) + B*0.114``, rounded once to float32 — NumPy's order.
    """
    for p in range(out.shape[0]):
        y = (
            np.float64(rgb[3 * p]) * 0.299
            + np.float64(rgb[3 * p + 1]) * 0.587
            + np.float64(rgb[3 * p + 2]) * 0.114
        )
        out[p] = np.float32(y)


def _as_rgb(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"expected uint8 RGB, got {a.dtype}")
    return np.ascontiguousarray(a[:, :, :3])  # no copy for a C-contiguous RGB array


def luma_from_rgb(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Convert an (H, W, 3) uint8 RGB image to the (H, W) float32 luma ``pdqhash`` uses.

    The arithmetic is the binding's own (float64 products and sums, one final rounding to
    float32), so the plane is bit-identical to what ``pdqhash.compute`` hashes, but it is
    done in one pass with no float64 temporaries. Extra channels beyond the third (alpha)
    are ignored.
    """
    a = _as_rgb(rgb)
    out = np.empty(a.shape[:2], dtype=np.float32)
    _luma_kernel(a.reshape(-1), out.reshape(-1))
    return out


# --------------------------------------------------------------------------- filters


@njit(cache=True, nogil=True, inline="always")
def _box_params(n: int, window: int) -> tuple[int, int, int, int]:
    """Phase lengths of the reference's 1-D running box filter over ``n`` samples."""
    half = (window + 2) // 2
    return half - 1, window - half + 1, n - window, half - 1


@njit(cache=True, nogil=True)
def _box1d(src: np.ndarray, dst: np.ndarray, window: int) -> None:
    """The reference's 1-D running box filter, literally: one float32 chain per vector.

    Used only by :func:`_downscale_reference`, the slow mirror of the C++ loops that the
    tests compare the fast path against.
    """
    p1, p2, p3, p4 = _box_params(src.shape[0], window)
    s = np.float32(0.0)
    ri = 0
    li = 0
    oi = 0
    cnt = 0
    for _ in range(p1):
        s += src[ri]
        cnt += 1
        ri += 1
    for _ in range(p2):
        s += src[ri]
        cnt += 1
        dst[oi] = s / np.float32(cnt)
        ri += 1
        oi += 1
    for _ in range(p3):
        s += src[ri]
        s -= src[li]
        dst[oi] = s / np.float32(cnt)
        li += 1
        ri += 1
        oi += 1
    for _ in range(p4):
        s -= src[li]
        cnt -= 1
        dst[oi] = s / np.float32(cnt)
        li += 1
        oi += 1


@njit(cache=True, nogil=True)
def _downscale_reference(luma: np.ndarray) -> np.ndarray:
    """Plain transcription of the reference downscale (full planes, strided columns).

    Slow on purpose: it is the yardstick for :func:`_downscale`, not a code path.
    """
    h, w = luma.shape
    out = np.empty((64, 64), dtype=np.float32)
    if h == 64 and w == 64:
        out[:, :] = luma
        return out
    wr = _window(w)
    wc = _window(h)
    buf1 = luma.copy()
    buf2 = np.empty_like(buf1)
    for _ in range(2):
        for i in range(h):
            _box1d(buf1[i, :], buf2[i, :], wr)
        for j in range(w):
            _box1d(buf2[:, j], buf1[:, j], wc)
    for k in range(64):
        ii = _sample_index(k, h)
        for m in range(64):
            out[k, m] = buf1[ii, _sample_index(m, w)]
    return out


@njit(cache=True, nogil=True)
def _box_tile(src: np.ndarray, dst: np.ndarray, n: int, window: int) -> None:
    """Box-filter the ``_LANES`` columns of an (n, _LANES) tile, each on its own chain.

    Lane ``l`` is one image row laid out down the tile, so the serial running sum of that
    row advances one tile row at a time while all lanes advance together in SIMD.
    """
    p1, p2, p3, p4 = _box_params(n, window)
    s = np.zeros(_LANES, dtype=np.float32)
    ri = 0
    li = 0
    oi = 0
    cnt = 0
    for _ in range(p1):
        x = src[ri]
        for lane in range(_LANES):
            s[lane] += x[lane]
        cnt += 1
        ri += 1
    for _ in range(p2):
        cnt += 1
        c = np.float32(cnt)
        x = src[ri]
        o = dst[oi]
        for lane in range(_LANES):
            s[lane] += x[lane]
            o[lane] = s[lane] / c
        ri += 1
        oi += 1
    c = np.float32(cnt)
    for _ in range(p3):
        x = src[ri]
        y = src[li]
        o = dst[oi]
        for lane in range(_LANES):
            s[lane] += x[lane]
            s[lane] -= y[lane]
            o[lane] = s[lane] / c
        ri += 1
        li += 1
        oi += 1
    for _ in range(p4):
        cnt -= 1
        c = np.float32(cnt)
        y = src[li]
        o = dst[oi]
        for lane in range(_LANES):
            s[lane] -= y[lane]
            o[lane] = s[lane] / c
        li += 1
        oi += 1


@njit(cache=True, nogil=True)
def _rows_to_tile(src: np.ndarray, r0: int, nl: int, tile: np.ndarray) -> None:
    """``tile[j, l] = src[r0 + l, j]`` for ``l < nl``, in 8x8 blocks (cache friendly)."""
    w = src.shape[1]
    w8 = w - w % 8
    for lb in range(0, nl, 8):
        if lb + 8 <= nl:
            for jb in range(0, w8, 8):
                for jj in range(8):
                    for ll in range(8):
                        tile[jb + jj, lb + ll] = src[r0 + lb + ll, jb + jj]
            for j in range(w8, w):
                for ll in range(8):
                    tile[j, lb + ll] = src[r0 + lb + ll, j]
        else:
            for ll in range(lb, nl):
                row = src[r0 + ll]
                for j in range(w):
                    tile[j, ll] = row[j]


@njit(cache=True, nogil=True)
def _tile_to_ring(tile: np.ndarray, nl: int, ring: np.ndarray, r0: int) -> None:
    """``ring[(r0 + l) % K, j] = tile[j, l]``: filtered rows back to row-major order."""
    k = ring.shape[0]
    w = tile.shape[0]
    w8 = w - w % 8
    for lb in range(0, nl, 8):
        if lb + 8 <= nl and (r0 + lb) % k + 8 <= k:
            base = (r0 + lb) % k
            for jb in range(0, w8, 8):
                for ll in range(8):
                    for jj in range(8):
                        ring[base + ll, jb + jj] = tile[jb + jj, lb + ll]
            for j in range(w8, w):
                for ll in range(8):
                    ring[base + ll, j] = tile[j, lb + ll]
        else:
            for ll in range(lb, min(lb + 8, nl)):
                row = ring[(r0 + ll) % k]
                for j in range(w):
                    row[j] = tile[j, ll]


@njit(cache=True, nogil=True)
def _second_rows(
    cblk: np.ndarray,
    nl: int,
    tile: np.ndarray,
    tile2: np.ndarray,
    wr: int,
    cols: np.ndarray,
    strip: np.ndarray,
    r0: int,
) -> None:
    """Round-two row filter of ``nl`` buffered rows, keeping only the sampled columns."""
    w = cblk.shape[1]
    _rows_to_tile(cblk, 0, nl, tile)
    _box_tile(tile, tile2, w, wr)
    for ll in range(nl):
        for m in range(64):
            strip[r0 + ll, m] = tile2[cols[m], ll]


@njit(cache=True, nogil=True)
def _cols_pass(src: np.ndarray, dst: np.ndarray, window: int) -> None:
    """Box filter along every column of a small plane, all columns advancing together."""
    h, w = src.shape
    p1, p2, p3, p4 = _box_params(h, window)
    s = np.zeros(w, dtype=np.float32)
    ri = 0
    li = 0
    oi = 0
    cnt = 0
    for _ in range(p1):
        x = src[ri]
        for j in range(w):
            s[j] += x[j]
        cnt += 1
        ri += 1
    for _ in range(p2):
        cnt += 1
        c = np.float32(cnt)
        x = src[ri]
        o = dst[oi]
        for j in range(w):
            s[j] += x[j]
            o[j] = s[j] / c
        ri += 1
        oi += 1
    c = np.float32(cnt)
    for _ in range(p3):
        x = src[ri]
        y = src[li]
        o = dst[oi]
        for j in range(w):
            s[j] += x[j]
            s[j] -= y[j]
            o[j] = s[j] / c
        ri += 1
        li += 1
        oi += 1
    for _ in range(p4):
        cnt -= 1
        c = np.float32(cnt)
        y = src[li]
        o = dst[oi]
        for j in range(w):
            s[j] -= y[j]
            o[j] = s[j] / c
        li += 1
        oi += 1


@njit(cache=True, nogil=True, inline="always")
def _window(n: int) -> int:
    """Box window per pass for ``n`` input samples → 64 outputs: ceil(n / 128)."""
    return (n + 2 * 64 - 1) // (2 * 64)


@njit(cache=True, nogil=True, inline="always")
def _sample_index(k: int, n: int) -> int:
    """Input index sampled for output ``k`` of 64 (pixel centres, computed in double)."""
    return int(((k + 0.5) * n) / 64)


@njit(cache=True, nogil=True)
def _downscale(luma: np.ndarray) -> np.ndarray:
    """Downscale a float32 luma plane (see :func:`_downscale_any`)."""
    return _downscale_any(luma, np.empty(0, dtype=np.uint8), luma.shape[0], luma.shape[1])


@njit(cache=True, nogil=True)
def _downscale_any(luma: np.ndarray, rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """Tent-filter and decimate an (H, W) float32 plane to the reference's 64x64 plane.

    One streaming sweep down the image, with no full-size intermediate (allocating and
    faulting in two 48 MB planes cost more than the filtering itself):

    * round-one row filter: ``_LANES`` input rows at a time are transposed into a tile
      and filtered in SIMD lanes, then written back as rows into a ring buffer that holds
      just the rows the column filter still needs (its window plus one block);
    * round-one column filter: one running float32 sum per column, advanced a whole row
      at a time as rows arrive; each finished output row is buffered;
    * round-two row filter: every ``_LANES`` finished rows are transposed and filtered,
      and only the 64 columns that decimation samples are kept, giving an (H, 64) strip;
    * round-two column filter on that strip, keeping the 64 sampled rows.

    Each output value sees the very same float32 operations, in the same order, as in
    :func:`_downscale_reference`; only independent chains are interleaved.

    The source is either the plane ``luma`` or, when ``rgb`` is non-empty, a flat
    C-ordered (h, w, 3) uint8 buffer whose luma is computed a block of rows at a time,
    so ``pdq_from_rgb`` never materialises the full-size float32 plane.
    """
    from_rgb = rgb.shape[0] > 0
    out = np.empty((64, 64), dtype=np.float32)
    if h == 64 and w == 64:
        if from_rgb:
            _luma_kernel(rgb, out.reshape(-1))
        else:
            out[:, :] = luma
        return out
    wr = _window(w)  # along rows
    wc = _window(h)  # along columns
    cols = np.empty(64, dtype=np.int64)
    for m in range(64):
        cols[m] = _sample_index(m, w)

    k = wc + _LANES
    ring = np.empty((k, w), dtype=np.float32)
    tile = np.zeros((w, _LANES), dtype=np.float32)
    tile2 = np.zeros((w, _LANES), dtype=np.float32)
    cblk = np.zeros((_LANES, w), dtype=np.float32)
    strip = np.empty((h, 64), dtype=np.float32)
    rows_rgb = np.empty((_LANES, w), dtype=np.float32)
    s = np.zeros(w, dtype=np.float32)
    half = (wc + 2) // 2
    oi = 0  # next output row of the round-one column filter
    last = h + half - 1  # one step per added row, then the shrinking bottom windows
    for ri in range(last):
        if ri < h:
            if ri % _LANES == 0:  # round-one row filter of the next block of rows
                nl = min(_LANES, h - ri)
                if from_rgb:
                    _luma_kernel(
                        rgb[3 * ri * w : 3 * (ri + nl) * w], rows_rgb.reshape(-1)[: nl * w]
                    )
                    _rows_to_tile(rows_rgb, 0, nl, tile)
                else:
                    _rows_to_tile(luma, ri, nl, tile)
                _box_tile(tile, tile2, w, wr)
                _tile_to_ring(tile2, nl, ring, ri)
            x = ring[ri % k]
            if ri < wc:  # window still growing: add only
                for j in range(w):
                    s[j] += x[j]
                c = np.float32(ri + 1)
            else:  # full window: add the entering row, then drop the leaving one
                y = ring[(ri - wc) % k]
                for j in range(w):
                    s[j] += x[j]
                    s[j] -= y[j]
                c = np.float32(wc)
        else:  # past the last row: the window shrinks, drop rows only
            y = ring[(ri - wc) % k]
            for j in range(w):
                s[j] -= y[j]
            c = np.float32(wc - (ri - h + 1))
        if ri >= half - 1:
            o = cblk[oi % _LANES]
            for j in range(w):
                o[j] = s[j] / c
            oi += 1
            if oi % _LANES == 0 or ri == last - 1:
                n = (oi - 1) % _LANES + 1
                _second_rows(cblk, n, tile, tile2, wr, cols, strip, oi - n)

    full = np.empty((h, 64), dtype=np.float32)
    _cols_pass(strip, full, wc)
    for m in range(64):
        out[m, :] = full[_sample_index(m, h), :]
    return out


# --------------------------------------------------------------------------- DCT, bits


@njit(cache=True, nogil=True)
def _quality(a: np.ndarray) -> int:
    """The reference's heuristic: sum of |quantised gradients| / 90, capped at 100."""
    total = 0
    hundred = np.float32(100.0)
    d255 = np.float32(255.0)
    for i in range(63):
        for j in range(64):
            d = int(((a[i, j] - a[i + 1, j]) * hundred) / d255)
            total += abs(d)
    for i in range(64):
        for j in range(63):
            d = int(((a[i, j] - a[i, j + 1]) * hundred) / d255)
            total += abs(d)
    q = total // 90
    return min(q, 100)


@njit(cache=True, nogil=True)
def _dct16(a: np.ndarray, dm: np.ndarray) -> np.ndarray:
    """``B = (D A) D^T`` with every dot product accumulated in float32 from index 0."""
    t = np.zeros((16, 64), dtype=np.float32)
    for i in range(16):
        for k in range(64):
            d = dm[i, k]
            ak = a[k]
            for j in range(64):
                t[i, j] += d * ak[j]
    b = np.empty((16, 16), dtype=np.float32)
    for i in range(16):
        for j in range(16):
            s = np.float32(0.0)
            for k in range(64):
                s += t[i, k] * dm[j, k]
            b[i, j] = s
    return b


@njit(cache=True, nogil=True)
def _bits(b: np.ndarray, out: np.ndarray) -> None:
    """Pack ``b > median`` into 32 bytes, hash bit ``16 i + j`` of the MSB-first value."""
    flat = b.ravel()
    median = np.sort(flat)[127]  # what Torben's method returns for 256 values
    for k in range(32):
        out[k] = 0
    for k in range(256):
        if flat[k] > median:
            out[31 - (k >> 3)] |= np.uint8(1 << (k & 7))


@njit(cache=True, nogil=True)
def _hash_kernel(a: np.ndarray, dm: np.ndarray, code: np.ndarray) -> int:
    """Code and quality from the 64x64 downscaled plane."""
    q = _quality(a)
    _bits(_dct16(a, dm), code)
    return q


@njit(cache=True, nogil=True)
def _dihedral_kernel(a: np.ndarray, dm: np.ndarray, codes: np.ndarray) -> int:
    """The eight dihedral codes and the quality from the 64x64 downscaled plane."""
    q = _quality(a)
    b = _dct16(a, dm)
    # A dihedral transform of the image only permutes/negates DCT coefficients: an odd
    # frequency flips sign under reflection along its axis, and a transpose swaps the
    # frequency indices. So all eight hashes come from one DCT.
    aux = np.empty((16, 16), dtype=np.float32)
    for t in range(8):
        for i in range(16):
            for j in range(16):
                v = b[i, j]
                if t == 0:  # original
                    aux[i, j] = v
                elif t == 1:  # rotate 90: transpose, negate even column frequency
                    aux[j, i] = v if (j & 1) else -v
                elif t == 2:  # rotate 180
                    aux[i, j] = -v if ((i + j) & 1) else v
                elif t == 3:  # rotate 270: transpose, negate even row frequency
                    aux[j, i] = v if (i & 1) else -v
                elif t == 4:  # flip x
                    aux[i, j] = v if (i & 1) else -v
                elif t == 5:  # flip y
                    aux[i, j] = v if (j & 1) else -v
                elif t == 6:  # flip about the main diagonal
                    aux[j, i] = v
                else:  # flip about the anti-diagonal
                    aux[j, i] = -v if ((i + j) & 1) else v
        _bits(aux, codes[t])
    return q


_NO_RGB = np.empty(0, dtype=np.uint8)  # "source is the luma plane"
_NO_LUMA = np.empty((0, 0), dtype=np.float32)  # "source is the RGB buffer"


def _as_luma(luma: NDArray[np.integer | np.floating]) -> NDArray[np.float32]:
    a = np.asarray(luma)
    if a.ndim != 2:
        raise ValueError(f"expected an (H, W) luma plane, got shape {a.shape}")
    if a.dtype != np.float32:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise TypeError(f"expected a real-valued plane, got {a.dtype}")
        a = a.astype(np.float32)  # exact for 8/16-bit integers, e.g. a Pillow 'L' image
    return np.ascontiguousarray(a)


def pdq_from_luma(luma: NDArray[np.integer | np.floating]) -> tuple[NDArray[np.uint8], int]:
    """PDQ hash and quality of a luma plane, as ``pdqhash`` computes them.

    ``luma`` is (H, W) float32 (uint8 'L' planes are accepted and converted exactly).
    Returns ``(code, quality)``: ``code`` a (32,) uint8 array, most significant byte
    first, so ``code.tobytes().hex()`` is the standard PDQ hex; ``quality`` 0..100.
    Planes smaller than 5 px on a side give an all-zero code and quality 0, like the
    reference.
    """
    a = _as_luma(luma)
    code = np.zeros(32, dtype=np.uint8)
    if a.shape[0] < _MIN_HASHABLE_DIM or a.shape[1] < _MIN_HASHABLE_DIM:
        return code, 0
    q = _hash_kernel(_downscale_any(a, _NO_RGB, a.shape[0], a.shape[1]), _DCT, code)
    return code, int(q)


def pdq_dihedral_from_luma(luma: NDArray[np.integer | np.floating],
                           ) -> tuple[NDArray[np.uint8], int]:
    """The eight dihedral PDQ codes of a luma plane from one downscale and one DCT.

    Returns ``(codes, quality)`` with ``codes`` (8, 32) uint8 in
    :data:`DIHEDRAL_ORDER` (``pdqhash.compute_dihedral``'s order). Matching a query's
    eight codes against a bank finds rotated and mirrored copies at no extra hashing cost.
    """
    a = _as_luma(luma)
    codes = np.zeros((8, 32), dtype=np.uint8)
    if a.shape[0] < _MIN_HASHABLE_DIM or a.shape[1] < _MIN_HASHABLE_DIM:
        return codes, 0
    q = _dihedral_kernel(_downscale_any(a, _NO_RGB, a.shape[0], a.shape[1]), _DCT, codes)
    return codes, int(q)


def pdq_from_rgb(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], int]:
    """``pdq_from_luma(luma_from_rgb(rgb))``: a drop-in, faster ``pdqhash.compute``.

    Same result as the composition, but luma is computed a block of rows at a time inside
    the downscale, so the full-size float32 plane is never allocated.
    """
    a = _as_rgb(rgb)
    code = np.zeros(32, dtype=np.uint8)
    if a.shape[0] < _MIN_HASHABLE_DIM or a.shape[1] < _MIN_HASHABLE_DIM:
        return code, 0
    q = _hash_kernel(_downscale_any(_NO_LUMA, a.reshape(-1), *a.shape[:2]), _DCT, code)
    return code, int(q)
