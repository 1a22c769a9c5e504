"""[stopncii] StopNCII style hash records, JSON.

Accepted (reader), UTF-8 with or without BOM, streamed; keys matched case-insensitively:

* a list of records, JSON lines (one record per line), or an object holding the list under
  ``hashes``, ``records``, ``data``, ``items`` or ``value``.

A record::

    {"hashId": "h-1", "signalType": "PDQ", "hashValue": "...", "hashStatus": "Active",
     "caseNumbers": ["2024-17"]}

* ``signalType``: PDQ, MD5, SHA1, SHA256 (any case, ``-`` and ``_HASH`` suffix ignored);
  other names become opaque types of that lower-cased name. ``hashValue``: the hash.
* ``hashStatus``: Received or Active -> ``op="add"``; Withdrawn or Deleted -> ``op="remove"``
  (absent -> add). A status other than Active/Deleted is kept in ``extra["hashStatus"]``
  so it is written back as it came.
* ``caseNumbers`` (list, or one string/number) -> tags ``case:NUMBER``.
* ``hashId`` -> ``source_id``.
* Vigil's own optional fields (so a Vigil export comes back whole): ``quality``,
  ``category`` (``scheme:value``), ``series``, ``tags`` (list), ``victimStatus``, ``note``.
  Any other key is kept in ``extra``.

Locations are ``record N (hashId X)`` or ``line N`` for JSON lines.

Writer: a JSON list (or JSON lines with ``style="jsonl"``) with hashStatus Active for
additions and Deleted for removals (or the status kept in ``extra``, if it agrees). Tags
``case:NUMBER`` become ``caseNumbers``; a ``case:`` tag the reader would not give back as
it is (an empty number, or spaces around it) stays in ``tags``. Text is UTF-8 JSON, with
``\\u`` escapes for what UTF-8 cannot carry (``dumps_json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal, cast

from vigil.banks.entry import HEX_LENGTHS, EntryRecord, Op
from vigil.banks.travel import without_derived
from vigil.formats._common import (
    FieldError,
    FormatError,
    OnError,
    Reporter,
    Sink,
    Source,
    ci,
    dumps_json,
    ext_fields,
    ext_labels,
    open_binary,
    text_or_none,
    text_sink,
)
from vigil.formats._json import BadRecord, iter_json_records
from vigil.formats.limits import Limits

NAME = "stopncii"
_CONTAINERS = dict.fromkeys(("hashes", "records", "data", "items", "value"), "record")
_STATUS = {"received": "add", "active": "add", "withdrawn": "remove", "deleted": "remove"}
_CANONICAL = {"add": "Active", "remove": "Deleted"}
_CANON = {"hashid": "hashId", "signaltype": "signalType", "hashvalue": "hashValue",
          "hashstatus": "hashStatus", "casenumbers": "caseNumbers", "victimstatus": "victimStatus"}
_INTERPRETED = frozenset({"hashid", "signaltype", "hashvalue", "hashstatus", "casenumbers",
                          "quality", "category", "series", "tags", "victimstatus", "note"})


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Stream StopNCII-style records as EntryRecords (one per record)."""
    lim = limits or Limits.from_env()
    with open_binary(source, name) as (f, fname):
        report = Reporter(fname, on_error, lim)
        for location, _kind, obj in iter_json_records(f, fname, _CONTAINERS, lim):
            if isinstance(obj, BadRecord):
                report(FormatError(fname, location, None, obj.reason))
                continue
            try:
                rec = _record(obj)
            except FieldError as exc:
                report(FormatError(fname, _where(location, obj), exc.field, exc.reason))
                continue
            yield rec


def _where(location: str, obj: Any) -> str:
    if isinstance(obj, dict):
        hid = ci(obj).get("hashid", (None, None))[1]
        if isinstance(hid, int | str) and not isinstance(hid, bool) and str(hid).strip():
            return f"{location} (hashId {str(hid).strip()[:40]})"
    return location


def signal_type(name: str) -> str:
    """StopNCII's signal type name as Vigil's (``PDQ`` -> ``pdq``, ``SHA-256`` -> ``sha256``)."""
    t = name.strip().lower()
    if t.endswith("_hash"):
        t = t[:-5]
    return t.replace("-", "") if t.replace("-", "") in HEX_LENGTHS else t


def _record(obj: Any) -> EntryRecord:
    if not isinstance(obj, dict):
        raise FieldError(None, "a record must be an object")
    m = ci(obj)
    key = {k: m.get(k, (_CANON.get(k, k),))[0] for k in _INTERPRETED}
    st = text_or_none(m.get("signaltype", (None, None))[1])
    if st is None:
        raise FieldError(key["signaltype"], "missing")
    value = m.get("hashvalue", (None, None))[1]
    if not isinstance(value, str) or not value.strip():
        raise FieldError(key["hashvalue"], "missing or not a string")
    extra = {k: v for low, (k, v) in m.items() if low not in _INTERPRETED}
    status = text_or_none(m.get("hashstatus", (None, None))[1])
    op = "add"
    if status is not None:
        if status.lower() not in _STATUS:
            raise FieldError(key["hashstatus"], "must be Received, Active, Withdrawn or Deleted")
        op = _STATUS[status.lower()]
        if status.lower() not in ("active", "deleted"):
            extra["hashStatus"] = status.capitalize()
    cases = m.get("casenumbers", (None, None))[1]
    if cases is None:
        cases = []
    elif isinstance(cases, str | int):
        cases = [cases]
    elif not isinstance(cases, list) or any(isinstance(c, dict | list) for c in cases):
        raise FieldError(key["casenumbers"], "must be a list of case numbers")
    tags = [f"case:{str(c).strip()}" for c in cases if c is not None and str(c).strip()]
    labels, quality = ext_labels(m, tags=tags)
    try:
        return EntryRecord(signal_type(st), value, labels, quality=quality,
                           op=cast(Op, op),
                           source_id=text_or_none(m.get("hashid", (None, None))[1]),
                           extra=extra)
    except ValueError as exc:
        raise FieldError(key["hashvalue"] if "value" in str(exc) else key["signaltype"],
                         str(exc)) from None


def _case(tag: str) -> bool:
    """Whether ``tag`` is written as a case number: the reader makes ``case:`` + the
    number, stripped, so only a tag it gives back as it was."""
    number = tag[5:]
    return tag.startswith("case:") and bool(number) and number == number.strip()


def record(rec: EntryRecord) -> dict[str, Any]:
    """The StopNCII-style object for one EntryRecord."""
    out: dict[str, Any] = {}
    if rec.source_id is not None:
        out["hashId"] = rec.source_id
    out["signalType"] = rec.signal_type.upper()
    out["hashValue"] = rec.value
    kept = rec.extra.get("hashStatus")
    ok = isinstance(kept, str) and _STATUS.get(kept.lower()) == rec.op
    out["hashStatus"] = kept if ok else _CANONICAL[rec.op]
    cases = [t[5:] for t in rec.labels.tags if _case(t)]
    if cases:
        out["caseNumbers"] = cases
    if rec.quality is not None:
        out["quality"] = rec.quality
    ext = ext_fields(rec.labels)
    if "tags" in ext:
        other = [t for t in ext["tags"] if not _case(t)]
        if other:
            ext["tags"] = other
        else:
            del ext["tags"]
    out.update(ext)
    for k, v in without_derived(rec.extra).items():
        if k.lower() not in _INTERPRETED and k not in out:
            out[k] = v
    return out


def write(records: Iterable[EntryRecord], sink: Sink,
          style: Literal["json", "jsonl"] = "json") -> int:
    """Write StopNCII-style records; return the number written."""
    if style not in ("json", "jsonl"):
        raise ValueError(f"style must be json or jsonl, not {style!r}")
    n = 0
    with text_sink(sink) as f:
        if style == "json":
            f.write("[")
        for n, rec in enumerate(records, 1):
            line = dumps_json(record(rec))
            if style == "json":
                f.write(("\n" if n == 1 else ",\n") + line)
            else:
                f.write(line + "\n")
        if style == "json":
            f.write("\n]\n")
    return n
