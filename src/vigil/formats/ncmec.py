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
above. Records are regrouped by ``source_id`` (one NCMEC record per group).
"""

from __future__ import annotations

import json
import xml.parsers.expat
from collections.abc import Iterable, Iterator
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from vigil.entry import EntryRecord
from vigil.formats._common import (
    CHUNK,
    BadRecord,
    FieldError,
    FormatError,
    OnError,
    Rewindable,
    Sink,
    Source,
    check_cat,
    ci,
    ext_fields,
    ext_labels,
    groups,
    iter_json_records,
    open_binary,
    parse_bool,
    parse_int,
    report,
    text_or_none,
    text_sink,
)

NAME = "ncmec"
_CONTAINERS = {"records": "record", "deletions": "deletion", "deleted": "deletion"}
_INTERPRETED = frozenset({"id", "classification", "fingerprints", "deleted", "category",
                          "series", "tags", "victimstatus", "note"})


def read(source: Source, *, on_error: OnError = None, name: str | None = None
         ) -> Iterator[EntryRecord]:
    """Stream NCMEC-style records (JSON, JSON lines or XML) as EntryRecords."""
    with open_binary(source, name) as (f, fname):
        head = f.head(64).lstrip()
        items = _xml_items(f, fname) if head[:1] == b"<" else \
            iter_json_records(f, fname, _CONTAINERS)
        for location, kind, obj in items:
            if isinstance(obj, BadRecord):
                report(FormatError(fname, location, None, obj.reason), on_error)
                continue
            try:
                recs = _records(obj, deletion=kind == "deletion")
            except FieldError as exc:
                report(FormatError(fname, _where(location, obj), exc.field, exc.reason),
                       on_error)
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
                                   op=op,  # type: ignore[arg-type]
                                   source_id=source_id, extra=extra))
        except ValueError as exc:
            raise FieldError(where, str(exc)) from None
    if not out:
        raise FieldError(key["fingerprints"], "no fingerprint values")
    return out


# --------------------------------------------------------------------------- XML


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _xml_items(f: Rewindable, fname: str) -> Iterator[tuple[str, str, Any]]:
    """Record elements of the XML form as JSON-like dicts, streamed with expat.

    DTDs and entity declarations are refused outright (entity expansion attacks); only
    depth-2 ``record``/``deletion`` elements are built, one at a time.
    """
    f.stream()
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    ready: list[tuple[str, str, Any]] = []
    stack: list[tuple[str, dict[str, Any], list[str]]] = []  # (tag, node, text parts)
    depth = 0
    n = 0

    def refuse(*_: Any) -> None:
        raise FormatError(fname, f"line {parser.CurrentLineNumber}", None,
                          "DTDs and entity declarations are not accepted")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth, n
        depth += 1
        t = _local(tag)
        if depth == 2:
            if t.lower() in ("record", "deletion", "tombstone"):
                n += 1
                node: dict[str, Any] = {_local(k): v for k, v in attrs.items()}
                node["__kind"] = "deletion" if t.lower() != "record" else "record"
                node["__line"] = parser.CurrentLineNumber
                stack.append((t, node, []))
            return
        if stack:
            stack.append((t, {_local(k): v for k, v in attrs.items()}, []))

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        if not stack:
            return
        t, node, text = stack.pop()
        if not stack:  # a whole record
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
        if stack:
            stack[-1][2].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        while True:
            chunk = f.read(CHUNK)
            parser.Parse(chunk, not chunk)
            yield from ready
            ready.clear()
            if not chunk:
                break
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
    for k, v in first.extra.items():
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


def _xml(rec: dict[str, Any]) -> str:
    tag = "record"
    attrs = f" id={quoteattr(str(rec['id']))}" if "id" in rec else ""
    parts = [f"  <{tag}{attrs}>"]
    for k, v in rec.items():
        if k == "id":
            continue
        if k == "fingerprints":
            fp = []
            for t, val in v.items():
                if isinstance(val, dict):
                    fp.append(f"<{t} quality=\"{val['quality']}\">{escape(val['value'])}</{t}>")
                else:
                    fp.append(f"<{t}>{escape(val)}</{t}>")
            parts.append(f"    <fingerprints>{''.join(fp)}</fingerprints>")
        elif k == "tags":
            parts.append("    <tags>" + "".join(f"<tag>{escape(t)}</tag>" for t in v)
                         + "</tags>")
        elif isinstance(v, bool):
            parts.append(f"    <{k}>{'true' if v else 'false'}</{k}>")
        elif isinstance(v, str | int | float) and _xml_name(k):
            parts.append(f"    <{k}>{escape(str(v))}</{k}>")
        # nested extra values have no XML form here; they are left out
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
                f.write("\n" + _xml(rec))
            elif style == "jsonl":
                f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            else:
                f.write(sep + json.dumps(rec, ensure_ascii=False, default=str))
                sep = ",\n"
        f.write({"json": "\n]}\n", "jsonl": "", "xml": "\n</records>\n"}[style])
    return n

