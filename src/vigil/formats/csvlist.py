"""[csv] CSV hash lists: one signal per row, labels in columns.

Accepted (reader)::

    signal_type,value,category_scheme,category,series,victim_status,tags,note[,quality,...]

* Header row required; column names are matched case-insensitively, ``hash`` is accepted
  for ``value``. Only ``signal_type`` and ``value`` are required; missing optional columns
  mean "no label". Optional extra columns Vigil understands: ``quality`` (0..100),
  ``source_id`` and ``op`` (``add``/``remove``; empty = add). Unknown columns are kept in
  ``EntryRecord.extra`` (non-empty cells only).
* ``category`` is a value of ``category_scheme`` (``us``/``uk``/``ncmec``/``interpol``); if
  ``category_scheme`` is empty, ``category`` may be written ``scheme:value`` (``uk:A``).
  A bare category without a scheme is an error: a guessed grade misleads every agency
  downstream.
* ``tags`` are separated by ``;``. ``victim_status``: unknown (default), unidentified,
  identified.
* UTF-8 with or without BOM, LF or CRLF, quoted fields per RFC 4180. Blank rows skipped.
* Locations are ``line N`` (physical line where the row ends; the header is line 1).

Writer: the eight columns above plus ``quality,source_id,op``, CRLF line ends, UTF-8
without BOM. ``extra`` is not written (the columns must be known before the first row).
Fields holding a comma, a quote or a line break (a note may hold newlines) are quoted
as RFC 4180 says. The one thing CSV cannot carry is a tag holding ``;``, the tag
separator: the door (``vigil.banks.text``) refuses such a tag, and one stored by an
older version stops the writer with an error naming the record (as does text UTF-8
cannot carry, a lone surrogate).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import cast

from vigil.banks.entry import VICTIM_STATUSES, EntryRecord, Labels, Op, VictimStatus
from vigil.formats._common import (
    FieldError,
    FormatError,
    Lines,
    OnError,
    Reporter,
    Sink,
    Source,
    check_cat,
    open_text,
    parse_int,
    text_sink,
)
from vigil.formats.limits import Limits, setting
from vigil.schemes import parse_category

NAME = "csv"
COLUMNS = ("signal_type", "value", "category_scheme", "category", "series", "victim_status",
           "tags", "note")
WRITE_COLUMNS = (*COLUMNS, "quality", "source_id", "op")
_KNOWN = frozenset(WRITE_COLUMNS)
_ALIASES = {"hash": "value"}


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Stream the rows of a CSV hash list as EntryRecords (one per row)."""
    lim = limits or Limits.from_env()
    with open_text(source, name) as (f, fname):
        report = Reporter(fname, on_error, lim)
        lines = Lines(f, fname, lim)
        rows = csv.reader(lines)
        line = 0
        n = 0
        try:
            header = next(rows, None)
            if header is None:
                return
            lines.record_done()
            cols = [_ALIASES.get(h.strip().lstrip("\ufeff").lower(), h.strip().lstrip("\ufeff")
                                 .lower()) for h in header]
            originals = [h.strip().lstrip("\ufeff") for h in header]
            for required in ("signal_type", "value"):
                if required not in cols:
                    raise FormatError(fname, "line 1 (header)", required,
                                      "missing required column")
            ncols = len(cols)
            known = [(i, c) for i, c in enumerate(cols) if c in _KNOWN]
            unknown = [(i, o) for i, (c, o) in enumerate(zip(cols, originals, strict=True))
                       if c not in _KNOWN]
            cache: dict[tuple[str, ...], Labels] = {}
            for row in rows:
                lines.record_done()
                line = rows.line_num
                if not any(c.strip() for c in row):
                    continue
                n += 1
                if n > lim.max_records:
                    raise FormatError(fname, f"line {line}", None,
                                      f"more than {lim.max_records:,} records "
                                      f"({setting('max_records')})")
                try:
                    rec = _row(row, ncols, known, unknown, cache)
                except FieldError as exc:
                    report(FormatError(fname, f"line {line}", exc.field, exc.reason))
                    continue
                yield rec
        except UnicodeDecodeError:
            raise FormatError(fname, f"after line {line}", None, "not valid UTF-8") from None
        except csv.Error as exc:
            raise FormatError(fname, f"line {lines.lineno}", None, f"bad CSV: {exc}") from None


def _row(row: list[str], ncols: int, known: list[tuple[int, str]],
         unknown: list[tuple[int, str]], cache: dict[tuple[str, ...], Labels]) -> EntryRecord:
    n = len(row)
    if n > ncols:
        raise FieldError(None, f"row has {n} fields, header has {ncols}")
    cells = dict.fromkeys(_KNOWN, "")
    for i, col in known:
        if i < n:
            cells[col] = row[i].strip()
    extra = {orig: row[i].strip() for i, orig in unknown if i < n and row[i].strip()}
    key = (cells["category_scheme"], cells["category"], cells["series"],
           cells["victim_status"], cells["tags"], cells["note"])
    labels = cache.get(key)
    if labels is None:
        labels = _labels(cells)
        if len(cache) >= 65536:  # label sets repeat; bound the cache on lists where not
            cache.clear()
        cache[key] = labels
    try:
        quality = parse_int(cells["quality"])
    except ValueError as exc:
        raise FieldError("quality", str(exc)) from None
    if quality is not None and not 0 <= quality <= 100:
        raise FieldError("quality", "must be 0..100")
    op = (cells["op"] or "add").lower()
    if op not in ("add", "remove"):
        raise FieldError("op", "must be add or remove")
    if not cells["signal_type"]:
        raise FieldError("signal_type", "empty")
    try:
        return EntryRecord(cells["signal_type"], cells["value"], labels, quality=quality,
                           op=cast(Op, op), source_id=cells["source_id"] or None,
                           extra=extra)
    except ValueError as exc:
        raise FieldError("value", str(exc)) from None


def _labels(cells: dict[str, str]) -> Labels:
    category = None
    if cells["category"]:
        if cells["category_scheme"]:
            category = check_cat(cells["category_scheme"], cells["category"], "category")
        elif ":" in cells["category"]:
            try:
                category = parse_category(cells["category"])
            except ValueError as exc:
                raise FieldError("category", str(exc)) from None
        else:
            raise FieldError("category_scheme", "required when category is given")
    vs = (cells["victim_status"] or "unknown").lower()
    if vs not in VICTIM_STATUSES:
        raise FieldError("victim_status", f"must be one of {', '.join(VICTIM_STATUSES)}")
    labels = Labels(category=category, series=cells["series"] or None,
                    victim_status=cast(VictimStatus, vs),
                    tags=tuple(cells["tags"].split(";")), note=cells["note"] or None)
    return labels


def write(records: Iterable[EntryRecord], sink: Sink) -> int:
    """Write a header and one row per record; return the number of records written."""
    n = 0
    with text_sink(sink) as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(WRITE_COLUMNS)
        for n, rec in enumerate(records, 1):
            lab = rec.labels
            if any(";" in t for t in lab.tags):
                raise ValueError(f"record {n}: a tag contains ';', the CSV tag separator")
            scheme, cat = lab.category if lab.category else ("", "")
            try:
                w.writerow([rec.signal_type, rec.value, scheme, cat, lab.series or "",
                            lab.victim_status, ";".join(lab.tags), lab.note or "",
                            "" if rec.quality is None else rec.quality, rec.source_id or "",
                            rec.op])
            except UnicodeEncodeError:
                raise ValueError(f"record {n}: holds a lone surrogate, which UTF-8 cannot "
                                 "carry") from None
    return n
