"""[vigil] Vigil's own entry list: every field of an entry, from one Vigil node to another.

Why a format of its own: the interchange formats each lose something (CSV writes no
``extra``; none has a field for a picture's derived data, and a reader of theirs would
not know that data is as sensitive as the hash). This one keeps an entry whole: a copy
of a bank restored or moved to another node matches what the bank matched, cropped and
framed copies included.

JSON Lines, UTF-8 (with or without BOM). The first line is the header
``{"vigil_entries": 1}`` (the format's version); each further line is one entry::

    {"type": "pdq", "value": "<64 hex>", "quality": 100, "op": "add",
     "source_id": "sha256:…", "category": "us:1", "series": "S17", "tags": ["a"],
     "victimStatus": "identified", "note": "…", "extra": {"size": 1234},
     "derived": {"pdq_derived": [["centre-0.05", "<64 hex>", 87], …],
                 "pdq_features": "<base64>"}}

Only ``type`` and ``value`` are required; ``op`` is ``add`` (default) or ``remove``.
``derived`` is checked as a peer's feed record is (``vigil.banks.travel``: known
windows, at most 64 codes, features of at most 8 KiB), and may only be on a ``pdq``
entry; ``extra`` is any JSON object but may not hold derived data outside ``derived``.
Each line is checked against the record limits (``vigil.formats.limits``) before it is
parsed. Blank lines are skipped. Locations are ``line N``.

Writer: the header, then one line per record; removals carry type, value and source id
only. Derived data a stored entry holds that would not pass the reader's checks is left
out, so that what is written can always be read back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from vigil.banks.entry import EntryRecord, Op
from vigil.banks.travel import DERIVED_KEYS, check_derived, travelling, without_derived
from vigil.formats._common import (
    FormatError,
    Lines,
    OnError,
    Reporter,
    Sink,
    Source,
    ci,
    dumps_json,
    ext_fields,
    ext_labels,
    open_text,
    text_sink,
)
from vigil.formats.limits import JsonError, Limits, load_json, setting

NAME = "vigil"
HEADER_KEY = "vigil_entries"
VERSION = 1
_FIELDS = frozenset(("type", "value", "quality", "op", "source_id", "category", "series",
                     "tags", "victimstatus", "note", "extra", "derived"))


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Stream a Vigil entry list, one EntryRecord per entry line."""
    lim = limits or Limits.from_env()
    with open_text(source, name) as (f, fname):
        report = Reporter(fname, on_error, lim)
        lines = Lines(f, fname, lim)
        n = 0
        header = False
        try:
            for raw in lines:
                lines.record_done()
                where = f"line {lines.lineno}"
                line = raw.strip().lstrip("\ufeff")
                if not line:
                    continue
                try:
                    obj = load_json(line, lim.record_json())
                except JsonError as exc:
                    if not header:
                        raise FormatError(fname, where, None, f"not a Vigil entry list: "
                                          f"{exc}") from None
                    report(FormatError(fname, where, exc.where or None, exc.reason))
                    continue
                if not header:
                    _check_header(obj, fname, where)
                    header = True
                    continue
                n += 1
                if n > lim.max_records:
                    raise FormatError(fname, where, None, f"more than {lim.max_records:,} "
                                      f"records ({setting('max_records')})")
                try:
                    yield _entry(obj)
                except FieldProblem as exc:
                    report(FormatError(fname, where, exc.field, exc.reason))
        except UnicodeDecodeError:
            raise FormatError(fname, f"after line {lines.lineno}", None,
                              "not valid UTF-8") from None
        if not header:
            raise FormatError(fname, "start of file", None,
                              'not a Vigil entry list: no {"vigil_entries": 1} header line')


class FieldProblem(ValueError):
    """One field of an entry line is wrong (the reader adds the file and the line)."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}" if field else reason)


def _check_header(obj: Any, fname: str, where: str) -> None:
    version = obj.get(HEADER_KEY) if isinstance(obj, dict) else None
    if version is None:
        raise FormatError(fname, where, None,
                          'not a Vigil entry list: the first line must be {"vigil_entries": 1}')
    if type(version) is not int or version != VERSION:
        raise FormatError(fname, where, HEADER_KEY,
                          f"version {str(version)[:20]} is not one this Vigil reads ({VERSION})")


def _entry(obj: Any) -> EntryRecord:
    """One entry line as a record; FieldProblem names the field at fault."""
    if not isinstance(obj, dict):
        raise FieldProblem(None, "an entry must be a JSON object")
    fields = ci(obj)
    unknown = [k for k in fields if k not in _FIELDS]
    if unknown:
        raise FieldProblem(fields[unknown[0]][0][:40], "unknown field")
    t, v = fields.get("type", (None, None))[1], fields.get("value", (None, None))[1]
    if not isinstance(t, str) or not isinstance(v, str):
        raise FieldProblem("type" if not isinstance(t, str) else "value",
                           "required, and must be a string")
    raw_op = fields.get("op", (None, "add"))[1]
    if raw_op not in ("add", "remove"):
        raise FieldProblem("op", "must be add or remove")
    op: Op = "add" if raw_op == "add" else "remove"
    sid = fields.get("source_id", (None, None))[1]
    if sid is not None and not isinstance(sid, str):
        raise FieldProblem("source_id", "must be a string")
    extra: dict[str, Any] = fields.get("extra", (None, {}))[1]
    if not isinstance(extra, dict):
        raise FieldProblem("extra", "must be an object")
    if any(k in extra for k in DERIVED_KEYS):
        raise FieldProblem("extra", "holds derived data; it belongs in 'derived'")
    derived = fields.get("derived", (None, None))[1]
    if derived is not None:
        if op != "add":
            raise FieldProblem("derived", "a removal carries none")
        try:
            extra = {**extra, **check_derived(derived)}
        except ValueError as exc:
            raise FieldProblem("derived", str(exc)) from None
    try:
        labels, quality = ext_labels(fields)
        if "quality" in fields and fields["quality"][1] is not None \
                and type(fields["quality"][1]) is not int:
            raise FieldProblem("quality", "must be a number 0..100")
        return EntryRecord(t, v, labels, quality, op, sid, extra)
    except FieldProblem:
        raise
    except ValueError as exc:
        raise FieldProblem(getattr(exc, "field", None), getattr(exc, "reason", str(exc))) \
            from None


def _line(rec: EntryRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"type": rec.signal_type, "value": rec.value}
    if rec.op == "remove":
        out["op"] = "remove"
        if rec.source_id is not None:
            out["source_id"] = rec.source_id
        return out
    if rec.quality is not None:
        out["quality"] = rec.quality
    if rec.source_id is not None:
        out["source_id"] = rec.source_id
    out.update(ext_fields(rec.labels))
    rest = without_derived(rec.extra)
    if rest:
        out["extra"] = rest
    derived = travelling(rec.extra) if rec.signal_type == "pdq" else None
    if derived:
        out["derived"] = derived
    return out


def write(records: Iterable[EntryRecord], sink: Sink) -> int:
    """Write the header and one line per record; return the number of records."""
    n = 0
    with text_sink(sink) as f:
        f.write(dumps_json({HEADER_KEY: VERSION}) + "\n")
        for rec in records:
            n += 1
            f.write(dumps_json(_line(rec)) + "\n")
    return n
