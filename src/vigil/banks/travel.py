"""Derived data as it leaves and enters a node: feeds to peers, Vigil's own export.

A picture banked in a bank with a crop ladder keeps derived data in its PDQ entry's
``extra``: the codes of its windows (``pdq_derived``) and, where the feature stage made
them, its local features (``pdq_features``, base64 text this module carries without
reading). Both are sensitive like the hash and travel with it; whatever comes from
outside is checked here, within limits, before anything stores it, and a stored value
that would not pass (written before the check existed) never leaves the node.

Why a module apart from ``vigil.banks.derived``: that one indexes the codes and needs the
engine's window definitions (``vigil.signals.crops``, which loads the hashing stack); a
``vigil peer sync`` checks every record it receives and must not pay for that import.
The window names are therefore listed here too, and a test keeps both lists equal.
"""

from __future__ import annotations

import re
from typing import Any

#: every window a banked derived code may be of (``vigil.banks.derived.DERIVED_WINDOWS``)
KNOWN_WINDOWS = frozenset((
    "trimmed", "centre-0.025", "centre-0.05", "centre-0.075", "centre-0.1", "centre-0.125",
    "centre-0.15", "top-0.05", "bottom-0.05", "left-0.05", "right-0.05", "top-0.1",
    "bottom-0.1", "left-0.1", "right-0.1", "top-0.15", "bottom-0.15", "left-0.15",
    "right-0.15", "top-0.2", "bottom-0.2", "left-0.2", "right-0.2", "top-bottom-0.06",
    "left-right-0.06", "top-bottom-0.12", "left-right-0.12", "top-left-0.06",
    "top-right-0.06", "bottom-left-0.06", "bottom-right-0.06", "top-left-0.12",
    "top-right-0.12", "bottom-left-0.12", "bottom-right-0.12"))
#: the key of a PDQ entry's local features for the second stage (``vigil.banks.featured``)
FEATURES_KEY = "pdq_features"
#: the keys of an entry's ``extra`` that hold derived data
DERIVED_KEYS = ("pdq_derived", FEATURES_KEY)
#: the most derived codes one record may carry (a picture has at most one per window)
MAX_TRAVELLING_CODES = 64
#: the longest ``pdq_features`` text one record may carry
MAX_FEATURES_CHARS = 8 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]*")
#: base64 text, standard or URL-safe alphabet, padded or not
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def derived_of(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """The derived data in an entry's ``extra`` as it is (None when there is none)."""
    if not extra:
        return None
    out = {k: extra[k] for k in DERIVED_KEYS if k in extra}
    return out or None


def without_derived(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` without its derived data: what a foreign format may write of it. They
    have no field for it, and whoever reads them would not know it is as sensitive as the
    hash (nor could a Vigil node read it back as derived codes)."""
    if not any(k in extra for k in DERIVED_KEYS):
        return extra
    return {k: v for k, v in extra.items() if k not in DERIVED_KEYS}


def check_derived(data: Any) -> dict[str, Any]:
    """Derived data from outside (a feed record, an imported entry), checked.

    An object of ``pdq_derived`` — at most ``MAX_TRAVELLING_CODES`` of [window, 64
    lowercase hex digits, quality 0..100], each window a known one, named once — and/or
    ``pdq_features`` (base64 text of at most ``MAX_FEATURES_CHARS`` characters). Returns
    a copy; ValueError names the field at fault and never quotes a code.
    """
    if not isinstance(data, dict) or not data:
        raise ValueError("derived: must be an object of pdq_derived and/or pdq_features")
    unknown = [str(k)[:40] for k in data if k not in DERIVED_KEYS]
    if unknown:
        raise ValueError(f"derived: unknown field {unknown[0]!r}")
    out: dict[str, Any] = {}
    if "pdq_derived" in data:
        out["pdq_derived"] = _check_codes(data["pdq_derived"])
    if "pdq_features" in data:
        f = data["pdq_features"]
        if not isinstance(f, str):
            raise ValueError("pdq_features: must be a string (base64 text)")
        if len(f) > MAX_FEATURES_CHARS:
            raise ValueError(f"pdq_features: longer than {MAX_FEATURES_CHARS:,} characters "
                             f"({len(f):,})")
        if not _BASE64.fullmatch(f):
            raise ValueError("pdq_features: not base64 text")
        out["pdq_features"] = f
    return out


def _check_codes(raw: Any) -> list[list[Any]]:
    """``pdq_derived`` checked: the well-formed case in a few passes over the whole list
    (a receiver checks every record of a feed twice: as a record, then as an entry, and
    item by item this was most of a first sync's time); anything else goes through
    :func:`check_codes_reference`, which names the first item at fault (tests compare
    the two)."""
    if (type(raw) is list and len(raw) <= MAX_TRAVELLING_CODES
            and all(type(i) is list and len(i) == 3 for i in raw)):
        windows = [i[0] for i in raw]
        codes = [i[1] for i in raw]
        if (all(type(w) is str for w in windows) and KNOWN_WINDOWS.issuperset(windows)
                and len(set(windows)) == len(windows)
                and all(type(c) is str and len(c) == 64 for c in codes)
                and _HEX.fullmatch("".join(codes))
                and all(type(q) is int and 0 <= q <= 100 for _, _, q in raw)):
            return [list(i) for i in raw]
    return check_codes_reference(raw)


def check_codes_reference(raw: Any) -> list[list[Any]]:
    """``pdq_derived`` checked item by item; ValueError names the first item at fault."""
    if not isinstance(raw, list):
        raise ValueError("pdq_derived: must be a list of [window, hex, quality]")
    if len(raw) > MAX_TRAVELLING_CODES:
        raise ValueError(f"pdq_derived: more than {MAX_TRAVELLING_CODES} codes ({len(raw):,})")
    seen: set[str] = set()
    out: list[list[Any]] = []
    for i, item in enumerate(raw):
        where = f"pdq_derived[{i}]"
        if not isinstance(item, list) or len(item) != 3:
            raise ValueError(f"{where}: must be [window, hex, quality]")
        window, code, quality = item
        if not isinstance(window, str) or window not in KNOWN_WINDOWS:
            raise ValueError(f"{where}: unknown window {str(window)[:40]!r}")
        if window in seen:
            raise ValueError(f"{where}: window {window!r} named twice")
        seen.add(window)
        if not isinstance(code, str) or not _HEX64.fullmatch(code):
            raise ValueError(f"{where}: the code must be 64 lowercase hex digits")
        if type(quality) is not int or not 0 <= quality <= 100:
            raise ValueError(f"{where}: quality must be a number 0..100")
        out.append([window, code, quality])
    return out


def travelling(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """The derived data of a stored entry that may leave the node: each part that passes
    :func:`check_derived` (one stored before the check existed may not), None if none
    does. A peer refuses a malformed record outright, so the origin never sends one."""
    found = derived_of(extra)
    if found is None:
        return None
    out: dict[str, Any] = {}
    for key, value in found.items():
        try:
            out.update(check_derived({key: value}))
        except ValueError:
            continue
    return out or None
