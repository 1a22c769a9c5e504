"""Bit-level primitives shared by the Numba kernels.

Codes are handled inside the engine as four little-endian ``uint64`` words per 256-bit code
(a zero-copy view of the ``(N, 32) uint8`` public layout), because one hardware popcount
per word is the cheapest exact Hamming distance there is.

Typing: the jitted functions here and in ``_kernels`` are typed by Numba when they are
compiled, from the arrays they are called with; their Python signatures are not what
runs, so they carry no annotations (pyproject.toml relaxes mypy for these two modules).
The intrinsics' own functions run at compile time and are annotated; what jitted code
calls (``popcount64``, ``prefetch``) is exported as ``Any``, because Numba, not Python,
resolves those calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

from vigil.index.arrays import Codes, Words

WORDS = 4  # 256-bit code = 4 x uint64
CODE_BYTES = 32

#: what an intrinsic's typing function returns: its signature and the LLVM code generator
Codegen: TypeAlias = Callable[[Any, ir.IRBuilder, Signature, Sequence[ir.Value]], Any]


@intrinsic
def _popcount64(typingctx: object, x: types.Type) -> tuple[Signature, Codegen] | None:
    """LLVM ``ctpop`` on a uint64: one POPCNT (or a vector VPOPCNTQ) instead of bit tricks."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature,
                args: Sequence[ir.Value]) -> ir.Value:
        (val,) = args
        val = context.cast(builder, val, signature.args[0], types.uint64)
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [val])

    return sig, codegen


#: ``popcount64(x)`` in jitted code: the number of set bits of a uint64
popcount64: Any = _popcount64


@njit(cache=True, nogil=True, inline="always")
def distance(a, i, q0, q1, q2, q3):
    """Hamming distance between row ``i`` of ``a`` ((N, 4) uint64) and a query given as words."""
    return np.int64(
        popcount64(a[i, 0] ^ q0)
        + popcount64(a[i, 1] ^ q1)
        + popcount64(a[i, 2] ^ q2)
        + popcount64(a[i, 3] ^ q3)
    )


@njit(cache=True, nogil=True, inline="always")
def chunk_value(w0, w1, w2, w3, start, width):
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


def as_words(codes: Codes) -> Words:
    """View ``(N, 32) uint8`` codes as ``(N, 4) uint64`` without copying when possible."""
    arr = np.ascontiguousarray(codes, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] != CODE_BYTES:
        raise ValueError(f"codes must have shape (N, {CODE_BYTES}) uint8, got {arr.shape}")
    return arr.view("<u8")


@intrinsic
def _prefetch(typingctx: object, arr: types.Type, index: types.Type,
              ) -> tuple[Signature, Codegen] | None:
    """Software prefetch of ``arr.flat[index]`` (C-contiguous arrays): start the cache miss
    now, use the data a few hundred instructions later. A no-op for correctness."""
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature,
                args: Sequence[ir.Value]) -> ir.Value:
        ary, idx = args
        data = context.make_array(signature.args[0])(context, builder, ary).data
        ptr = builder.gep(data, [idx])
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(ptr, i8p)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.globals.get("llvm.prefetch.p0")  # declared once per module
        if fn is None:
            fn = ir.Function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


#: ``prefetch(arr, index)`` in jitted code: a hint to load ``arr.flat[index]`` into cache
prefetch: Any = _prefetch
