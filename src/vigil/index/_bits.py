"""Bit-level primitives shared by the Numba kernels.

Codes are handled inside the engine as four little-endian ``uint64`` words per 256-bit code
(a zero-copy view of the ``(N, 32) uint8`` public layout), because one hardware popcount
per word is the cheapest exact Hamming distance there is.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

WORDS = 4  # 256-bit code = 4 x uint64
CODE_BYTES = 32


@intrinsic
def popcount64(typingctx, x):  # type: ignore[no-untyped-def]
    """LLVM ``ctpop`` on a uint64: one POPCNT (or a vector VPOPCNTQ) instead of bit tricks."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        (val,) = args
        val = context.cast(builder, val, signature.args[0], types.uint64)
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [val])

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def distance(a, i, q0, q1, q2, q3):  # type: ignore[no-untyped-def]
    """Hamming distance between row ``i`` of ``a`` ((N, 4) uint64) and a query given as words."""
    return np.int64(
        popcount64(a[i, 0] ^ q0)
        + popcount64(a[i, 1] ^ q1)
        + popcount64(a[i, 2] ^ q2)
        + popcount64(a[i, 3] ^ q3)
    )


@njit(cache=True, nogil=True, inline="always")
def chunk_value(w0, w1, w2, w3, start, width):  # type: ignore[no-untyped-def]
    """Bits ``[start, start + width)`` of the 256-bit little-endian integer ``w0..w3``.

    ``width`` is at most 32, so a chunk spans at most two words.
    """
    word = start >> 6
    shift = np.uint64(start & 63)
    if word == 0:
        lo, hi = w0, w1
    elif word == 1:
        lo, hi = w1, w2
    elif word == 2:
        lo, hi = w2, w3
    else:
        lo, hi = w3, np.uint64(0)
    val = lo >> shift
    if shift != 0:
        val |= hi << (np.uint64(64) - shift)
    return val & ((np.uint64(1) << np.uint64(width)) - np.uint64(1))


def as_words(codes: np.ndarray) -> np.ndarray:
    """View ``(N, 32) uint8`` codes as ``(N, 4) uint64`` without copying when possible."""
    arr = np.ascontiguousarray(codes, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] != CODE_BYTES:
        raise ValueError(f"codes must have shape (N, {CODE_BYTES}) uint8, got {arr.shape}")
    return arr.view("<u8")


@intrinsic
def prefetch(typingctx, arr, index):  # type: ignore[no-untyped-def]
    """Software prefetch of ``arr.flat[index]`` (C-contiguous arrays): start the cache miss
    now, use the data a few hundred instructions later. A no-op for correctness."""
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        ary, idx = args
        data = context.make_array(signature.args[0])(context, builder, ary).data
        ptr = builder.gep(data, [idx])
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(ptr, i8p)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
