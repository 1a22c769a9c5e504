"""Numba kernels: batched linear scan, multi-index table build, multi-index probe + verify,
and the pairwise frame comparison that scores a video against a candidate.

All search kernels take codes as ``(N, 4) uint64`` rows and return hits as three parallel arrays
(query index, row, distance). ``nogil=True`` so callers may run batches on threads;
``cache=True`` so the compile cost is paid once per machine, not once per process.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vigil.index._bits import chunk_value, distance, popcount64, prefetch

SCAN_BLOCK = 512  # rows transposed per block: 4 x 4 KiB, stays in L1 while all queries pass
_INITIAL_HITS = 1024
VERIFY_AHEAD = 16  # candidates prefetched ahead of the one being verified


@njit(cache=True, nogil=True)
def _grow(hq, hr, hd):
    n = hq.shape[0] * 2
    nq = np.empty(n, np.int64)
    nr = np.empty(n, np.int64)
    nd = np.empty(n, np.int32)
    nq[: hq.shape[0]] = hq
    nr[: hr.shape[0]] = hr
    nd[: hd.shape[0]] = hd
    return nq, nr, nd


@njit(cache=True, nogil=True)
def _grow_pair(a, b):
    n = a.shape[0] * 2
    na = np.empty(n, a.dtype)
    nb = np.empty(n, b.dtype)
    na[: a.shape[0]] = a
    nb[: b.shape[0]] = b
    return na, nb


@njit(cache=True, nogil=True)
def scan(codes, alive, queries, radius):
    """Exact radius search by comparing every query with every live row.

    Rows are transposed block by block into four word columns so the distance loop is
    vectorised (VPOPCNTQ where available); the block stays in cache while every query of
    the batch passes over it, so memory traffic is one pass over the codes per batch.
    """
    n = codes.shape[0]
    nq = queries.shape[0]
    block = SCAN_BLOCK
    c0 = np.empty(block, np.uint64)
    c1 = np.empty(block, np.uint64)
    c2 = np.empty(block, np.uint64)
    c3 = np.empty(block, np.uint64)
    dist = np.empty(block, np.uint64)
    r1 = np.uint64(radius + 1)
    top = np.uint64(63)
    hq = np.empty(_INITIAL_HITS, np.int64)
    hr = np.empty(_INITIAL_HITS, np.int64)
    hd = np.empty(_INITIAL_HITS, np.int32)
    nh = 0
    for b0 in range(0, n, block):
        m = min(n, b0 + block) - b0
        for j in range(m):
            c0[j] = codes[b0 + j, 0]
            c1[j] = codes[b0 + j, 1]
            c2[j] = codes[b0 + j, 2]
            c3[j] = codes[b0 + j, 3]
        for q in range(nq):
            q0 = queries[q, 0]
            q1 = queries[q, 1]
            q2 = queries[q, 2]
            q3 = queries[q, 3]
            for j in range(m):
                dist[j] = (
                    popcount64(c0[j] ^ q0)
                    + popcount64(c1[j] ^ q1)
                    + popcount64(c2[j] ^ q2)
                    + popcount64(c3[j] ^ q3)
                )
            # d < r1  <=>  (d - r1) wraps around and sets the top bit; OR-reduce, no branch.
            flags = np.uint64(0)
            for j in range(m):
                flags |= dist[j] - r1
            if flags >> top:
                for j in range(m):
                    if dist[j] < r1 and alive[b0 + j]:
                        if nh == hq.shape[0]:
                            hq, hr, hd = _grow(hq, hr, hd)
                        hq[nh] = q
                        hr[nh] = b0 + j
                        hd[nh] = np.int32(dist[j])
                        nh += 1
    return hq[:nh], hr[:nh], hd[:nh]


@njit(cache=True, nogil=True)
def build_table(codes, start, width):
    """Counting sort of rows by one chunk: direct-addressed offsets + rows grouped by value.

    ``offsets[v]:offsets[v+1]`` are the positions in ``rows`` of the codes whose chunk
    equals ``v``. O(N + 2^width), no comparison sort.
    """
    n = codes.shape[0]
    size = 1 << width
    offsets = np.zeros(size + 1, np.uint32)
    vals = np.empty(n, np.uint32)
    for i in range(n):
        v = chunk_value(codes[i, 0], codes[i, 1], codes[i, 2], codes[i, 3], start, width)
        vals[i] = np.uint32(v)
        offsets[v + 1] += 1
    for v in range(size):
        offsets[v + 1] += offsets[v]
    cursor = offsets[:-1].copy()
    rows = np.empty(n, np.uint32)
    for i in range(n):
        v = vals[i]
        rows[cursor[v]] = i
        cursor[v] += 1
    return offsets, rows


@njit(cache=True, nogil=True)
def flip_masks(width, tmax):
    """All ``width``-bit masks with at most ``tmax`` bits set, ordered by popcount.

    Returns the masks and ``upto`` where ``upto[t]`` counts masks with popcount <= t, so the
    probes for chunk radius t are ``masks[:upto[t]]``. Uses Gosper's hack per popcount.
    """
    total = 0
    upto = np.zeros(tmax + 1, np.int64)
    binom = 1
    for k in range(tmax + 1):
        if k > 0:
            binom = binom * (width - k + 1) // k
        total += binom
        upto[k] = total
    masks = np.empty(total, np.uint64)
    n = 0
    limit = np.uint64(1) << np.uint64(width)
    for k in range(tmax + 1):
        if k == 0:
            masks[n] = 0
            n += 1
            continue
        v = (np.uint64(1) << np.uint64(k)) - np.uint64(1)
        while v < limit:
            masks[n] = v
            n += 1
            c = v & (~v + np.uint64(1))
            r = v + c
            v = (((r ^ v) >> np.uint64(2)) // c) | r
    return masks, upto


@njit(cache=True, nogil=True)
def mih_search(codes, alive, width, offsets, rows, tvec, masks, upto, queries, radius):
    """Exact multi-index hashing search (Norouzi et al.).

    Chunk ``i`` covers bits ``[i*width, (i+1)*width)``; the pigeonhole split ``tvec``
    guarantees every code within ``radius`` has some chunk ``i`` within ``tvec[i]`` bits of
    the query's chunk, so probing those buckets finds it. Candidates are verified on all 256
    bits. A hit is reported only from the first chunk whose bucket holds it (checked on the
    hit's own bits), which dedupes without any per-query memory.

    At 10M codes every probe and every candidate is a cache miss. In one nested loop each
    bucket's variable length costs a branch mispredict that discards the misses in flight,
    so the work is split into flat passes per query (bucket bounds, candidate rows,
    distances, then the few near ones) with software prefetches one pass ahead: measured
    1.7x faster at 1M-10M, and the separate distance pass another 1.2x at 10M.
    """
    nq = queries.shape[0]
    m = offsets.shape[0]
    n_probes = 0
    for i in range(m):
        if tvec[i] >= 0:
            n_probes += upto[tvec[i]]
    n_rows = rows.shape[1]
    n_buckets = offsets.shape[1]
    pval = np.empty(n_probes, np.int64)
    los = np.empty(n_probes, np.int64)
    his = np.empty(n_probes, np.int64)
    pch = np.empty(n_probes, np.int64)
    cand = np.empty(1024, np.int64)
    cch = np.empty(1024, np.int64)
    near = np.empty(64, np.int64)
    nd = np.empty(64, np.int64)
    hq = np.empty(_INITIAL_HITS, np.int64)
    hr = np.empty(_INITIAL_HITS, np.int64)
    hd = np.empty(_INITIAL_HITS, np.int32)
    nh = 0
    for q in range(nq):
        q0 = queries[q, 0]
        q1 = queries[q, 1]
        q2 = queries[q, 2]
        q3 = queries[q, 3]
        # pass 0: probe values; prefetch their offset entries
        n = 0
        for i in range(m):
            t = tvec[i]
            if t < 0:
                continue
            v = chunk_value(q0, q1, q2, q3, i * width, width)
            for kk in range(upto[t]):
                p = np.int64(v ^ masks[kk])
                pval[n] = p
                pch[n] = i
                prefetch(offsets, i * n_buckets + p)
                n += 1
        # pass 1: bucket bounds; prefetch the first row index of each bucket
        for j in range(n):
            i = pch[j]
            p = pval[j]
            lo = offsets[i, p]
            los[j] = lo
            his[j] = offsets[i, p + 1]
            prefetch(rows, i * n_rows + lo)
        total = 0
        for j in range(n):
            total += his[j] - los[j]
        if total > cand.shape[0]:
            cand = np.empty(2 * total, np.int64)
            cch = np.empty(2 * total, np.int64)
        # pass 2: candidate rows
        c = 0
        for j in range(n):
            i = pch[j]
            for s in range(los[j], his[j]):
                row = rows[i, s]
                prefetch(codes, row * 4)
                cand[c] = row
                cch[c] = i
                c += 1
        # pass 3: distances on all 256 bits, in a loop of its own: kept this small, the
        # out-of-order core overlaps the loads of many candidates (with the hit handling
        # inside it, the whole search took ~20% longer at 10M codes: bench/HISTORY.md)
        nn = 0
        for j in range(c):
            if j + VERIFY_AHEAD < c:
                prefetch(codes, cand[j + VERIFY_AHEAD] * 4)
            d = distance(codes, cand[j], q0, q1, q2, q3)
            if d <= radius:
                if nn == near.shape[0]:
                    near, nd = _grow_pair(near, nd)
                near[nn] = j
                nd[nn] = d
                nn += 1
        # pass 4: the near ones (rare): alive, and reported from their first chunk only
        for h in range(nn):
            j = near[h]
            row = cand[j]
            if alive[row]:
                x0 = codes[row, 0] ^ q0
                x1 = codes[row, 1] ^ q1
                x2 = codes[row, 2] ^ q2
                x3 = codes[row, 3] ^ q3
                seen = False
                for jj in range(cch[j]):
                    tj = tvec[jj]
                    if tj >= 0 and popcount64(
                        chunk_value(x0, x1, x2, x3, jj * width, width)
                    ) <= np.uint64(tj):
                        seen = True
                        break
                if not seen:
                    if nh == hq.shape[0]:
                        hq, hr, hd = _grow(hq, hr, hd)
                    hq[nh] = q
                    hr[nh] = row
                    hd[nh] = np.int32(nd[h])
                    nh += 1
    return hq[:nh], hr[:nh], hd[:nh]


@njit(cache=True, nogil=True)
def pair_hits(q, c, distance, qhit, chit):
    """Flag every query and candidate hash that has a partner within ``distance`` (both
    ``(k, 4) uint64``; ``qhit``, ``chit`` bool, set in place): scores a video pair."""
    for i in range(q.shape[0]):
        q0, q1, q2, q3 = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
        for j in range(c.shape[0]):
            d = (
                popcount64(c[j, 0] ^ q0)
                + popcount64(c[j, 1] ^ q1)
                + popcount64(c[j, 2] ^ q2)
                + popcount64(c[j, 3] ^ q3)
            )
            if d <= distance:
                qhit[i] = True
                chit[j] = True
