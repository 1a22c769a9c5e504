"""Limits on what a parser of outside data takes: nesting depth, sizes and counts.

Why: every reader here handles data that someone else chose — an interchange file, a
request body, a peer's feed page. Streaming keeps memory flat only while each record is
small: a record nested 200,000 levels deep, a line that never ends or a string of a
gigabyte would be built whole in memory before anything could look at it (one such
request body of 400 KB grew a node past 24 GB). So every reader checks these limits
*while* it reads, before it builds what they bound, and refuses with an error that names
the file (or body), the record and the limit, and the setting that raises it.

Two kinds of limit:

* :class:`Limits`, per record of a file or feed (a VICS Media, an NCMEC record, a CSV
  row, a text line, a whole vPDQ file, a feed record) and per file: the operator's
  settings (``VIGIL_MAX_*``, read by :meth:`Limits.from_env`), with defaults far above any
  real hash list and far below what hurts a node;
* :class:`JsonLimits`, for one JSON document held in memory (a request body, a feed page,
  one JSON line): :func:`check_json` walks its tokens in C-parsed events without building
  anything, so a hostile document costs time linear in its size and no memory;
  :func:`load_json` parses it only once it passed.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ijson
import orjson

MiB = 1 << 20
#: How the settings are named in the environment (and in error messages).
ENV = {"max_depth": "VIGIL_MAX_DEPTH", "max_record_bytes": "VIGIL_MAX_RECORD_BYTES",
       "max_record_values": "VIGIL_MAX_RECORD_VALUES", "max_records": "VIGIL_MAX_RECORDS",
       "max_skipped": "VIGIL_MAX_SKIPPED", "max_page_bytes": "VIGIL_MAX_FEED_PAGE_BYTES"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-record and per-file limits of the format readers and the feed receiver."""

    #: nesting of JSON arrays/objects or XML elements, counted from the top of the file
    max_depth: int = 32
    #: bytes of one record: a JSON record or line, a CSV row, an XML record element, a
    #: vPDQ file (one video), a feed record's body. A 3-hour video's frame list is ~1 MB.
    max_record_bytes: int = 4 * MiB
    #: JSON values (or XML elements and attributes) in one record
    max_record_values: int = 100_000
    #: records in one file
    max_records: int = 50_000_000
    #: malformed records an import may skip (``skip_invalid``) before it gives up: past
    #: that, the file is more likely the wrong format than a list with a few bad lines
    max_skipped: int = 100_000
    #: bytes of one answer from a peer (a feed page, a list of feeds or opinions), after
    #: decompression
    max_page_bytes: int = 256 * MiB

    def __post_init__(self) -> None:
        for name in ENV:
            if getattr(self, name) < 1:
                raise ValueError(f"{ENV[name]} must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The limits the environment sets (``VIGIL_MAX_DEPTH`` ...), defaults elsewhere."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, var in ENV.items():
            raw = (env.get(var) or "").strip().replace("_", "")
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{var} must be an integer, got {raw[:40]!r}") from None
        return cls(**values)

    def record_json(self) -> JsonLimits:
        """The limits of one record parsed whole (a JSON line, a feed record's body)."""
        return JsonLimits(depth=self.max_depth, values=self.max_record_values,
                          items=self.max_record_values, string=self.max_record_bytes)


def setting(name: str) -> str:
    """``"max_depth"`` -> ``"VIGIL_MAX_DEPTH"``: error messages say what raises a limit."""
    return ENV[name]


# --------------------------------------------------------------------------- JSON


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Limits of one JSON document held in memory."""

    #: nesting of arrays and objects (the top-level value is depth 1)
    depth: int
    #: values in the whole document (scalars, arrays and objects)
    values: int
    #: items of one array, or keys of one object
    items: int
    #: characters of one string or key
    string: int


class JsonError(ValueError):
    """A JSON document that is malformed or crosses a limit; ``where`` is the path to the
    value at fault (``signals[3].variants``, or ``""`` for the document), ``reason`` says
    what is wrong. Neither quotes the document (it may hold hash values)."""

    def __init__(self, where: str, reason: str, *, syntax: bool = False) -> None:
        self.where, self.reason, self.syntax = where, reason, syntax
        super().__init__(f"{where}: {reason}" if where else reason)


def syntax_reason(exc: BaseException) -> str:
    """The first line of a JSON parser's message, without the input it quotes after it.

    yajl's messages quote the text around the error on the following lines (possibly
    hash values); some arrive as the repr of bytes, with the newlines escaped.
    """
    text = str(exc).strip()
    if text[:2] in ("b'", 'b"'):
        text = text[2:]
    first = text.replace("\\n", "\n").splitlines()[0].strip() if text else ""
    return f"invalid JSON ({(first or type(exc).__name__)[:100]})"


def _path(stack: list[list[Any]]) -> str:
    """Where the scan is, as pydantic names a field: keys and indices joined by dots."""
    parts = []
    for is_map, count, key in stack:
        if is_map:
            if key is not None:
                parts.append(str(key)[:40])
        else:
            parts.append(str(count - 1))
    out = ".".join(parts)
    return out if len(out) <= 80 else out[:77] + "..."


def check_events(events: Iterable[tuple[str, Any]], lim: JsonLimits) -> None:
    """Check a stream of ijson ``basic_parse`` events against ``lim``; JsonError if not.

    Builds nothing: it keeps a counter per open container, so memory stays at the depth
    limit whatever the document.
    """
    stack: list[list[Any]] = []  # per open container: [is_map, items so far, last key]
    values = 0
    depth, max_values, max_items, max_string = lim.depth, lim.values, lim.items, lim.string
    for ev, v in events:
        if ev == "end_map" or ev == "end_array":
            stack.pop()
            continue
        if ev == "map_key":
            top = stack[-1]
            if len(v) > max_string:
                raise JsonError(_path(stack), f"a key longer than {max_string:,} characters")
            top[1] += 1
            top[2] = v
            if top[1] > max_items:
                raise JsonError(_path(stack), f"more than {max_items:,} keys in one object")
            continue
        if stack and not stack[-1][0]:
            top = stack[-1]
            top[1] += 1
            if top[1] > max_items:
                raise JsonError(_path(stack), f"more than {max_items:,} items in one array")
        values += 1
        if values > max_values:
            raise JsonError(_path(stack), f"more than {max_values:,} values")
        if ev == "start_map" or ev == "start_array":
            if len(stack) >= depth:
                raise JsonError(_path(stack), f"nested deeper than {depth} levels")
            stack.append([ev == "start_map", 0, None])
        elif ev == "string" and len(v) > max_string:
            raise JsonError(_path(stack), f"a string longer than {max_string:,} characters")


def _quick_ok(data: bytes, lim: JsonLimits) -> bool:
    """Whether counting bytes alone proves ``data`` within ``lim`` (most small documents):
    no more brackets than the depth limit allows containers, no more separators than
    values, no string longer than the whole. Brackets or commas inside strings only make
    the counts larger, so a "yes" is always right; a "no" just means look closer."""
    if len(data) > lim.string:
        return False
    opens = data.count(b"[") + data.count(b"{")
    seps = data.count(b",") + opens + 1
    return opens <= lim.depth and seps <= min(lim.values, lim.items)


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if b"\\u" not in raw or "surrogate" not in str(exc):
            raise JsonError("", syntax_reason(exc), syntax=True) from None
    # A lone surrogate escape ("\ud800") is valid JSON that orjson refuses; foreign files
    # hold them in fields we only carry. The standard parser reads them (the document is
    # already known to be within the limits), and the writers escape them back.
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise JsonError("", syntax_reason(exc), syntax=True) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_json(data: bytes | str, lim: JsonLimits) -> None:
    """Raise JsonError unless ``data`` is one JSON document within ``lim`` (strict JSON:
    no NaN or Infinity, no trailing text, valid UTF-8)."""
    load_json(data, lim)


def load_json(data: bytes | str, lim: JsonLimits) -> Any:
    """Parse ``data`` once it is known to be within ``lim`` (strict JSON, as
    :func:`check_json`). A document whose bytes alone prove it small is parsed at once;
    any other is first walked token by token, building nothing."""
    raw = data.encode() if isinstance(data, str) else data
    if _quick_ok(raw, lim):
        return _loads(raw)
    try:
        check_events(ijson.basic_parse(io.BytesIO(raw), use_float=True), lim)
    except ijson.JSONError as exc:
        raise JsonError("", syntax_reason(exc), syntax=True) from None
    except (ValueError, OverflowError, RecursionError) as exc:  # number conversions
        if isinstance(exc, JsonError):
            raise
        raise JsonError("", syntax_reason(exc), syntax=True) from None
    return _loads(raw)
