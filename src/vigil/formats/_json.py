"""Streaming the records of a JSON file, each one built whole but never past the limits.

ijson's C parser turns the bytes into events; this module walks the events of the file's
skeleton (the containers around the records) itself and builds each record from its
events, checking the nesting depth and the number of values as it goes. A
:class:`Metered` reader under the parser refuses to read more than a record's byte limit
past the start of the current record (or past the last event, outside records), so even
one string of a gigabyte — which no event announces until it ends — is refused after
``max_record_bytes``. What a record crosses ends the file: it is not a hash list.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import ijson

from vigil.formats._common import CHUNK, FormatError, Rewindable
from vigil.formats.limits import JsonError, Limits, load_json, setting, syntax_reason

#: a record's kind for its path (lower-cased keys, ``"item"`` for array items), or None
Kinds = Callable[[tuple[str, ...]], str | None]


class TooLarge(Exception):
    """Raised by :class:`Metered` when more than its limit was read past the mark."""


class Metered(io.RawIOBase):
    """A binary reader that counts what passes and refuses to go ``limit`` bytes past
    ``mark`` (the reader moves the mark as it sees events)."""

    def __init__(self, raw: io.RawIOBase, limit: int) -> None:
        super().__init__()
        self._raw = raw
        self.limit = limit
        self.count = 0
        self.mark = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.count - self.mark > self.limit:
            raise TooLarge()
        n = self._raw.readinto(b) or 0
        self.count += n
        return n


class RecordLimit(Exception):
    """A record crossed a depth or count limit; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRecord:
    """A record that could not even be parsed (one bad JSON line): reported, then skipped."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def build(ev: str, value: Any, events: Iterator[tuple[str, Any]], depth: int,
          lim: Limits) -> Any:
    """The value that starts with event (``ev``, ``value``) at nesting ``depth``, built
    from ``events`` up to its end; RecordLimit if it nests or counts past ``lim``."""
    if ev == "start_map":
        root: Any = {}
    elif ev == "start_array":
        root = []
    else:
        return value
    if depth >= lim.max_depth:
        raise RecordLimit(f"nested deeper than {lim.max_depth} levels "
                          f"({setting('max_depth')})")
    stack: list[Any] = [root]
    keys: list[str | None] = [None]
    values = 1
    max_values = lim.max_record_values
    room = lim.max_depth - depth  # containers this record may still open
    for ev, v in events:
        if ev == "map_key":
            keys[-1] = v
            continue
        if ev == "end_map" or ev == "end_array":
            stack.pop()
            keys.pop()
            if not stack:
                return root
            continue
        values += 1
        if values > max_values:
            raise RecordLimit(f"more than {max_values:,} values in one record "
                              f"({setting('max_record_values')})")
        top = stack[-1]
        if ev == "start_map" or ev == "start_array":
            if len(stack) >= room:
                raise RecordLimit(f"nested deeper than {lim.max_depth} levels "
                                  f"({setting('max_depth')})")
            new: Any = {} if ev == "start_map" else []
            if type(top) is list:
                top.append(new)
            else:
                top[keys[-1]] = new
            stack.append(new)
            keys.append(None)
        elif type(top) is list:
            top.append(v)
        else:
            top[keys[-1]] = v
    raise ijson.IncompleteJSONError("premature EOF")


def _too_large(fname: str, n: int, lim: Limits, in_record: bool) -> FormatError:
    where = f"record {n + 1}" if in_record else f"after record {n}"
    return FormatError(fname, where, None,
                       f"more than {lim.max_record_bytes:,} bytes in one record or value "
                       f"({setting('max_record_bytes')})")


def json_records(f: io.RawIOBase, fname: str, kinds: Kinds, lim: Limits,
                 on_array: Callable[[tuple[str, ...]], None] | None = None,
                 ) -> Iterator[tuple[str, str, Any]]:
    """(location, kind, value) for each value of the document whose path ``kinds`` names.

    The containers around the records (the skeleton) are walked, not built: only a depth
    count and the path are kept. ``on_array`` is told the path of each array the skeleton
    opens (a reader checks that its container was there). A syntax error, a record that
    crosses a limit and more than ``max_records`` records end the file (FormatError).
    """
    m = Metered(f, lim.max_record_bytes + CHUNK)
    events = ijson.basic_parse(m, use_float=True, buf_size=CHUNK)
    path: list[str] = []  # per open skeleton container: its current key, or "item"
    n = 0
    in_record = False
    try:
        for ev, v in events:
            m.mark = m.count
            if ev == "map_key":
                path[-1] = v.lower()
                continue
            if ev == "end_map" or ev == "end_array":
                path.pop()
                continue
            here = tuple(path)
            kind = kinds(here)
            if kind is not None:
                in_record = True
                value = build(ev, v, events, len(path), lim)
                in_record = False
                n += 1
                if n > lim.max_records:
                    raise FormatError(fname, f"record {n}", None,
                                      f"more than {lim.max_records:,} records "
                                      f"({setting('max_records')})")
                yield f"record {n}", kind, value
                continue
            if ev == "start_map" or ev == "start_array":
                if len(path) >= lim.max_depth:
                    raise FormatError(fname, f"after record {n}", None,
                                      f"nested deeper than {lim.max_depth} levels "
                                      f"({setting('max_depth')})")
                path.append("" if ev == "start_map" else "item")
                if ev == "start_array" and on_array is not None:
                    on_array(here)
    except TooLarge:
        raise _too_large(fname, n, lim, in_record) from None
    except RecordLimit as exc:
        raise FormatError(fname, f"record {n + 1}", None, exc.reason) from None
    except ijson.JSONError as exc:
        raise FormatError(fname, f"after record {n}", None, syntax_reason(exc)) from None
    except (ValueError, OverflowError) as exc:  # a number the parser could not convert
        raise FormatError(fname, f"after record {n}", None, syntax_reason(exc)) from None


def json_lines(f: io.RawIOBase, fname: str, lim: Limits) -> Iterator[tuple[str, str, Any]]:
    """One record per line; a line that is not JSON, or crosses a limit, is one bad record
    (:class:`BadRecord`); a line longer than ``max_record_bytes`` ends the file."""
    reader = io.BufferedReader(f, CHUNK)
    record = lim.record_json()
    lineno = n = 0
    while True:
        line = reader.readline(lim.max_record_bytes + 1)
        if not line:
            return
        lineno += 1
        if len(line) > lim.max_record_bytes:
            raise FormatError(fname, f"line {lineno}", None,
                              f"longer than {lim.max_record_bytes:,} bytes "
                              f"({setting('max_record_bytes')})")
        s = line.strip()
        if not s:
            continue
        n += 1
        if n > lim.max_records:
            raise FormatError(fname, f"line {lineno}", None,
                              f"more than {lim.max_records:,} records "
                              f"({setting('max_records')})")
        try:
            yield f"line {lineno}", "record", load_json(s, record)
        except JsonError as exc:
            yield f"line {lineno}", "record", BadRecord(
                exc.reason if exc.syntax else f"{exc.where or 'record'}: {exc.reason}")


def iter_json_records(f: Rewindable, fname: str, containers: dict[str, str],
                      lim: Limits) -> Iterator[tuple[str, str, Any]]:
    """Stream the records of a JSON document as (location, kind, object).

    Accepts a top-level list (kind ``"record"``), JSON lines (one object per line), or an
    object whose lists under the keys of ``containers`` (matched case-insensitively) hold
    records of the mapped kind, in document order. A syntax error in a JSON-lines file
    spoils one line (yielded as :class:`BadRecord`); anywhere else it ends the file, as a
    raised FormatError, because no parser can find the next record after it.
    """
    head = f.head(4096).lstrip()
    if not head:
        return
    if head[:1] == b"[":
        f.stream()
        yield from json_records(f, fname, lambda p: "record" if p == ("item",) else None, lim)
        return
    if head[:1] != b"{":
        raise FormatError(fname, "line 1", None, "not a JSON list, object or JSON lines")
    first = f.first_line(min(lim.max_record_bytes, 1 << 20)).strip()
    obj: Any = None
    with contextlib.suppress(JsonError):
        obj = load_json(first, lim.record_json())
    if isinstance(obj, dict) and not any(
            k.lower() in containers and isinstance(v, list) for k, v in obj.items()):
        f.stream()
        yield from json_lines(f, fname, lim)
        return
    f.stream()
    seen: list[tuple[str, ...]] = []

    def kinds(p: tuple[str, ...]) -> str | None:
        return containers.get(p[0]) if len(p) == 2 and p[1] == "item" else None

    def on_array(p: tuple[str, ...]) -> None:
        if len(p) == 1 and p[0] in containers:
            seen.append(p)

    yield from json_records(f, fname, kinds, lim, on_array)
    if not seen:
        raise FormatError(fname, "top level", None,
                          "object has none of the keys " + ", ".join(sorted(containers)))
