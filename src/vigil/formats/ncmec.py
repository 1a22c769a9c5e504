"""[ncmec] NCMEC hash-sharing style records, JSON or XML, with deletions as tombstones.

Accepted JSON (UTF-8, BOM ok), streamed; keys are matched case-insensitively:

* a list of records ``[{...}, ...]``;
* JSON lines, one record object per line (blank lines skipped);
* an object ``{"records": [...], "deletions": [...]}`` (either list optional, read in
  document order; ``deleted`` is accepted as another name for ``deletions``).

A record::

    {"id": "123", "classification": "A1",
     "fingerprints": {"md5": "...", "sha1": "...", "pdq": "..." | {"value": "...", "quality": 90}},
     "deleted": false}

* ``id`` (string or number) -> ``source_id``; ``classification`` A1/A2/B1/B2 (any case)
  -> category ("ncmec", ...); empty/absent -> none.
* ``fingerprints``: md5, sha1, sha256, pdq are validated hex; any other key (e.g.
  ``photodna``) is kept as an opaque type of that lower-cased name. One record yields one
  EntryRecord per fingerprint, sharing source_id and labels.
* Tombstones: ``deleted: true`` (bool or "true"), or any record under ``deletions`` ->
  ``op="remove"``. A tombstone must still carry its fingerprints: an EntryRecord names a
  signal, and removing "whatever id 123 was" silently is not something we guess at.
* Vigil's own optional fields (so a Vigil export comes back whole): ``category``
  (``scheme:value``, when the grade is not an NCMEC one), ``series``, ``tags`` (list),
  ``victimStatus``, ``note``. Any other key is kept in ``extra``.

Accepted XML (no DTD, no entities; namespaces ignored; tag names case-insensitive)::

    <records>
      <record id="123">           <!-- or <id>123</id> as a child -->
        <classification>A1</classification>
        <fingerprints><md5>...</md5><pdq quality="90">...</pdq></fingerprints>
        <deleted>true</deleted>   <!-- optional; also an attribute deleted="true" -->
      </record>
      <deletion id="124"><fingerprints>...</fingerprints></deletion>   <!-- tombstone -->
    </records>

Children with text only (other than the above) go into ``extra``; ``<tags><tag>..</tag>``
holds tags. Locations are ``record N (id X)`` or ``line N`` for JSON lines.

Writer: ``write(..., style="json")`` writes ``{"records": [...]}`` with tombstones inline
(``"deleted": true``); ``style="jsonl"`` one record per line; ``style="xml"`` the XML
above. Records are regrouped by ``source_id`` (one NCMEC record per group). JSON text is
UTF-8, with ``\\u`` escapes for what UTF-8 cannot carry (``dumps_json``).

XML 1.0 cannot carry some characters at all (controls other than tab and newline, lone
surrogates, U+FFFE/U+FFFF; a CR would come back as a newline), and a fingerprint's type
becomes an element name. The door (``vigil.banks.text``) keeps all of these out of a
bank, so they only come from entries stored by an older version: the XML writer then
stops with an error naming the record rather than write a file that reads back
differently or not at all. Extra fields it cannot write (nested values, names that are
not XML names, text it cannot carry) are left out, as the JSON styles keep them.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Iterable, Iterator
from typing import Any, Literal, cast
from xml.sax.saxutils import escape, quoteattr

from vigil.banks.entry import EntryRecord, Op
from vigil.banks.travel import without_derived
from vigil.formats._common import (
    CHUNK,
    FieldError,
    FormatError,
    OnError,
    Reporter,
    Rewindable,
    Sink,
    Source,
    check_cat,
    ci,
    dumps_json,
    ext_fields,
    ext_labels,
    groups,
    open_binary,
    parse_bool,
    parse_int,
    text_or_none,
    text_sink,
)
from vigil.formats._json import BadRecord, iter_json_records
from vigil.formats.limits import Limits, setting

NAME = "ncmec"
_CONTAINERS = {"records": "record", "deletions": "deletion", "deleted": "deletion"}
_INTERPRETED = frozenset({"id", "classification", "fingerprints", "deleted", "category",
                          "series", "tags", "victimstatus", "note"})


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Stream NCMEC-style records (JSON, JSON lines or XML) as EntryRecords."""
    lim = limits or Limits.from_env()
    with open_binary(source, name) as (f, fname):
        report = Reporter(fname, on_error, lim)
        head = f.head(64).lstrip()
        items = _xml_items(f, fname, lim) if head[:1] == b"<" else \
            iter_json_records(f, fname, _CONTAINERS, lim)
        for location, kind, obj in items:
            if isinstance(obj, BadRecord):
                report(FormatError(fname, location, None, obj.reason))
                continue
            try:
                recs = _records(obj, deletion=kind == "deletion")
            except FieldError as exc:
                report(FormatError(fname, _where(location, obj), exc.field, exc.reason))
                continue
            yield from recs


def _where(location: str, obj: Any) -> str:
    if isinstance(obj, dict):
        rid = ci(obj).get("id", (None, None))[1]
        if isinstance(rid, int | str) and not isinstance(rid, bool) and str(rid).strip():
            return f"{location} (id {str(rid).strip()[:40]})"
    return location


def _records(obj: Any, *, deletion: bool) -> list[EntryRecord]:
    if not isinstance(obj, dict):
        raise FieldError(None, "a record must be an object")
    m = ci(obj)
    key = {k: m.get(k, (k,))[0] for k in _INTERPRETED}
    rid = m.get("id", (None, None))[1]
    if isinstance(rid, dict | list | bool):
        raise FieldError(key["id"], "must be a string or a number")
    source_id = text_or_none(rid)
    try:
        deleted = parse_bool(m.get("deleted", (None, None))[1])
    except ValueError as exc:
        raise FieldError(key["deleted"], str(exc)) from None
    op = "remove" if deletion or deleted else "add"

    category = None
    cls = text_or_none(m.get("classification", (None, None))[1])
    if cls is not None:
        category = check_cat("ncmec", cls, key["classification"])
    labels, _ = ext_labels({k: v for k, v in m.items() if k != "quality"}, category=category)

    fps = m.get("fingerprints", (None, None))[1]
    if not isinstance(fps, dict) or not fps:
        raise FieldError(key["fingerprints"], "missing or empty")
    extra = {k: v for low, (k, v) in m.items() if low not in _INTERPRETED}
    out = []
    for fp_name, value in fps.items():
        where = f"{key['fingerprints']}.{fp_name}"
        quality = None
        if isinstance(value, dict):
            v = ci(value)
            try:
                quality = parse_int(v.get("quality", (None, None))[1])
            except ValueError:
                raise FieldError(f"{where}.quality", "must be an integer 0..100") from None
            value = v.get("value", (None, None))[1]
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            raise FieldError(where, "must be a string")
        try:
            out.append(EntryRecord(fp_name, value, labels, quality=quality,
                                   op=cast(Op, op),
                                   source_id=source_id, extra=extra))
        except ValueError as exc:
            raise FieldError(where, str(exc)) from None
    if not out:
        raise FieldError(key["fingerprints"], "no fingerprint values")
    return out


# --------------------------------------------------------------------------- XML


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _xml_items(f: Rewindable, fname: str, lim: Limits) -> Iterator[tuple[str, str, Any]]:
    """Record elements of the XML form as JSON-like dicts, streamed with expat.

    DTDs and entity declarations are refused outright (entity expansion attacks); only
    depth-2 ``record``/``deletion`` elements are built, one at a time, and each within
    the limits: elements nested at most ``max_depth`` deep, at most
    ``max_record_values`` elements and attributes and ``max_record_bytes`` bytes in one
    record, and no tag, text or comment longer than ``max_record_bytes`` anywhere (expat
    holds a token whole until it ends).
    """
    f.stream()
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    ready: list[tuple[str, str, Any]] = []
    stack: list[tuple[str, dict[str, Any], list[str]]] = []  # (tag, node, text parts)
    depth = 0
    n = 0
    values = 0  # elements and attributes in the current record
    record_start = 0  # byte offset where the current record began
    seen = 0  # byte offset of the last event (expat buffers a token until it ends)

    def limit(reason: str) -> FormatError:
        return FormatError(fname, f"record {n} (line {parser.CurrentLineNumber})"
                           if stack else f"line {parser.CurrentLineNumber}", None, reason)

    def refuse(*_: Any) -> None:
        raise FormatError(fname, f"line {parser.CurrentLineNumber}", None,
                          "DTDs and entity declarations are not accepted")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth, n, values, record_start, seen
        depth += 1
        seen = parser.CurrentByteIndex
        if depth > lim.max_depth:
            raise limit(f"nested deeper than {lim.max_depth} levels ({setting('max_depth')})")
        t = _local(tag)
        if depth == 2:
            if t.lower() in ("record", "deletion", "tombstone"):
                n += 1
                if n > lim.max_records:
                    raise limit(f"more than {lim.max_records:,} records "
                                f"({setting('max_records')})")
                values, record_start = 1 + len(attrs), seen
                node: dict[str, Any] = {_local(k): v for k, v in attrs.items()}
                node["__kind"] = "deletion" if t.lower() != "record" else "record"
                node["__line"] = parser.CurrentLineNumber
                stack.append((t, node, []))
            return
        if stack:
            values += 1 + len(attrs)
            if values > lim.max_record_values:
                raise limit(f"more than {lim.max_record_values:,} elements and attributes "
                            f"in one record ({setting('max_record_values')})")
            if seen - record_start > lim.max_record_bytes:
                raise limit(f"more than {lim.max_record_bytes:,} bytes in one record "
                            f"({setting('max_record_bytes')})")
            stack.append((t, {_local(k): v for k, v in attrs.items()}, []))

    def end(tag: str) -> None:
        nonlocal depth, seen
        depth -= 1
        seen = parser.CurrentByteIndex
        if not stack:
            return
        t, node, text = stack.pop()
        if not stack:  # a whole record
            if seen - record_start > lim.max_record_bytes:
                raise limit(f"more than {lim.max_record_bytes:,} bytes in one record "
                            f"({setting('max_record_bytes')})")
            kind = node.pop("__kind")
            line = node.pop("__line")
            ready.append((f"record {n} (line {line})", kind, node))
            return
        parent = stack[-1][1]
        parent_tag = stack[-1][0]
        value: Any
        children = {k: v for k, v in node.items()}
        body = "".join(text).strip()
        if parent_tag.lower() == "tags":
            parent.setdefault("__list", []).append(body)
            return
        if t.lower() == "tags":
            value = node.get("__list", [])
        elif "quality" in children and len(children) == 1:
            value = {"value": body, "quality": children["quality"]}
        elif children:
            value = children
        else:
            value = body
        parent[t] = value

    def chars(data: str) -> None:
        nonlocal seen
        seen = parser.CurrentByteIndex
        if stack:
            if seen - record_start > lim.max_record_bytes:
                raise limit(f"more than {lim.max_record_bytes:,} bytes in one record "
                            f"({setting('max_record_bytes')})")
            stack[-1][2].append(data)

    def other(*_: Any) -> None:  # comments, processing instructions: only seen
        nonlocal seen
        seen = parser.CurrentByteIndex

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.CommentHandler = other
    parser.ProcessingInstructionHandler = other
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    fed = 0
    try:
        while True:
            chunk = f.read(CHUNK)
            fed += len(chunk)
            parser.Parse(chunk, not chunk)
            yield from ready
            ready.clear()
            if not chunk:
                break
            if fed - max(seen, 0) > lim.max_record_bytes + CHUNK:
                raise limit(f"a tag, text or comment longer than {lim.max_record_bytes:,} "
                            f"bytes ({setting('max_record_bytes')})")
    except xml.parsers.expat.ExpatError as exc:
        raise FormatError(fname, f"line {exc.lineno}", None,
                          f"invalid XML ({xml.parsers.expat.ErrorString(exc.code)})") from None


# --------------------------------------------------------------------------- writer


def _record(group: list[EntryRecord]) -> dict[str, Any]:
    first = group[0]
    out: dict[str, Any] = {}
    if first.source_id is not None:
        out["id"] = first.source_id
    cat = first.labels.category
    if cat is not None and cat[0] == "ncmec":
        out["classification"] = cat[1]
    fps: dict[str, Any] = {}
    for rec in group:
        if rec.signal_type in fps:
            raise ValueError(f"record id {first.source_id}: two {rec.signal_type} "
                             "fingerprints in one group")
        fps[rec.signal_type] = rec.value if rec.quality is None else \
            {"value": rec.value, "quality": rec.quality}
    out["fingerprints"] = fps
    if first.op == "remove":
        out["deleted"] = True
    out.update(ext_fields(first.labels, category=cat is not None and cat[0] != "ncmec"))
    for k, v in without_derived(first.extra).items():
        if k.lower() not in _INTERPRETED and k not in out:
            out[k] = v
    return out


def _split(records: Iterable[EntryRecord]) -> Iterator[list[EntryRecord]]:
    """Groups, split again where one signal type repeats (NCMEC has one value per type)."""
    for group in groups(records):
        part: list[EntryRecord] = []
        seen: set[str] = set()
        for rec in group:
            if rec.signal_type in seen:
                yield part
                part, seen = [], set()
            part.append(rec)
            seen.add(rec.signal_type)
        yield part


#: what XML 1.0 text cannot carry, or (CR) would not give back as it was
_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object, where: str, n: int) -> str:
    """``value`` escaped as XML text; ValueError naming the record if XML cannot carry it."""
    s = str(value)
    bad = _NOT_XML.search(s)
    if bad is not None:
        raise ValueError(f"record {n}: {where}: character {bad.start() + 1} "
                         f"(U+{ord(bad.group()):04X}) cannot be written in XML")
    return escape(s)


def _xml(rec: dict[str, Any], n: int, extra: frozenset[str]) -> str:
    """One record as XML; ``extra`` names its keys that came from ``EntryRecord.extra``."""
    tag = "record"
    attrs = f" id={quoteattr(_text(rec['id'], 'id', n))}" if "id" in rec else ""
    parts = [f"  <{tag}{attrs}>"]
    for k, v in rec.items():
        if k == "id":
            continue
        if k == "fingerprints":
            fp = []
            for t, val in v.items():
                if not _xml_name(t) or t.lower().startswith("xml"):
                    raise ValueError(f"record {n}: fingerprint type {t!r} cannot be an XML "
                                     "element name")
                if isinstance(val, dict):
                    fp.append(f"<{t} quality=\"{val['quality']}\">"
                              f"{_text(val['value'], t, n)}</{t}>")
                else:
                    fp.append(f"<{t}>{_text(val, t, n)}</{t}>")
            parts.append(f"    <fingerprints>{''.join(fp)}</fingerprints>")
        elif k == "tags":
            parts.append("    <tags>" + "".join(f"<tag>{_text(t, 'tags', n)}</tag>" for t in v)
                         + "</tags>")
        elif isinstance(v, bool):
            parts.append(f"    <{k}>{'true' if v else 'false'}</{k}>")
        elif k in extra:
            # extra fields: nested values, names that are not XML names and text XML
            # cannot carry have no XML form here; they are left out
            if (isinstance(v, str | int | float) and _xml_name(k)
                    and not _NOT_XML.search(str(v))):
                parts.append(f"    <{k}>{escape(str(v))}</{k}>")
        else:
            parts.append(f"    <{k}>{_text(v, k, n)}</{k}>")
    parts.append(f"  </{tag}>")
    return "\n".join(parts)


def _xml_name(k: str) -> bool:
    return bool(k) and (k[0].isalpha() or k[0] == "_") and all(
        c.isalnum() or c in "_-." for c in k)


def write(records: Iterable[EntryRecord], sink: Sink,
          style: Literal["json", "jsonl", "xml"] = "json") -> int:
    """Write NCMEC-style records (one per source_id group); return the records written."""
    if style not in ("json", "jsonl", "xml"):
        raise ValueError(f"style must be json, jsonl or xml, not {style!r}")
    n = 0
    with text_sink(sink) as f:
        f.write({"json": '{"records":[', "jsonl": "",
                 "xml": '<?xml version="1.0" encoding="UTF-8"?>\n<records>'}[style])
        sep = "\n"
        for group in _split(records):
            n += len(group)
            rec = _record(group)
            if style == "xml":
                f.write("\n" + _xml(rec, n - len(group) + 1, frozenset(group[0].extra)))
            elif style == "jsonl":
                f.write(dumps_json(rec) + "\n")
            else:
                f.write(sep + dumps_json(rec))
                sep = ",\n"
        f.write({"json": "\n]}\n", "jsonl": "", "xml": "\n</records>\n"}[style])
    return n

