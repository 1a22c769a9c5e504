"""Hex <-> array conversion for 256-bit perceptual codes (PDQ).

Signals travel as lowercase hex (see DESIGN.md "Words"); the engine works on ``(N, 32) uint8``
arrays, byte ``i`` of a row being ``bytes.fromhex(hex)[i]``. Parsing is strict because a
silently mis-parsed code would never match anything and nobody would notice.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from vigil.index.arrays import Codes

CODE_BYTES = 32
CODE_HEX = 2 * CODE_BYTES


def _shown(value: object) -> str:
    """A short repr for error messages: enough to find the bad row, never a whole payload."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_one(position: int, value: object, n_bytes: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"code at position {position} is not a str: {_shown(value)}")
    if len(value) != 2 * n_bytes:
        raise ValueError(
            f"code at position {position} has {len(value)} characters, expected "
            f"{2 * n_bytes} hex digits: {_shown(value)}"
        )
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != n_bytes:
        raise ValueError(f"code at position {position} is not hexadecimal: {_shown(value)}")
    return raw


def parse_hex_rows(hexes: Iterable[str], n_bytes: int) -> NDArray[np.uint8]:
    """Parse fixed-width hex strings into an ``(N, n_bytes) uint8`` array.

    Fast path joins everything and parses once (10M codes in seconds); only when that fails
    does it walk row by row to name the first offending position.
    """
    items = hexes if isinstance(hexes, list | tuple) else list(hexes)
    n = len(items)
    if n == 0:
        return np.zeros((0, n_bytes), dtype=np.uint8)
    try:
        joined = "".join(items)
        raw = bytes.fromhex(joined) if len(joined) == 2 * n_bytes * n else b""
    except (TypeError, ValueError):
        raw = b""
    # bytes.fromhex skips ASCII whitespace, so a length check alone is not enough.
    if len(raw) != n * n_bytes or any(len(h) != 2 * n_bytes for h in items):
        for position, value in enumerate(items):
            _parse_one(position, value, n_bytes)
        raise ValueError("hex codes could not be parsed")  # pragma: no cover - defensive
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, n_bytes).copy()


def codes_from_hex(hexes: Iterable[str]) -> Codes:
    """Parse 64-hex-digit PDQ codes into an ``(N, 32) uint8`` array (upper or lower case).

    Raises ValueError naming the position and (shortened) value of the first bad code.
    """
    return parse_hex_rows(hexes, CODE_BYTES)


def hex_from_codes(codes: Codes) -> list[str]:
    """Lowercase hex for each row of an ``(N, 32) uint8`` array (the inverse of codes_from_hex)."""
    arr = np.ascontiguousarray(codes, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] != CODE_BYTES:
        raise ValueError(f"codes must have shape (N, {CODE_BYTES}), got {arr.shape}")
    return [row.tobytes().hex() for row in arr]


def hamming(a_hex: str, b_hex: str) -> int:
    """Hamming distance between two hex codes; the one-off check a human or a test wants."""
    a, b = codes_from_hex([a_hex, b_hex])
    return int(np.bitwise_count(a ^ b).sum())
