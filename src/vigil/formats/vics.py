"""[vics] Project VIC / VICS JSON (OData style), streamed.

Accepted (reader), in UTF-8 with or without BOM:

* hash set: ``{"odata.metadata": "...", "value": [Media, ...]}`` (or ``@odata.context``);
* case: ``{"@odata.context": "...", "value": [{"CaseID": ..., "Media": [Media, ...]}, ...]}``;
* a bare top-level list of Media.

The shape is decided by looking at the first ``value`` item (a ``Media`` or ``CaseID`` key
means case), then the file is streamed with ijson: memory stays flat whatever its size.
Case-level fields are not carried into the records.

Media fields (names matched case-insensitively):

* ``MD5``, ``SHA1`` -> md5/sha1 records; ``PhotoDNA`` -> opaque ``photodna`` record;
  ``AlternativeHashes[{HashName, HashValue}]``: SHA256/SHA-256 -> sha256, PDQ -> pdq,
  MD5/SHA1 likewise, any other name -> an opaque type of that lower-cased name. An
  optional ``Quality`` next to a PDQ value is read (Vigil writes it). One Media yields one
  EntryRecord per hash, sharing ``source_id`` (``MediaID``), labels and ``extra``.
* ``Category`` 0..5 (number or string) -> category ("us", n); null/empty -> none.
* ``VictimIdentified`` true -> "identified", explicitly false -> "unidentified", absent
  -> "unknown". Booleans may be JSON booleans or strings "true"/"false" in any case.
* ``Series`` -> series, ``Comments`` -> note, ``Tags`` -> tags (a comma-separated string,
  as VICS writes it, or a list).
* Everything else (``MediaSize``, ``DateUpdated``, ``OffenderIdentified``,
  ``IsDistributed``, ``IsPrecategorized``, ``MimeType``, ``RelativeFilePath``,
  ``MediaFiles``, unknown keys) goes into ``extra`` under its own name; known booleans
  are normalised to bool and ``MediaSize`` to int.

A Media without any hash, with a malformed hash or label is one bad record, reported as
``record N (MediaID M)`` and skipped whole: half a Media would carry labels its other
hashes were not given. A JSON syntax error ends the file (always raised).

Writer: a VICS 2.0 hash set, streamed: ``odata.metadata`` with the VICS 2.0 Media metadata
URL and one Media per group of consecutive records sharing ``source_id`` (and labels).
``MediaID`` is the source_id when it is an integer (ASCII digits), else a counter.
``Category`` is the us-scheme grade, or the grade ``map_category`` gives for another
scheme, else 0. Booleans are written as "true"/"false" strings, as Project VIC tools
write and read them. VICS has no deletions: a ``remove`` record is an error.

What VICS cannot carry as such is written by these rules: ``Tags`` is a comma-separated
string, or a list when a tag holds a comma; text is UTF-8 JSON, with ``\\u`` escapes for
what UTF-8 cannot carry (``dumps_json``); any character a label may hold (any script,
newlines and tabs in ``Comments``) is carried by JSON string escapes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import ijson

from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.travel import without_derived
from vigil.formats._common import (
    CHUNK,
    SNIFF_LIMIT,
    FieldError,
    FormatError,
    OnError,
    Reporter,
    Rewindable,
    Sink,
    Source,
    ci,
    dumps_json,
    groups,
    open_binary,
    parse_bool,
    parse_int,
    text_or_none,
    text_sink,
)
from vigil.formats._json import Metered, TooLarge, json_records
from vigil.formats.limits import Limits, setting, syntax_reason
from vigil.schemes import map_category

NAME = "vics"
METADATA = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"

_INTERPRETED = frozenset({"mediaid", "category", "md5", "sha1", "photodna", "victimidentified",
                          "series", "tags", "comments", "alternativehashes"})
_BOOLEANS = frozenset({"offenderidentified", "isdistributed", "isprecategorized",
                       "issuspected", "victimidentified"})
_CASE_KEYS = frozenset({"media", "caseid", "casenumber", "sourceapplicationname",
                        "totalmediafiles", "totalprecategorized"})
_MEDIA_KEYS = frozenset({"mediaid", "md5", "sha1", "photodna", "category", "alternativehashes",
                         "mediafiles", "mediasize"})
_ALT_TYPES = {"sha256": "sha256", "sha-256": "sha256", "pdq": "pdq", "md5": "md5",
              "sha1": "sha1", "sha-1": "sha1"}
_CANON = {"category": "Category", "md5": "MD5", "sha1": "SHA1", "photodna": "PhotoDNA",
          "victimidentified": "VictimIdentified", "tags": "Tags",
          "alternativehashes": "AlternativeHashes"}
_ALT_NAMES = {"sha256": "SHA256", "pdq": "PDQ", "md5": "MD5", "sha1": "SHA1"}


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Stream the Media of a VICS file as EntryRecords (one per hash)."""
    lim = limits or Limits.from_env()
    with open_binary(source, name) as (f, fname):
        shape = _sniff(f, fname, lim)
        f.stream()
        if shape is None:
            return
        report = Reporter(fname, on_error, lim)
        media_path = shape
        for location, _kind, media in json_records(
                f, fname, lambda p: "media" if p == media_path else None, lim):
            try:
                recs = _records(media)
            except FieldError as exc:
                report(FormatError(fname, _where(location, media), exc.field, exc.reason))
                continue
            yield from recs


def _sniff(f: Rewindable, fname: str, lim: Limits) -> tuple[str, ...] | None:
    """The path of the Media records (lower-cased keys, ``item`` for array items), from
    the start of the file: ``item`` (a list of Media), ``value.item`` (a hash set) or
    ``value.item.media.item`` (cases). None: an empty ``value`` list.

    The first ``value`` item decides: a ``Media`` or case key makes it a case, a Media
    key a hash set. At most ``SNIFF_LIMIT`` bytes are looked at, never deeper than
    ``max_depth``."""
    m = Metered(f, SNIFF_LIMIT)
    path: list[str] = []
    is_case = False
    saw_value = False
    try:
        for ev, v in ijson.basic_parse(m, use_float=True, buf_size=CHUNK):
            depth = len(path)
            if ev == "map_key":
                path[-1] = v.lower()
                if depth == 3 and path[:2] == ["value", "item"]:
                    if path[2] == "media":
                        return ("value", "item", "media", "item")
                    if path[2] in _CASE_KEYS:
                        is_case = True
                    elif path[2] in _MEDIA_KEYS and not is_case:
                        return ("value", "item")
                continue
            if ev == "end_map" or ev == "end_array":
                if depth == 3 and path[:2] == ["value", "item"]:  # the first item ended
                    return ("value", "item", "media", "item") if is_case else ("value", "item")
                if depth == 2 and path == ["value", "item"]:
                    return None  # an empty value list
                path.pop()
                continue
            if depth == 0 and ev != "start_map":
                if ev == "start_array":
                    return ("item",)
                break
            if depth == 2 and path == ["value", "item"] and ev != "start_map":
                return ("value", "item")  # not an object: reported as a bad record
            if ev == "start_map" or ev == "start_array":
                if depth >= lim.max_depth:
                    raise FormatError(fname, "start of file", None,
                                      f"nested deeper than {lim.max_depth} levels "
                                      f"({setting('max_depth')})")
                if depth == 1 and path == ["value"] and ev == "start_array":
                    saw_value = True
                path.append("" if ev == "start_map" else "item")
    except TooLarge:
        if saw_value:
            return ("value", "item")
        raise FormatError(fname, "start of file", "value",
                          f"not a VICS file: no 'value' list in the first {SNIFF_LIMIT:,} "
                          "bytes") from None
    except (ijson.JSONError, ValueError, OverflowError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(fname, "start of file", None, syntax_reason(exc)) from None
    raise FormatError(fname, "top level", "value",
                      "not a VICS file: no 'value' list and not a list of Media")


def _where(location: str, media: Any) -> str:
    if isinstance(media, dict):
        mid = ci(media).get("mediaid", (None, None))[1]
        if isinstance(mid, int | str) and not isinstance(mid, bool) and str(mid).strip():
            return f"{location} (MediaID {str(mid).strip()[:40]})"
    return location


def _signal(field: str, signal_type: str, value: Any) -> tuple[str, str, str] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    return field, signal_type, value


def _records(media: Any) -> list[EntryRecord]:
    if not isinstance(media, dict):
        raise FieldError(None, "a Media record must be a JSON object")
    m = ci(media)

    def get(key: str) -> Any:
        return m.get(key, (None, None))[1]

    def field(key: str) -> str:
        return m.get(key, (_CANON.get(key, key),))[0]

    try:
        mid = parse_int(get("mediaid"))
        source_id = None if mid is None else str(mid)
    except ValueError:
        source_id = text_or_none(get("mediaid"))

    try:
        cat = parse_int(get("category"))
    except ValueError:
        raise FieldError(field("category"), "must be an integer 0..5") from None
    if cat is not None and not 0 <= cat <= 5:
        raise FieldError(field("category"), "must be an integer 0..5")
    try:
        vi = parse_bool(get("victimidentified"))
    except ValueError as exc:
        raise FieldError(field("victimidentified"), str(exc)) from None
    tags_raw = get("tags")
    if tags_raw is None:
        tags: list[str] = []
    elif isinstance(tags_raw, str):
        tags = tags_raw.split(",")
    elif isinstance(tags_raw, list):
        tags = [str(t) for t in tags_raw if t is not None]
    else:
        raise FieldError(field("tags"), "must be a string or a list of strings")
    labels = Labels(category=None if cat is None else ("us", str(cat)),
                    series=text_or_none(get("series")),
                    victim_status="unknown" if vi is None else
                    ("identified" if vi else "unidentified"),
                    tags=tuple(tags), note=text_or_none(get("comments")))

    extra: dict[str, Any] = {}
    for low, (key, value) in m.items():
        if low in _INTERPRETED:
            continue
        if low in _BOOLEANS:
            with contextlib.suppress(ValueError):
                value = parse_bool(value)
        elif low == "mediasize":
            with contextlib.suppress(ValueError):
                value = parse_int(value)
        extra[key] = value

    signals: list[tuple[str, str, str]] = []
    qualities: list[int | None] = []
    for key, st in (("md5", "md5"), ("sha1", "sha1"), ("photodna", "photodna")):
        s = _signal(field(key), st, get(key))
        if s:
            signals.append(s)
            qualities.append(None)
    alts = get("alternativehashes")
    if alts is not None:
        if not isinstance(alts, list):
            raise FieldError(field("alternativehashes"), "must be a list")
        for i, alt in enumerate(alts):
            where = f"{field('alternativehashes')}[{i}]"
            if not isinstance(alt, dict):
                raise FieldError(where, "must be an object with HashName and HashValue")
            a = ci(alt)
            hname = text_or_none(a.get("hashname", (None, None))[1])
            if hname is None:
                raise FieldError(f"{where}.HashName", "missing")
            st = _ALT_TYPES.get(hname.lower(), hname.lower())
            s = _signal(f"{where}.HashValue", st, a.get("hashvalue", (None, None))[1])
            if s is None:
                raise FieldError(f"{where}.HashValue", "missing")
            try:
                q = parse_int(a.get("quality", (None, None))[1])
            except ValueError:
                raise FieldError(f"{where}.Quality", "must be an integer 0..100") from None
            signals.append(s)
            qualities.append(q)
    if not signals:
        raise FieldError(None, "no hash (MD5, SHA1, PhotoDNA or AlternativeHashes)")
    out = []
    for (fld, st, value), q in zip(signals, qualities, strict=True):
        try:
            out.append(EntryRecord(st, value, labels, quality=q, source_id=source_id,
                                   extra=extra))
        except ValueError as exc:
            raise FieldError(fld, str(exc)) from None
    return out


# --------------------------------------------------------------------------- writer


def _category(labels: Labels) -> int:
    if labels.category is None:
        return 0
    mapped = map_category(*labels.category, to="us")
    return int(mapped) if mapped is not None else 0


def _vics_value(key: str, value: Any) -> Any:
    if isinstance(value, bool) and key.lower() in _BOOLEANS:
        return "true" if value else "false"
    return value


def media(group: list[EntryRecord], media_id: int) -> dict[str, Any]:
    """One VICS Media object for a group of records from one source record."""
    first = group[0]
    lab = first.labels
    out: dict[str, Any] = {"MediaID": media_id, "Category": _category(lab)}
    alts: list[dict[str, Any]] = []
    for rec in group:
        key = {"md5": "MD5", "sha1": "SHA1", "photodna": "PhotoDNA"}.get(rec.signal_type)
        if key is not None and key not in out and rec.quality is None:
            out[key] = rec.value.upper() if key != "PhotoDNA" else rec.value
            continue
        alt: dict[str, Any] = {"HashName": _ALT_NAMES.get(rec.signal_type, rec.signal_type),
                               "HashValue": rec.value}
        if rec.quality is not None:
            alt["Quality"] = rec.quality
        alts.append(alt)
    if lab.victim_status != "unknown":
        out["VictimIdentified"] = "true" if lab.victim_status == "identified" else "false"
    if lab.series is not None:
        out["Series"] = lab.series
    if lab.tags:
        out["Tags"] = list(lab.tags) if any("," in t for t in lab.tags) else ",".join(lab.tags)
    if lab.note is not None:
        out["Comments"] = lab.note
    if alts:
        out["AlternativeHashes"] = alts
    taken = {k.lower() for k in out}
    for key, value in without_derived(first.extra).items():
        if key.lower() not in taken and key.lower() not in _INTERPRETED:
            out[key] = _vics_value(key, value)
    return out


def write(records: Iterable[EntryRecord], sink: Sink) -> int:
    """Write a VICS 2.0 hash set, one Media at a time; return the number of records."""
    n = 0
    next_id = 1
    with text_sink(sink) as f:
        f.write('{"odata.metadata":' + json.dumps(METADATA) + ',"value":[')
        sep = "\n"
        for group in groups(records):
            for rec in group:
                n += 1
                if rec.op != "add":
                    raise ValueError(f"record {n}: VICS has no deletions (op=remove)")
            sid = group[0].source_id
            if sid is not None and sid.isascii() and sid.isdigit():
                mid = int(sid)
                next_id = max(next_id, mid + 1)
            else:
                mid = next_id
                next_id += 1
            f.write(sep)
            f.write(dumps_json(media(group, mid)))
            sep = ",\n"
        f.write("\n]}\n")
    return n
